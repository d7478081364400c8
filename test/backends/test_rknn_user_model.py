"""
A user's own YOLO on the Rockchip NPU path, on rknn-toolkit2's x86 simulator (not a board).

The real fall detector (YOLOv8s exported by Ultralytics, classes Normal and Fall) goes through
the commands a user runs: ``rknn_convert`` writes a .rknn file whose record carries the export's
metadata and the normalisation folded into it; ``detect --backend rknn`` with nothing but the
model path finds the people ONNX Runtime finds; ``compare`` reports them matched. The same
weights in Rockchip's model-zoo layout (test/zoo_export.py, run by the Ultralytics Python) are
decoded by ``rknn_yolov8`` on both backends. Every tool runs as a subprocess, as a user runs it;
the simulator builds the model once per command (five to ten seconds), four times in all.
"""

import json
import os
import subprocess
import sys

from conftest import REPO
import fake_rknnlite
from hobot_npu_infer.core.backends.rknn.simulator import PYTHON_ENV
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.models.onnx_files import read_onnx
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
from hobot_npu_infer.tools import rknn_convert
import numpy as np
import pytest

TOOL_TIMEOUT = 600  # seconds; a simulator build takes 5-10 s
ZOO_SCRIPT = os.path.join(REPO, 'test', 'zoo_export.py')
PHOTOS = ('bus.jpg', 'zidane.jpg')
CLASS_NAMES = ('Normal', 'Fall')

# Ultralytics 8.4.190's predict() on best_fp16.onnx at conf 0.25, iou 0.7: (class, score, box).
# The fourth on bus overlaps the first by IoU 0.48, so only an NMS threshold of 0.7 keeps it.
ULTRALYTICS = {
    'bus.jpg': [('Normal', 0.66145, [216.88, 393.66, 349.35, 889.44]),
                ('Normal', 0.65096, [34.09, 384.99, 218.27, 909.81]),
                ('Normal', 0.64631, [687.09, 346.04, 810.0, 880.88]),
                ('Normal', 0.30761, [150.39, 387.79, 314.4, 892.02])],
    'zidane.jpg': [('Normal', 0.70699, [699.33, 0.0, 1280.0, 717.82]),
                   ('Normal', 0.56707, [17.92, 171.34, 1150.84, 720.0])],
}

# The simulator computes in fp16. The stock export decodes its boxes inside the model, so they
# come out at fp16's resolution (a quarter to half a pixel at 256-1024): IoU 0.994 at worst on
# these photos; the zoo layout decodes them here in float (0.999). Scores differ by < 0.001.
NPU_MIN_IOU = 0.99
NPU_MAX_SCORE_DIFF = 0.01


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def assert_same_people(got, expected, min_iou, max_score_diff):
    """
    Assert that ``got`` holds each detection of ``expected``, and nothing else.

    Both are {photo: [(class, score, box)]}; each expected detection is paired with the best
    overlapping one of its class.
    """
    assert sorted(got) == sorted(expected)
    for photo, wanted in expected.items():
        found = list(got[photo])
        assert len(found) == len(wanted), f'{photo}: {found} != {wanted}'
        for name, score, box in wanted:
            same_class = [d for d in found if d[0] == name]
            assert same_class, f'{photo}: no {name} left for {score} at {box} in {found}'
            best = max(same_class, key=lambda d: iou(d[2], box))
            assert iou(best[2], box) >= min_iou, f'{photo}: {best} against {name} {score} {box}'
            assert abs(best[1] - score) <= max_score_diff, f'{photo}: {best} against {score}'
            found.remove(best)


def people(detections):
    return [(d['class_name'], d['score'], d['box']) for d in detections]


