"""
The hobot backend in infer_node, on the fake BPU runtime.

infer_node with ``backend: hobot`` over real DDS, on the fake BPU runtime
(test/fake_pyeasy_dnn.py) imported in the node's own process as ``hobot_dnn.pyeasy_dnn``: camera
nv12 at the model size reaches the BPU byte for byte and comes back as the known face; a packed
file's two models serve as two heads; /diagnostics describes the model; a bad backend option
stops the node with one line.
"""

import hashlib
import json
import os

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.imaging.nv12 import bgr_to_nv12, nv12_to_bgr
from hobot_npu_infer.ros.qos import image_qos
import numpy as np
import pytest
from ros_harness import Listener, newest_status, RosProcess
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, String
from test_hobot_backend import FACE_BOX, face_model, model, tensor, write

TEST_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # test/: the fakes
W, H = 320, 256  # the models' NV12 input, and the camera's frames
CELL = (40, 30)  # heatmap column and row (stride 4) of the white square in the camera image
FORWARD_LOG = 'HOBOT_FAKE_FORWARD_LOG'

# hobot_dnn/pyeasy_dnn.py in the node's process: the fake, with each forward() recorded (model,
# sha256 of the first input's bytes, core_id, priority) as one JSON line in
# $HOBOT_FAKE_FORWARD_LOG.
WRAPPER = f"""\
import hashlib
import json
import os

import fake_pyeasy_dnn
from fake_pyeasy_dnn import *  # noqa: F401,F403

_forward = fake_pyeasy_dnn.Model.forward


def _recorded_forward(self, args, core_id=0, priority=0):
    outputs = _forward(self, args, core_id, priority)
    line = json.dumps({{'model': self.name, 'ok': outputs is not None,
                       'sha256': hashlib.sha256(self.last_inputs[0]).hexdigest(),
                       'core_id': core_id, 'priority': priority}}) + '\\n'
    with open(os.environ['{FORWARD_LOG}'], 'a') as f:
        f.write(line)
    return outputs


fake_pyeasy_dnn.Model.forward = _recorded_forward
"""


def fake_runtime_env(directory, log_path) -> dict:
    """Return the environment that makes ``hobot_dnn.pyeasy_dnn`` the recording fake in a child."""
    package = directory / 'hobot_dnn'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'pyeasy_dnn.py').write_text(WRAPPER)
    paths = [str(directory), TEST_DIR] + [p for p in [os.environ.get('PYTHONPATH')] if p]
    return {'PYTHONPATH': os.pathsep.join(paths), FORWARD_LOG: str(log_path)}


