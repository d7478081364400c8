"""
The hobot backend, off the board.

The hobot backend (D-Robotics BPU) against a faithful fake of hobot_dnn.pyeasy_dnn's documented
interface (test/fake_pyeasy_dnn.py): tensor specs, de-quantisation, NV12 inputs, fixed batch,
runtime pools, packed files as heads, and whole pipelines, all off the board.
"""

import json
import math
import sys
import types
from types import SimpleNamespace

import cv2
from error_checks import raises_one_line
import fake_pyeasy_dnn
from hobot_npu_infer.core.backends import backend_names, create_backend
from hobot_npu_infer.core.backends.tensors import NV12
from hobot_npu_infer.core.errors import (
    BackendError,
    ConfigError,
    ModelLoadError,
    ModelNotFoundError,
)
from hobot_npu_infer.core.imaging.nv12 import bgr_to_nv12
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, MultiHeadPipeline
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
from hobot_npu_infer.core.streaming.offline import detect_files
from hobot_npu_infer.ros.image_conversion import image_to_array
import numpy as np
import pytest

# A white 8x8 square on black, 128x128: at the model's 64x64 it fills heatmap cell (row 4, col 6).
SQUARE = (48, 32, 56, 40)  # x1 y1 x2 y2 in the image
FACE_BOX = (36.0, 20.0, 68.0, 52.0)  # a 16x16 model-pixel box around that cell, in the image


def install(monkeypatch, package: str) -> types.ModuleType:
    """Make the fake runtime importable as ``package.pyeasy_dnn``, as the board image ships it."""
    module = types.ModuleType(package)
    module.__path__ = []
    module.pyeasy_dnn = fake_pyeasy_dnn
    monkeypatch.setitem(sys.modules, package, module)
    monkeypatch.setitem(sys.modules, f'{package}.pyeasy_dnn', fake_pyeasy_dnn)
    fake_pyeasy_dnn.loaded.clear()
    fake_pyeasy_dnn.running.update(now=0, most=0)
    return fake_pyeasy_dnn


@pytest.fixture
def dnn(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hobot_dnn_rdkx5', None)
    return install(monkeypatch, 'hobot_dnn')


def tensor(name, tensor_type, shape, layout='NCHW', scale=(), op=None) -> dict:
    spec = {'name': name, 'tensor_type': tensor_type, 'layout': layout, 'shape': list(shape),
            'scale_data': list(scale)}
    if op is not None:
        spec['op'] = op
    return spec


def model(name, inputs, outputs, latency_ms=0) -> dict:
    return {'name': name, 'inputs': inputs, 'outputs': outputs, 'latency_ms': latency_ms}


def write(path, *models) -> str:
    path.write_text(json.dumps({'models': list(models)}))
    return str(path)


def face_model(name='faces', batch=1, latency_ms=0) -> dict:
    """
    CenterFace-shaped BPU model on a 64x64 NV12 input.

    The heatmap is the luma of each stride-4 cell (white 1.0, black 0.0) quantised to int8;
    box scale, offset and landmarks are constants, two of them quantised as well.
    """
    n = batch
    return model(name, [tensor('image', 'NV12', (n, 3, 64, 64))], [
        tensor('heatmap', 'int8', (n, 1, 16, 16), scale=[1 / 127], op={
            'kind': 'luma_pool', 'stride': 4, 'gain': 1 / 219, 'bias': -16 / 219}),
        tensor('scale', 'float32', (n, 2, 16, 16), op={
            'kind': 'constant', 'value': [math.log(4), math.log(4)]}),
        tensor('offset', 'int32', (n, 2, 16, 16), scale=[0.5, 0.25], op={
            'kind': 'constant', 'value': [0.0, 0.0]}),
        tensor('landmarks', 'float32', (n, 10, 16, 16), op={'kind': 'constant', 'value': 0.5}),
    ], latency_ms)


def square_image(value=255) -> np.ndarray:
    image = np.zeros((128, 128, 3), np.uint8)
    x1, y1, x2, y2 = SQUARE
    image[y1:y2, x1:x2] = value
    return image


def assert_box(detection, box, tolerance=1e-3):
    assert all(abs(g - w) <= tolerance for g, w in zip(detection.box, box)), detection.box


# --- the runtime, its import and the backend's options ------------------------------------------


def test_hobot_is_registered_and_the_package_imports_without_the_runtime():
    assert 'hobot' in backend_names()
    assert 'hobot_dnn' not in sys.modules or sys.modules['hobot_dnn'] is None


def test_missing_runtime_is_one_line_that_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hobot_dnn', None)
    monkeypatch.setitem(sys.modules, 'hobot_dnn_rdkx5', None)
    message = str(raises_one_line(BackendError, create_backend, 'hobot'))
    assert message.startswith('backend hobot needs the BPU runtime hobot_dnn.pyeasy_dnn (or '
                              'hobot_dnn_rdkx5), which ships with RDK X3/X5 board images')
    assert message.endswith('Use backend onnxruntime with an .onnx model on this machine')


def test_rdkx5_module_name_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'hobot_dnn', None)
    install(monkeypatch, 'hobot_dnn_rdkx5')
    [loaded] = create_backend('hobot').load(write(tmp_path / 'f.bin', face_model()))
    assert loaded.name == 'faces' and len(fake_pyeasy_dnn.loaded) == 1