def run_tool(tool: str, args, simulator: str = '') -> subprocess.CompletedProcess:
    """Run ``python -m hobot_npu_infer.tools.TOOL ARGS`` as a user does; it must succeed."""
    env = dict(os.environ)
    if simulator:
        env[PYTHON_ENV] = simulator
    result = subprocess.run([sys.executable, '-m', f'hobot_npu_infer.tools.{tool}', *args],
                            cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=TOOL_TIMEOUT)
    assert result.returncode == 0, f'{tool} {args} failed:\n{result.stderr[-3000:]}'
    return result


def detect(photos, model, backend='onnxruntime', simulator='', extra=()):
    """Run ``detect --json``: each photo's detections by file name, and the model's note."""
    result = run_tool('detect', [*photos, '--model', model, '--backend', backend, '--json',
                                 *extra], simulator)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{')]
    assert [line['image'] for line in lines] == list(photos)
    note = result.stderr.splitlines()[0]
    return {os.path.basename(line['image']): people(line['detections']) for line in lines}, note


@pytest.fixture(scope='module')
def fall_photos(fetched_models):
    return [fetched_models[name] for name in PHOTOS]


@pytest.fixture(scope='module')
def onnx_people(fetched_models, fall_photos):
    """Return what ONNX Runtime finds with the stock export and nothing but its path."""
    return detect(fall_photos, fetched_models['best_fp16.onnx'])[0]


@pytest.fixture(scope='module')
def labels(tmp_path_factory):
    path = tmp_path_factory.mktemp('labels') / 'fall.txt'
    path.write_text('\n'.join(CLASS_NAMES) + '\n')
    return str(path)


# --- the stock Ultralytics export ----------------------------------------------------------------


def test_onnxruntime_finds_the_people_ultralytics_finds(onnx_people):
    assert_same_people(onnx_people, ULTRALYTICS, min_iou=0.999, max_score_diff=1e-3)


@pytest.fixture(scope='module')
def converted(rknn_simulator, fetched_models, tmp_path_factory):
    """Return the .rknn file rknn_convert wrote from the stock export, and the command's run."""
    path = str(tmp_path_factory.mktemp('rknn-user') / 'best_fp16.rknn')
    result = run_tool('rknn_convert', [fetched_models['best_fp16.onnx'], '-o', path],
                      rknn_simulator)
    return path, result


def test_rknn_convert_records_the_export_metadata_and_the_normalisation(converted):
    path, result = converted
    assert result.stdout.splitlines() == [
        f'wrote {path} ({os.path.getsize(path) / 2 ** 20:.1f} MB) for rk3588, fp16, batch fixed 1',
        'input: images [1,640,640,3] uint8 NHWC',
        'outputs: output0 [1,6,8400] float32']
    with open(path, 'rb') as f:
        assert f.read(4) == b'RKNN'
    with open(path + '.json') as f:
        record = json.load(f)
    assert record['metadata']['task'] == 'detect'
    assert record['metadata']['names'] == "{0: 'Normal', 1: 'Fall'}"
    assert record['metadata']['imgsz'] == '[640, 640]'
    assert record['metadata']['author'] == 'Ultralytics'
    # The board feeds uint8 pixels: the export's 1/255 is inside the model, from its metadata.
    assert (record['mean'], record['std'], record['channel_order']) == (
        [0.0] * 3, [255.0] * 3, 'rgb')
    assert 'folded into the model: mean [0,0,0] std [255,255,255] of rgb 0..255 pixels, from ' \
        "the model's pre-processing" in result.stderr


@pytest.mark.parametrize('model, flags, expected', [
    ('best_fp16.onnx', [], ([0.0] * 3, [255.0] * 3, "the model's pre-processing")),
    ('best_fp16.onnx', ['--std', '1,1,1'], ([0.0] * 3, [1.0] * 3, 'given')),
    ('centerface', [], ([0.0] * 3, [1.0] * 3, "the model's pre-processing")),
])
def test_rknn_convert_folds_in_what_detect_would_use(fetched_models, model, flags, expected):
    path = fetched_models.get(model, model)
    args = rknn_convert.parse_args([path, '-o', 'unused.rknn', *flags])
    settings, why_unknown = rknn_convert.model_settings(resolve_model(path), args.decoder)
    mean, std, order, source = rknn_convert.normalisation(args, settings, why_unknown)
    assert (mean, std, source) == expected and order == 'rgb'


@pytest.fixture
def board(tmp_path, monkeypatch, fetched_models):
    """
    Make the fake rknnlite importable as ``rknnlite.api``, its NPU computing the real model.

    Each run checks its inputs as the fake does, then computes the stock export in ONNX Runtime
    on the pixels normalised by what the file's record says was folded into it.
    """
    import onnxruntime
    fake_rknnlite.installed(tmp_path, monkeypatch)
    session = onnxruntime.InferenceSession(fetched_models['best_fp16.onnx'],
                                           providers=['CPUExecutionProvider'])
    checked = fake_rknnlite.RKNNLite.inference

    def inference(self, inputs, data_format=None, **kwargs):
        if checked(self, inputs, data_format, **kwargs) is None:
            return None
        with open(self.path + '.json') as f:
            record = json.load(f)
        pixels = np.asarray(inputs[0]).astype(np.float32)  # NHWC, as the board feeds it
        normalised = (pixels - np.float32(record['mean'])) / np.float32(record['std'])
        return session.run(None, {'images': normalised.transpose(0, 3, 1, 2)})

    monkeypatch.setattr(fake_rknnlite.RKNNLite, 'inference', inference)
    yield fake_rknnlite
    fake_rknnlite.uninstalled()


def test_a_board_configures_the_rknn_file_from_its_record(converted, board, fall_photos,
                                                          onnx_people):
    from hobot_npu_infer.core.imaging.image_files import read_image
    path, _ = converted
    pipeline = DetectionPipeline.from_config(PipelineConfig(backend='rknn', model=path))
    try:
        assert pipeline.model.where == 'board'
        assert "[Ultralytics detect export, from the file's metadata]" in pipeline.model_note
        assert 'the model takes uint8 pixels: it normalises them itself' in pipeline.model_note
        assert list(pipeline.class_names) == list(CLASS_NAMES)
        results, _ = pipeline.detect([read_image(p) for p in fall_photos])
    finally:
        for model in pipeline.runtimes:
            model.close()
    assert board.instances[0].calls[-1]['dtypes'] == [np.dtype(np.uint8)]
    got = {os.path.basename(p): [(d.class_name, d.score, list(d.box)) for d in r.detections]
           for p, r in zip(fall_photos, results)}
    assert_same_people(got, onnx_people, min_iou=0.999, max_score_diff=1e-3)


def test_detect_on_the_simulator_finds_the_people_onnx_runtime_finds(
        rknn_simulator, fetched_models, fall_photos, onnx_people):
    got, note = detect(fall_photos, fetched_models['best_fp16.onnx'], 'rknn', rknn_simulator)
    assert ('decoder yolov8 (num_classes=2, max_detections=300, nms_threshold=0.7) [Ultralytics '
            "detect export, from the file's metadata], 2 class(es) (Normal, Fall), input 640x640 "
            'letterbox pad 114 rgb scale 1/255, score threshold 0.25') in note
    assert note.endswith('the model takes uint8 pixels: it normalises them itself')
    assert_same_people(got, onnx_people, NPU_MIN_IOU, NPU_MAX_SCORE_DIFF)


def test_compare_reports_every_person_matched(rknn_simulator, fetched_models, fall_photos,
                                              onnx_people, tmp_path):
    report_path = tmp_path / 'compare.json'
    result = run_tool('compare', [*fall_photos, '--model', fetched_models['best_fp16.onnx'],
                                  '--backend', 'rknn', '--thresholds', '0.25,0.5',
                                  '--json', str(report_path)], rknn_simulator)
    report = json.loads(report_path.read_text())
    assert report['images'] == 2
    for row in report['thresholds']:
        wanted = sum(score >= row['score_threshold']
                     for found in onnx_people.values() for _, score, _ in found)
        assert (row['matched'], row['missed'], row['extra']) == (wanted, 0, 0), row
        assert row['iou_min'] >= NPU_MIN_IOU, row
    assert [row['matched'] for row in report['thresholds']] == [6, 5]
    assert '| 0.25 | 6 | 0 | 0 |' in result.stdout
    assert [m['backend'] for m in report['memory']] == ['onnxruntime', 'rknn']


# --- the same weights in Rockchip's model-zoo layout ---------------------------------------------


@pytest.fixture(scope='module')
def zoo_model(ultralytics_python, fetched_models, tmp_path_factory):
    """Export best.pt in the model-zoo layout with test/zoo_export.py, once."""
    work = tmp_path_factory.mktemp('zoo-export')
    path = str(work / 'best_zoo.onnx')
    env = dict(os.environ, YOLO_OFFLINE='1', YOLO_CONFIG_DIR=str(work / 'ultralytics-config'),
               PYTHONDONTWRITEBYTECODE='1')
    for variable in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV'):
        env.pop(variable, None)  # the Ultralytics environment's own Python, nothing of .venv
    result = subprocess.run([ultralytics_python, ZOO_SCRIPT, fetched_models['best.pt'], '-o',
                             path], cwd=str(work), env=env, capture_output=True, text=True,
                            timeout=TOOL_TIMEOUT)
    assert result.returncode == 0, f'{ZOO_SCRIPT} failed:\n{result.stderr[-4000:]}'
    return path, result.stdout


def zoo_flags(labels):
    # Ultralytics' NMS threshold; the rknn_yolov8 decoder's own default is 0.45
    return ['--decoder', 'rknn_yolov8', '--labels', labels, '--decoder-option',
            'nms_threshold=0.7']


def test_the_zoo_export_has_three_outputs_per_stride_and_checks_itself(zoo_model):
    path, stdout = zoo_model
    assert 'check on a random input: 8400 anchors' in stdout
    model = read_onnx(path, load_external_data=False)
    outputs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim])
               for o in model.graph.output]
    assert outputs == [(f'stride{s}_{role}', [1, channels, 640 // s, 640 // s])
                       for s in (8, 16, 32)
                       for role, channels in (('box', 64), ('cls', 2), ('score_sum', 1))]
    metadata = {p.key: p.value for p in model.metadata_props}
    assert 'task' not in metadata and 'names' not in metadata  # not the stock output any more
    assert (metadata['strides'], metadata['num_classes']) == ('8,16,32', '2')


def test_the_zoo_layout_decodes_as_the_stock_export_on_onnx_runtime(zoo_model, labels,
                                                                    fall_photos, onnx_people):
    got, note = detect(fall_photos, zoo_model[0], extra=zoo_flags(labels))
    assert 'decoder rknn_yolov8 (nms_threshold=0.7)' in note
    assert_same_people(got, onnx_people, min_iou=0.999, max_score_diff=1e-4)


def test_the_zoo_layout_on_the_simulator_finds_the_same_people(rknn_simulator, zoo_model, labels,
                                                               fall_photos, onnx_people):
    got, note = detect(fall_photos, zoo_model[0], 'rknn', rknn_simulator, zoo_flags(labels))
    assert note.endswith('the model takes uint8 pixels: it normalises them itself')
    assert_same_people(got, onnx_people, NPU_MIN_IOU, NPU_MAX_SCORE_DIFF)


def test_a_decoder_that_does_not_fit_is_not_reported_as_the_backend(fetched_models, fall_photos):
    result = subprocess.run(
        [sys.executable, '-m', 'hobot_npu_infer.tools.detect', fall_photos[0], '--model',
         fetched_models['best_fp16.onnx'], '--decoder', 'rknn_yolov8'], cwd=REPO,
        capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        'error: the model ran, but its outputs cannot be decoded: decoder rknn_yolov8 needs 6 '
        'output(s), the model gave 1')