def at_size(spec: dict, width: int = W, height: int = H) -> dict:
    """
    Return a fake model spec of test_hobot_backend at ``width`` x ``height``.

    Its image input is at that size, and its stride-4 output maps are resized to match.
    """
    spec = json.loads(json.dumps(spec))
    for t in spec['inputs']:
        t['shape'][2:] = [height, width]
    for t in spec['outputs']:
        if len(t['shape']) == 4 and t['shape'][2:] != [1, 1]:
            t['shape'][2:] = [height // 4, width // 4]
    return spec


def brightness_model() -> dict:
    """Return the mean luma of the NV12 input, quantised to int16 (as in test_hobot_backend)."""
    return model('brightness', [tensor('image', 'NV12', (1, 3, H, W))], [
        tensor('mean', 'int16', (1, 1, 1, 1), scale=[1 / 64], op={'kind': 'channel_mean'})])


def camera_image() -> np.ndarray:
    """
    Dark colour noise with one white 4x4 square.

    The noise has a luma well under the face threshold; the square fills heatmap cell CELL
    exactly.
    """
    image = np.random.default_rng(7).integers(0, 101, (H, W, 3), np.uint8)
    c, r = CELL
    image[4 * r:4 * r + 4, 4 * c:4 * c + 4] = 255
    return image


def known_box():
    """
    Move test_hobot_backend's face box to CELL.

    The box is in its 64x64 model (heatmap cell column 6, row 4), moved to CELL: the model
    runs at the camera size, so it is the box in the image as well.
    """
    dx, dy = 4 * (CELL[0] - 6), 4 * (CELL[1] - 4)
    x1, y1, x2, y2 = (v / 2 for v in FACE_BOX)
    return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


def forward_records(path) -> list:
    """Return the complete lines of the forward log so far."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f.read().splitlines(keepends=True)
                if line.endswith('\n')]


def digest(nv12: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(nv12).tobytes()).hexdigest()


def assert_known_face(detections):
    [face] = detections
    assert face['class_name'] == 'face' and face['score'] == 1.0
    assert all(abs(g - w) <= 0.01 for g, w in zip(face['box'], known_box())), face['box']


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    """Provide the camera image as a PNG and as the NV12 bytes image_source publishes for it."""
    directory = tmp_path_factory.mktemp('hobot_scene')
    image = camera_image()
    path = str(directory / 'camera.png')
    cv2.imwrite(path, image)
    nv12 = bgr_to_nv12(image)
    # A BGR round trip would change these bytes: equal bytes at the BPU mean pass-through.
    assert not np.array_equal(bgr_to_nv12(nv12_to_bgr(nv12)), nv12)
    return path, nv12


CAM = '/hobot/image_raw'
DETECTIONS = f'{CAM}/detections'


@pytest.fixture(scope='module')
def hobot_node(tmp_path_factory, scene):
    """
    Run infer_node on a one-model fake .bin.

    The model is CenterFace-shaped, NV12 320x256, priority 7; image_source feeds it nv12
    frames at the model size.
    """
    directory = tmp_path_factory.mktemp('hobot_node')
    image_path, _ = scene
    model_file = write(directory / 'faces.bin', at_size(face_model('faces')))
    log = directory / 'forward.jsonl'
    listener = Listener('hobot_listener')
    node = camera = None
    try:
        listener.subscribe(String, DETECTIONS, qos=100)
        listener.subscribe(Image, CAM, qos=image_qos('reliable', 5), keep=3)
        listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
        node = RosProcess('infer_node', {
            'inputs': [CAM], 'backend': 'hobot', 'model': model_file, 'decoder': 'centerface',
            'class_names': ['face'], 'backend_options': ['hobot.priority=7'],
            'score_threshold': 0.5, 'detections_format': 'json',
            'qos_reliability': ['reliable']}, log_path=str(directory / 'node.log'),
            node_name='infer_hobot', env=fake_runtime_env(directory / 'runtime', log))
        camera = RosProcess('image_source', {
            'images': [image_path], 'topics': [CAM], 'encoding': 'nv12', 'rate_hz': 4.0,
            'qos_reliability': 'reliable'}, log_path=str(directory / 'camera.log'))
        yield listener, node, str(log)
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0, 0], node.output()


def test_camera_nv12_reaches_the_bpu_untouched_and_the_known_face_comes_back(hobot_node, scene):
    listener, node, log = hobot_node
    _, nv12 = scene
    assert listener.wait_for(lambda: len(listener.received(DETECTIONS)) >= 3, timeout=120), \
        node.output()
    for msg in listener.received(DETECTIONS):
        payload = json.loads(msg.data)
        assert (payload['width'], payload['height']) == (W, H)
        assert_known_face(payload['detections'])

    assert listener.wait_for(lambda: listener.received(CAM), timeout=30)
    published = listener.received(CAM)[-1]  # what image_source sends is what we expect
    assert (published.encoding, published.width, published.height, published.step) == \
        ('nv12', W, H, W)
    assert bytes(published.data) == nv12.tobytes()

    assert listener.wait_for(lambda: len(forward_records(log)) >= 4, timeout=30)
    warm_up, *frames = forward_records(log)
    assert warm_up['sha256'] == digest(bgr_to_nv12(np.zeros((H, W, 3), np.uint8)))
    assert frames and all(r['sha256'] == digest(nv12) for r in frames), frames
    assert all(r['model'] == 'faces' and r['ok'] and r['priority'] == 7 and r['core_id'] == 0
               for r in [warm_up, *frames])
    assert 'on hobot (fixed 1 batch' in node.output()


def test_diagnostics_describe_the_hobot_model_without_errors(hobot_node):
    listener, node, _ = hobot_node

    def model_status():
        status = newest_status(listener, 'infer_hobot: model')
        if status is None:
            return None
        values = {kv.key: kv.value for kv in status.values}
        return (status, values) if int(values['runs']) >= 2 else None
    assert listener.wait_for(lambda: model_status() is not None, timeout=120), node.output()
    status, values = model_status()
    assert values['backend'] == 'hobot' and values['batch'] == 'fixed 1'
    assert values['backend_errors'] == '0' and values['model_file_present'] == 'true'
    assert status.level == bytes([0]), status.message  # OK
    input_status = newest_status(listener, f'infer_hobot: input {CAM}')
    inputs = {kv.key: kv.value for kv in input_status.values}
    assert inputs['conversion_errors'] == '0'


def test_packed_bin_serves_two_models_as_two_heads(tmp_path, scene):
    image_path, nv12 = scene
    cam = '/hobot_pack/image_raw'
    faces_topic, brightness_topic = f'{cam}/faces/detections', f'{cam}/brightness/tensor_0'
    pack = write(tmp_path / 'pack.bin', at_size(face_model('faces')), brightness_model())
    log = tmp_path / 'forward.jsonl'
    listener = Listener('hobot_pack_listener')
    node = camera = None
    try:
        listener.subscribe(String, faces_topic, qos=100)
        listener.subscribe(Float32MultiArray, brightness_topic, qos=100)
        node = RosProcess('infer_node', {
            'inputs': [cam], 'backend': 'hobot', 'model': pack, 'score_threshold': 0.5,
            'head_names': ['faces', 'brightness'], 'heads.faces.model_name': 'faces',
            'heads.faces.decoder': 'centerface', 'heads.faces.class_names': ['face'],
            'heads.brightness.model_name': 'brightness', 'detections_format': 'json',
            'qos_reliability': ['reliable']}, log_path=str(tmp_path / 'node.log'),
            node_name='infer_hobot_pack', env=fake_runtime_env(tmp_path / 'runtime', log))
        camera = RosProcess('image_source', {
            'images': [image_path], 'topics': [cam], 'encoding': 'nv12', 'rate_hz': 4.0,
            'qos_reliability': 'reliable'}, log_path=str(tmp_path / 'camera.log'))
        assert listener.wait_for(lambda: len(listener.received(faces_topic)) >= 2 and len(
            listener.received(brightness_topic)) >= 2, timeout=120), node.output()
        for msg in listener.received(faces_topic):
            payload = json.loads(msg.data)
            assert (payload['width'], payload['height']) == (W, H)
            assert_known_face(payload['detections'])
        luma = nv12[:H].mean()
        for msg in listener.received(brightness_topic):
            assert [d.size for d in msg.layout.dim] == [1, 1, 1, 1]
            assert abs(msg.data[0] - luma) <= 1 / 128  # within half a quantisation step
        records = forward_records(log)
        assert {r['model'] for r in records} == {'faces', 'brightness'}
        served = [r for r in records if r['sha256'] == digest(nv12)]  # after the warm-up
        assert {r['model'] for r in served} == {'faces', 'brightness'}
        assert all(r['ok'] for r in records)
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0, 0], node.output()


def test_a_bad_hobot_option_exits_2_with_one_line_naming_it(tmp_path):
    model_file = write(tmp_path / 'faces.bin', at_size(face_model('faces')))
    node = RosProcess('infer_node', {
        'inputs': ['/hobot_bad/image_raw'], 'backend': 'hobot', 'model': model_file,
        'decoder': 'centerface', 'backend_options': ['hobot.priority=999']},
        log_path=str(tmp_path / 'node.log'), node_name='infer_hobot_bad',
        env=fake_runtime_env(tmp_path / 'runtime', tmp_path / 'forward.jsonl'))
    try:
        node.proc.wait(timeout=120)
    finally:
        code = node.stop()
    output = node.output()
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == ['error: backend hobot option priority must be an integer within 0..255, '
                     'got 999'], output
    assert not os.path.exists(tmp_path / 'forward.jsonl')  # nothing was loaded or run