@pytest.mark.parametrize('options, message', [
    ({'cores': 3}, 'option cores must be 0 .* got 3'),
    ({'cores': True}, 'option cores must be 0 .* got True'),
    ({'priority': 256}, 'option priority must be an integer within 0..255, got 256'),
    ({'priority': 'high'}, "option priority must be an integer within 0..255, got 'high'"),
    ({'core': 1}, "bad option for backend hobot: .*unexpected keyword argument 'core'"),
])
def test_options_are_few_and_checked(dnn, options, message):
    with pytest.raises(ConfigError, match=message):
        create_backend('hobot', **options)


def test_missing_and_rejected_files(dnn, tmp_path):
    backend = create_backend('hobot')
    with pytest.raises(ModelNotFoundError, match=r'model file not found: .*nope\.bin'):
        backend.load(str(tmp_path / 'nope.bin'))
    junk = tmp_path / 'junk.bin'
    junk.write_bytes(b'\x00not a model')
    with pytest.raises(ModelLoadError) as error:
        backend.load(str(junk))
    assert str(error.value) == (f'cannot load model {junk}: the BPU runtime rejected it '
                                f'(hbDNNInitializeFromFiles failed)')
    with pytest.raises(ModelLoadError, match='found no model in it'):
        backend.load(write(tmp_path / 'empty.bin'))


# --- tensor specs -----------------------------------------------------------------------------


def test_specs_come_from_the_tensor_properties(dnn, tmp_path):
    path = write(tmp_path / 'm.bin', face_model(batch=1), model('features', [
        tensor('x', 'float32', (1, 8, 4, 6), 'NCHW'), tensor('y', 'int8', (1, 4, 6, 8), 'NHWC')],
        [tensor('z', 'int32', (1, 1, 1, 8), 'NHWC', op={'kind': 'constant', 'value': 1})]))
    faces, features = create_backend('hobot').load(path)
    [image] = faces.inputs
    assert (image.name, image.shape, image.dtype, image.layout) == \
        ('image', (1, 96, 64), np.uint8, NV12)
    assert image.image_size == (64, 64) and faces.batch.fixed_size == 1
    assert [o.describe() for o in faces.outputs] == [
        'heatmap [1,1,16,16] float32 NCHW', 'scale [1,2,16,16] float32 NCHW',
        'offset [1,2,16,16] float32 NCHW', 'landmarks [1,10,16,16] float32 NCHW']
    assert [i.describe() for i in features.inputs] == ['x [1,8,4,6] float32 NCHW',
                                                       'y [1,4,6,8] int8 NHWC']
    assert features.outputs[0].describe() == 'z [1,1,1,8] int32 NHWC'  # not quantised: as is


def test_image_types_the_backend_cannot_prepare_are_load_errors(dnn, tmp_path):
    path = write(tmp_path / 'y.bin', model('grey', [tensor('image', 'Y', (1, 1, 8, 8))], []))
    with pytest.raises(ModelLoadError, match='model grey input image takes Y images'):
        create_backend('hobot').load(path)


def test_nv12_separate_and_nhwc_nv12_are_the_same_nv12_bytes(dnn, tmp_path):
    path = write(tmp_path / 'm.bin', face_model(), model('sep', [
        tensor('image', 'NV12_SEPARATE', (1, 64, 64, 3), 'NHWC')], []))
    faces, separate = create_backend('hobot').load(path)
    assert separate.inputs[0].shape == faces.inputs[0].shape == (1, 96, 64)
    assert separate.inputs[0].layout == NV12


