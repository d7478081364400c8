"""The detect command on the real CenterFace model and real photos, and its one-line errors."""

import json
import subprocess
import sys

from conftest import REPO
import cv2
import pytest

ASTRONAUT_FACE = (182, 58, 270, 178)


def detect(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'hobot_npu_infer.tools.detect', *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env=env)


def test_astronaut_has_one_face_and_the_cat_none(photos, tmp_path):
    out_dir = tmp_path / 'annotated'
    proc = detect(photos['astronaut'], photos['chelsea'], '--model', 'centerface', '--json',
                  '--save-annotated', str(out_dir))
    assert proc.returncode == 0, proc.stderr
    astronaut, chelsea = [json.loads(line) for line in proc.stdout.splitlines()]

    assert (astronaut['image'], astronaut['width'], astronaut['height']) == \
        (photos['astronaut'], 512, 512)
    [face] = astronaut['detections']
    assert face['class_name'] == 'face' and face['class_id'] == 0
    assert face['score'] > 0.8
    for got, want in zip(face['box'], ASTRONAUT_FACE):
        assert abs(got - want) <= 10
    x1, y1, x2, y2 = face['box']
    assert len(face['keypoints']) == 5
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face['keypoints'])
    assert set(astronaut['timing_ms']) == {'preprocess', 'inference', 'postprocess'}
    assert all(v > 0 for v in astronaut['timing_ms'].values())

    assert chelsea['detections'] == []
    saved = cv2.imread(str(out_dir / 'astronaut.png'))
    original = cv2.imread(photos['astronaut'])
    assert saved.shape == original.shape
    assert (saved != original).any()  # something was drawn
    assert (cv2.imread(str(out_dir / 'chelsea.png')) == cv2.imread(photos['chelsea'])).all()


def test_input_size_and_threshold_options(photos):
    proc = detect(photos['astronaut'], '--json', '--input-size', '320x256',
                  '--score-threshold', '0.99')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['detections'] == []
    proc = detect(photos['astronaut'], '--json', '--input-size', '640x480')
    [face] = json.loads(proc.stdout)['detections']
    assert all(abs(g - w) <= 10 for g, w in zip(face['box'], ASTRONAUT_FACE))


def test_plain_output_is_one_line_per_image(photos):
    proc = detect(photos['astronaut'])
    assert proc.returncode == 0
    assert proc.stdout.count('\n') == 1 and '1 detection(s): face' in proc.stdout


def one_line_error(proc, *words):
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_missing_model_file(photos, tmp_path):
    missing = str(tmp_path / 'nowhere.onnx')
    one_line_error(detect(photos['astronaut'], '--model', missing, '--decoder', 'yolov8'),
                   'not found', missing)


def test_corrupt_onnx_file(photos, tmp_path):
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'\x08\x07this is not a protobuf' * 10)
    one_line_error(detect(photos['astronaut'], '--model', str(corrupt), '--decoder', 'yolov8'),
                   'cannot read', str(corrupt), 'as ONNX')


def test_unknown_model_name(photos):
    one_line_error(detect(photos['astronaut'], '--model', 'yolov99'), "'yolov99'", 'centerface')


@pytest.mark.parametrize('content, words', [
    (b'', ['empty']),
    (b'GIF89a not really an image', ['cannot decode']),
])
def test_unreadable_images_are_skipped_and_reported(photos, tmp_path, content, words):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(content)
    proc = detect(str(bad), photos['astronaut'], '--json')
    line = one_line_error(proc, str(bad), *words)
    assert line.startswith('error: ')
    assert proc.returncode == 1
    [result] = [json.loads(x) for x in proc.stdout.splitlines()]  # the good image still ran
    assert result['image'] == photos['astronaut'] and len(result['detections']) == 1


def test_missing_image(photos, tmp_path):
    one_line_error(detect(str(tmp_path / 'gone.png')), 'not found', 'gone.png')


def test_a_model_file_without_metadata_is_decoded_by_its_output_shapes(photos, model_cache):
    from hobot_npu_infer.core.models.builtin_models import resolve_model
    path = resolve_model('centerface').path  # the file alone: no built-in profile, no metadata
    proc = detect(photos['astronaut'], '--model', path, '--score-threshold', '0.5')
    assert proc.returncode == 0, proc.stderr
    assert 'decoder centerface' in proc.stderr and 'guessed from the output shapes' in proc.stderr
    assert '1 detection(s): 0 ' in proc.stdout  # the face, as class 0: the file names none


def test_outputs_of_no_known_layout_name_the_shapes_and_layouts_tried(photos, tmp_path):
    import onnx
    from onnx import helper, TensorProto
    graph = helper.make_graph(
        [helper.make_node('ReduceMean', ['images'], ['features'], axes=[2, 3], keepdims=0),
         helper.make_node('Unsqueeze', ['features', 'axes'], ['out'])], 'odd',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 3, 1, 1, 1])],
        [helper.make_tensor('axes', TensorProto.INT64, [2], [2, 3])])
    path = str(tmp_path / 'odd.onnx')
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]), path)
    one_line_error(detect(photos['astronaut'], '--model', path), '[1,3,1,1,1]',
                   'layouts tried', 'yolov8 [B,4+C,N]', 'name the decoder')


def test_backend_auto_says_what_it_chose_and_why(photos):
    proc = detect(photos['astronaut'], '--backend', 'auto', '--backend-option',
                  'rknn.core_mask=core1', '--decoder-option', 'nms_threshold=0.3')
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0].startswith(
        'backend auto chose onnxruntime: no NPU board found (')
    assert '1 detection(s): face' in proc.stdout


def test_a_malformed_option_is_one_line(photos):
    proc = detect(photos['astronaut'], '--backend-option', 'batch_size')
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: option 'batch_size' is not key=value"
