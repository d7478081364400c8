"""
The compare command.

The compare command on the real CenterFace model and real photos: a backend against itself
matches exactly; int8 in the rknn-toolkit2 simulator keeps the faces; one-line errors.
"""

import contextlib
import io
import json
import os

from conftest import REPO
import cv2
from hobot_npu_infer.core.backends.rknn.simulator import PYTHON_ENV
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
from hobot_npu_infer.tools import compare
from hobot_npu_infer.tools.cli import run
import pytest

THRESHOLDS = [0.3, 0.5, 0.7]
OUTPUTS = ['537', '538', '539', '540']


def reference_faces(paths, input_size=(320, 256)):
    """Return detections per threshold of the plain ONNX Runtime pipeline over ``paths``."""
    pipeline = DetectionPipeline.from_config(PipelineConfig(input_size=input_size,
                                                            score_threshold=min(THRESHOLDS)))
    results, _ = pipeline.detect([cv2.imread(p) for p in paths])
    return {t: sum(d.score >= t for r in results for d in r.detections) for t in THRESHOLDS}


def test_a_backend_against_itself_matches_exactly(photos, tmp_path, capsys, model_cache):
    paths = [photos['astronaut'], photos['camera']]
    out = tmp_path / 'report.json'
    assert compare.main(['--backend', 'onnxruntime', '--reference', 'onnxruntime', *paths,
                         '--input-size', '320x256', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    faces = reference_faces(paths)
    assert faces[0.5] >= 1  # the astronaut's face, at least
    assert report['images'] == 2 and report['model'] == 'centerface'
    assert report['match_iou'] == 0.5
    assert [row['score_threshold'] for row in report['thresholds']] == THRESHOLDS
    for row in report['thresholds']:
        assert row == {'score_threshold': row['score_threshold'],
                       'matched': faces[row['score_threshold']], 'missed': 0, 'extra': 0,
                       'iou_mean': 1.0, 'iou_min': 1.0}
    assert report['output_max_abs_diff'] == dict.fromkeys(OUTPUTS, 0.0)
    assert [m['backend'] for m in report['memory']] == ['onnxruntime', 'onnxruntime']
    for memory in report['memory']:
        assert memory['note'] == 'backend onnxruntime' and memory['vendor_report'] == 'none'
        assert isinstance(memory['resident_mb'], float)
    printed = capsys.readouterr().out
    assert printed.startswith('centerface on 2 image(s), match IoU 0.5\n')
    assert f'| 0.5 | {faces[0.5]} | 0 | 0 | 1.0 | 1.0 |' in printed
    assert 'output max abs diff: 537 0, 538 0, 539 0, 540 0' in printed


@pytest.mark.parametrize('thresholds, message', [
    ('abc', "--thresholds must be numbers like 0.3,0.5, got 'abc'"),
    ('0.5,1.5', "--thresholds must be within [0, 1], got '0.5,1.5'"),
    (',', "--thresholds must be within [0, 1], got ','"),
])
def test_bad_thresholds_are_one_line_exit_2(photos, capsys, thresholds, message):
    with pytest.raises(SystemExit) as exit_:
        run(compare.main, [photos['astronaut'], '--thresholds', thresholds])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == f'error: {message}\n' and captured.out == ''


def test_no_images_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(compare.main, [str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ('error: no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff, '
                                       f'.webp) in directory {tmp_path}\n')


# --- int8 in the rknn-toolkit2 simulator ---------------------------------------------------------


@pytest.fixture(scope='module')
def int8_report(photos, tmp_path_factory, model_cache):
    """
    Compare CenterFace built int8 for RK3588 against ONNX Runtime, in one run.

    The int8 build is calibrated on the three photos; both run at 320x256: the size
    --input-size gives the rknn build as well.
    """
    python = os.environ.get(PYTHON_ENV) or os.path.join(REPO, '.venv-rknn', 'bin', 'python')
    if not os.access(python, os.X_OK):
        pytest.skip('rknn-toolkit2 simulator not installed (make rknn-sim)')
    out = tmp_path_factory.mktemp('compare-int8') / 'report.json'
    paths = [photos['astronaut'], photos['camera'], photos['coffee']]
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        patch.setenv(PYTHON_ENV, python)
        code = compare.main(['--backend', 'rknn', '--backend-option', 'quantize=true', *paths,
                             '--input-size', '320x256', '--json', str(out)])
    assert code == 0
    return {'report': json.loads(out.read_text()), 'stdout': stdout.getvalue(),
            'stderr': stderr.getvalue(), 'faces': reference_faces(paths)}


def test_int8_keeps_the_faces(int8_report):
    report, faces = int8_report['report'], int8_report['faces']
    assert report['images'] == 3
    [row] = [r for r in report['thresholds'] if r['score_threshold'] == 0.5]
    assert faces[0.5] >= 2  # the astronaut's face and the cameraman's
    assert row['matched'] == faces[0.5] and row['missed'] == 0
    assert row['iou_min'] >= 0.8
    assert 'note: calibrating int8 on the compared images themselves' in int8_report['stderr']
    # Both ran at 320x256, so every raw output compares; the heatmap stays close.
    assert sorted(report['output_max_abs_diff']) == OUTPUTS
    assert 0 < report['output_max_abs_diff']['537'] < 0.2


def test_int8_memory_report(int8_report):
    reference, rknn = int8_report['report']['memory']
    assert reference['backend'] == 'onnxruntime' and reference['vendor_report'] == 'none'
    assert rknn['backend'] == 'rknn' and rknn['note'] == 'backend rknn'
    assert rknn['resident_mb'] > 0
    assert isinstance(rknn['vendor_report'], str)
    assert rknn['vendor_report'].startswith('unavailable: rknn eval_memory needs rknn-toolkit2')
    assert 'memory rknn: ' in int8_report['stdout']