# --- de-quantisation ---------------------------------------------------------------------------


def test_outputs_are_dequantised_correctly(dnn, tmp_path):
    raw8 = np.array([-128, -1, 0, 1, 127, 64], np.int8)  # one image of (1, 1, 2, 3) NHWC
    raw32 = np.array([[7, -7], [100000, -3]], np.int32).reshape(1, 2, 2, 1)  # NCHW, 2 channels
    raw16 = np.array([-32768, 32767, 5, -5], np.int16)
    path = write(tmp_path / 'q.bin', model('q', [tensor('x', 'float32', (1, 1, 1, 4))], [
        tensor('per_tensor_s8', 'int8', (1, 1, 2, 3), 'NHWC', [0.5],
               {'kind': 'values', 'data': raw8.tolist()}),
        tensor('per_channel_s8', 'int8', (1, 1, 2, 3), 'NHWC', [0.5, 0.25, 2.0],
               {'kind': 'values', 'data': raw8.tolist()}),
        tensor('per_channel_s32', 'int32', (1, 2, 2, 1), 'NCHW', [1e-3, 0.125],
               {'kind': 'values', 'data': raw32.reshape(-1).tolist()}),
        tensor('per_tensor_s16', 'int16', (1, 4, 1, 1), 'NCHW', [1 / 1024],
               {'kind': 'values', 'data': raw16.tolist()}),
        tensor('plain_f32', 'float32', (1, 1, 1, 2), 'NCHW', [],
               {'kind': 'values', 'data': [1.5, -2.25]}),
    ]))
    [q] = create_backend('hobot').load(path)
    assert all(o.dtype == np.float32 for o in q.outputs)
    s8, s8c, s32c, s16, f32 = q.run([np.zeros((1, 1, 1, 4), np.float32)])
    np.testing.assert_array_equal(s8.reshape(-1), [-64.0, -0.5, 0.0, 0.5, 63.5, 32.0])
    # NHWC: the scale runs along the last axis, channel by channel (0.5, 0.25, 2.0).
    np.testing.assert_array_equal(s8c.reshape(-1), [-64.0, -0.25, 0.0, 0.5, 31.75, 128.0])
    # NCHW: along axis 1; channel 0 is (7, -7) * 0.001, channel 1 (100000, -3) * 0.125.
    np.testing.assert_allclose(s32c.reshape(2, 2), [[0.007, -0.007], [12500.0, -0.375]],
                               rtol=1e-6)
    np.testing.assert_array_equal(s16.reshape(-1), [-32.0, 32767 / 1024, 5 / 1024, -5 / 1024])
    np.testing.assert_array_equal(f32.reshape(-1), [1.5, -2.25])
    assert all(a.dtype == np.float32 for a in (s8, s8c, s32c, s16, f32))


def test_computed_outputs_survive_quantisation_within_half_a_step(dnn, tmp_path):
    [faces] = create_backend('hobot').load(write(tmp_path / 'f.bin', face_model()))
    heatmap, _, offset, _ = faces.run([bgr_to_nv12(cv2.resize(square_image(), (64, 64)))[None]])
    assert heatmap[0, 0, 4, 6] == 1.0 and heatmap[0, 0, 0, 0] == 0.0
    assert not offset.any()


def test_a_scale_that_fits_no_channel_axis_is_a_load_error(dnn, tmp_path):
    path = write(tmp_path / 'bad.bin', model('bad', [tensor('x', 'float32', (1, 1, 1, 4))], [
        tensor('out', 'int8', (1, 4, 5, 6), 'NCHW', [0.1, 0.2, 0.3],
               {'kind': 'constant', 'value': 0})]))
    with pytest.raises(ModelLoadError, match='output out has 3 scale values but 4 channels on '
                                             'its quantisation axis 1'):
        create_backend('hobot').load(path)


# --- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize('layout, shape', [('NCHW', (1, 3, 4, 5)), ('NHWC', (1, 4, 5, 3))])
def test_feature_map_inputs_reach_the_runtime_in_their_layout(dnn, tmp_path, layout, shape):
    out_shape = (1, 3, 1, 1) if layout == 'NCHW' else (1, 1, 1, 3)
    path = write(tmp_path / 'f.bin', model('f', [tensor('x', 'float32', shape, layout)], [
        tensor('means', 'float32', out_shape, layout, op={'kind': 'channel_mean'})]))
    [features] = create_backend('hobot').load(path)
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    [means] = features.run({'x': x})
    axes = (0, 2, 3) if layout == 'NCHW' else (0, 1, 2)
    np.testing.assert_allclose(means.reshape(-1), x.mean(axis=axes), rtol=1e-5)


def test_inputs_of_the_wrong_shape_or_name_are_backend_errors(dnn, tmp_path):
    [faces] = create_backend('hobot').load(write(tmp_path / 'f.bin', face_model()))
    with pytest.raises(BackendError, match=r'input image takes shape \[1, 96, 64\], got '
                                           r'\[1, 64, 64\]'):
        faces.run([np.zeros((1, 64, 64), np.uint8)])
    with pytest.raises(BackendError, match='needs input image; got picture'):
        faces.run({'picture': np.zeros((1, 96, 64), np.uint8)})


def test_a_failed_forward_is_one_line(dnn, tmp_path, monkeypatch):
    [faces] = create_backend('hobot').load(write(tmp_path / 'f.bin', face_model()))
    monkeypatch.setattr(fake_pyeasy_dnn.Model, 'forward', lambda self, *a, **k: None)
    with pytest.raises(BackendError, match='model faces: BPU forward failed \\(the runtime '
                                           'returned no outputs\\)'):
        faces.run([np.zeros((1, 96, 64), np.uint8)])


# --- pipelines ---------------------------------------------------------------------------------


def test_end_to_end_detection_pipeline_finds_the_known_box(dnn, tmp_path):
    path = write(tmp_path / 'faces.bin', face_model())
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        model=path, backend='hobot', decoder='centerface', score_threshold=0.5,
        class_names=['face']))
    assert pipeline.preprocessor.layout == NV12
    [result], _ = pipeline.detect([square_image()])
    [face] = result.detections
    assert face.class_name == 'face' and face.score == 1.0
    assert_box(face, FACE_BOX)
    assert face.keypoints[0] == pytest.approx((52.0, 36.0))  # 0.5 of the box: its centre
    [empty], _ = pipeline.detect([np.zeros((128, 128, 3), np.uint8)])
    assert empty.detections == []


def test_camera_nv12_at_the_model_size_reaches_the_bpu_untouched(dnn, tmp_path):
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        model=write(tmp_path / 'faces.bin', face_model()), backend='hobot',
        decoder='centerface', score_threshold=0.5))
    nv12 = bgr_to_nv12(cv2.resize(square_image(), (64, 64)))
    padded = np.full((96, 72), 0xEE, np.uint8)  # the camera's rows are 72 bytes apart
    padded[:, :64] = nv12
    msg = SimpleNamespace(encoding='nv12', width=64, height=64, step=72, data=padded.tobytes())
    [result], _ = pipeline.detect(*zip(image_to_array(msg, keep_nv12=True)))
    [fake] = fake_pyeasy_dnn.loaded
    assert fake.last_inputs[0] == nv12.tobytes()  # no colour round trip on the way
    assert (result.width, result.height) == (64, 64)
    assert_box(result.detections[0], tuple(v / 2 for v in FACE_BOX))


def test_batch_4_model_takes_padded_batches(dnn, tmp_path):
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        model=write(tmp_path / 'b4.bin', face_model(batch=4)), backend='hobot',
        decoder='centerface', score_threshold=0.5))
    assert pipeline.model.batch.fixed_size == 4 and pipeline.max_batch == 4
    images = [square_image(), np.zeros((128, 128, 3), np.uint8), square_image(),
              square_image(), np.zeros((128, 128, 3), np.uint8)]
    results, _ = pipeline.detect(images)
    assert [len(r.detections) for r in results] == [1, 0, 1, 1, 0]
    for r in (results[0], results[2], results[3]):
        assert_box(r.detections[0], FACE_BOX)
    [fake] = fake_pyeasy_dnn.loaded
    assert len(fake.forward_calls) == 2  # 4 images, then 1 padded to 4
    assert len(fake.last_inputs[0]) == 4 * 96 * 64


def test_runtime_pool_runs_batches_on_both_runtimes(dnn, tmp_path):
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        model=write(tmp_path / 'faces.bin', face_model(latency_ms=30)), backend='hobot',
        backend_options={'cores': 2, 'priority': 7}, decoder='centerface',
        score_threshold=0.5, num_runtimes=2))
    first, second = fake_pyeasy_dnn.loaded
    assert first is not second  # one vendor Model object, with its own buffers, per runtime
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], square_image() if i % 2 else np.zeros((128, 128, 3), np.uint8))
    found = {}
    summary = detect_files(pipeline, paths, max_batch=1,
                           on_result=lambda i, path, r: found.update({i: r.detections}),
                           on_error=lambda i, path, e: pytest.fail(str(e)))
    assert summary.images == 12 and summary.failed == 0
    assert [len(found[i]) for i in range(12)] == [i % 2 for i in range(12)]
    assert first.forward_calls and second.forward_calls
    assert len(first.forward_calls) + len(second.forward_calls) == 12
    assert {c['core_id'] for c in first.forward_calls} == {1}
    assert {c['core_id'] for c in second.forward_calls} == {2}
    assert {c['priority'] for c in first.forward_calls + second.forward_calls} == {7}
    assert fake_pyeasy_dnn.running['most'] == 2  # the two runs overlapped


def test_packed_file_selects_one_model_by_name(dnn, tmp_path):
    path = write(tmp_path / 'pack.bin', face_model('faces'), face_model('faces_b4', batch=4))
    config = PipelineConfig(model=path, backend='hobot', decoder='centerface')
    with pytest.raises(ConfigError, match='holds 2 models \\(faces, faces_b4\\); choose one'):
        DetectionPipeline.from_config(config)
    config.model_name = 'faces_b4'
    assert DetectionPipeline.from_config(config).model.batch.fixed_size == 4


@pytest.mark.parametrize('name_the_file', [True, False])
def test_packed_file_with_two_models_becomes_two_heads(dnn, tmp_path, name_the_file):
    path = write(tmp_path / 'pack.bin', face_model('faces'), model('brightness', [
        tensor('image', 'NV12', (1, 3, 64, 64))], [
        tensor('mean', 'int16', (1, 1, 1, 1), scale=[1 / 64], op={'kind': 'channel_mean'})]))
    file = path if name_the_file else ''
    pipeline = MultiHeadPipeline.from_config(
        PipelineConfig(model=path, backend='hobot', score_threshold=0.5),
        [HeadConfig('faces', file=file, model_name='faces', decoder='centerface',
                    class_names=['face']),
         HeadConfig('brightness', file=file, model_name='brightness')])
    assert len(fake_pyeasy_dnn.loaded) == 2  # the packed file was loaded once
    assert set(pipeline.packed.heads) == {'faces', 'brightness'}
    faces, brightness = pipeline.process([square_image()], 0.0)
    assert faces.head == 'faces' and brightness.head == 'brightness'
    [face] = faces.detections
    assert face.class_name == 'face'
    assert_box(face, FACE_BOX)
    y = bgr_to_nv12(cv2.resize(square_image(), (64, 64)))[:64]
    assert brightness.detections is None
    assert abs(brightness.tensors[0].item() - y.mean()) <= 1 / 128  # within half a step


def test_a_bin_file_says_nothing_of_itself_so_its_outputs_choose_the_decoder(dnn, tmp_path):
    """
    A .bin has no metadata: the loaded outputs' shapes choose the decoder (here YOLOv8's).

    Its NV12 input is uint8, so the YOLO family's 1/255 is the compiled model's own, not
    applied here; the result is the one box the output holds, mapped back to the image.
    """
    anchors = 16
    predictions = np.zeros((1, 6, anchors), np.float32)
    predictions[0, :4, 3] = [32, 24, 16, 8]  # cx cy w h in the 64x64 model input
    predictions[0, 5, 3] = 0.9  # class 1
    bin_model = model('yolo', [tensor('images', 'NV12', (1, 3, 64, 64))], [
        tensor('output0', 'float32', (1, 6, anchors),
               op={'kind': 'values', 'data': predictions[0].tolist()})])
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        model=write(tmp_path / 'yolo.bin', bin_model), backend='hobot'))
    assert 'decoder yolov8' in pipeline.model_note
    assert 'guessed from the output shapes' in pipeline.model_note
    assert 'normalises them itself' in pipeline.model_note
    assert pipeline.preprocessor.layout == NV12 and pipeline.score_threshold == 0.25
    [result], _ = pipeline.detect([np.zeros((128, 128, 3), np.uint8)])
    [found] = result.detections
    assert found.class_id == 1 and found.score == pytest.approx(0.9)
    assert_box(found, (48, 40, 80, 56), tolerance=0.01)  # the 64x64 input is the image / 2
