"""
The rknn backend in the rknn-toolkit2 simulator.

The rknn backend against the real rknn-toolkit2 simulator (in .venv-rknn, behind a pipe):
CenterFace fixed to 320x320, built for RK3588 in fp16 and int8, at batch 1 and batch 4.
"""

from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.errors import BackendError, ImageError, ModelLoadError
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.pipeline.detection_match import iou_matrix
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
import numpy as np
import pytest

SIZE = (320, 320)
HEATMAP = '537'  # CenterFace's face-score output; the others regress sizes and offsets
PHOTOS = ('astronaut', 'camera', 'coffee', 'chelsea')


@pytest.fixture(scope='module')
def images():
    return [load_sample(name) for name in PHOTOS]


@pytest.fixture(scope='module')
def reference(model_cache):
    return DetectionPipeline.from_config(PipelineConfig(input_size=SIZE))


@pytest.fixture(scope='module')
def calibration(tmp_path_factory, images):
    import cv2
    directory = tmp_path_factory.mktemp('calibration')
    for name, image in zip(PHOTOS, images):
        cv2.imwrite(str(directory / f'{name}.png'), image)
    return str(directory)


@pytest.fixture(scope='module')
def built(rknn_simulator, model_cache, calibration):
    """Pipelines on the simulator, keyed by (precision, batch); built once for the module."""
    pipelines = {}
    for precision in ('fp', 'int8'):
        for batch in (1, 4):
            options = {'input_size': '320x320', 'batch_size': batch,
                       'quantize': precision == 'int8', 'dataset': calibration}
            pipelines[precision, batch] = DetectionPipeline.from_config(PipelineConfig(
                backend='rknn', backend_options=options, input_size=SIZE))
    yield pipelines
    for pipeline in pipelines.values():
        pipeline.model.close()


@pytest.mark.parametrize('precision', ['fp', 'int8'])
@pytest.mark.parametrize('batch', [1, 4])
def test_centerface_is_built_for_rk3588_at_one_size_and_batch(built, precision, batch):
    model = built[precision, batch].model
    assert model.where == 'simulator'
    assert model.batch.fixed_size == batch
    assert model.inputs[0].shape == (batch, 320, 320, 3) and model.inputs[0].layout == 'NHWC'
    assert [o.shape for o in model.outputs] == [(batch, c, 80, 80) for c in (1, 2, 2, 10)]
    assert model.memory_mb > 0 and 'eval_memory' in model.vendor_memory_report


@pytest.mark.parametrize('batch', [1, 4])
def test_fp_outputs_match_onnx_runtime(built, reference, images, batch):
    """
    Match ONNX Runtime within fp16 tolerances.

    RK3588's NPU computes in fp16 (its compiler refuses float32), so exact agreement is not
    possible: the face score matches within 1e-3 on astronaut (measured 8.7e-4) and 5e-3 on
    every photo (2.6e-3 on camera); the log-size, offset and landmark regressions within 0.1
    (measured at most 0.075, on camera).
    """
    pipeline = built['fp', batch]
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        ours = pipeline.infer(pipeline.prepare(chunk))
        theirs = reference.infer(reference.prepare(chunk))
        for spec, a, b in zip(pipeline.model.outputs, ours, theirs):
            diff = np.abs(a - b).max(axis=(1, 2, 3))
            if spec.name != HEATMAP:
                assert diff.max() < 0.1, (spec.name, diff)
                continue
            assert diff.max() < 5e-3, diff
            if start == 0:
                assert diff[0] < 1e-3, diff  # astronaut


@pytest.mark.parametrize('precision', ['fp', 'int8'])
@pytest.mark.parametrize('batch', [1, 4])
def test_the_astronaut_face_is_found_as_onnx_runtime_finds_it(built, reference, images,
                                                              precision, batch):
    expected = reference.detect(images[:1])[0][0].detections
    assert len(expected) == 1
    results, _ = built[precision, batch].detect(images[:batch])
    faces = results[0].detections
    assert len(faces) == 1
    iou = iou_matrix(np.array([expected[0].box]), np.array([faces[0].box]))[0, 0]
    assert iou >= (0.95 if precision == 'fp' else 0.8), iou


def test_a_batch_of_four_gives_each_image_its_own_outputs(built, images):
    one, four = built['fp', 1], built['fp', 4]
    batched = four.infer(four.prepare(images))
    for i, image in enumerate(images):
        alone = one.infer(one.prepare([image]))
        for a, b in zip(batched, alone):
            assert np.abs(a[i] - b[0]).max() < 1e-2


def test_a_short_batch_is_padded_to_the_compiled_four(built, images):
    results, _ = built['fp', 4].detect(images[:2])
    assert len(results) == 2 and len(results[0].detections) == 1


def test_simulator_errors_are_one_line(rknn_simulator, model_cache, tmp_path):
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'not an onnx model')
    with pytest.raises(ModelLoadError, match='cannot read .*corrupt.onnx as ONNX'):
        create_backend('rknn').load(str(corrupt))
    with pytest.raises(BackendError, match='make rknn-sim'):
        create_backend('rknn', simulator_python=str(tmp_path / 'no-python')).load(
            resolve_model('centerface').path)


def test_int8_calibration_needs_real_images(rknn_simulator, model_cache, tmp_path):
    with pytest.raises(BackendError, match='quantize needs dataset'):
        create_backend('rknn', quantize=True)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ImageError, match='no images .* in directory'):
        create_backend('rknn', quantize=True, dataset=str(empty),
                       input_size='320x320').load(resolve_model('centerface').path)


def test_packed_heads_split_from_centerface_run_on_the_npu(rknn_simulator, reference, images):
    """
    Run a trunk and two heads, each built for the NPU.

    The heads read the trunk's features (float NCHW, at the shapes the trunk was built with),
    the faces head finds the astronaut.
    """
    from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, MultiHeadPipeline
    heads = [HeadConfig('faces', ['537', '538', '539'], decoder='centerface',
                        class_names=['face']), HeadConfig('landmarks', ['540'])]
    pipeline = MultiHeadPipeline.from_config(
        PipelineConfig(backend='rknn', input_size=SIZE), heads)
    try:
        packed = pipeline.packed
        assert packed.trunk.inputs[0].layout == 'NHWC'
        [features] = packed.trunk.outputs
        for head in packed.heads.values():
            [spec] = head.model.inputs
            assert (spec.name, spec.shape, spec.dtype) == \
                (features.name, features.shape, np.dtype(np.float32))
        outputs = {o.head: o for o in pipeline.process(images[:1], 0.0)}
        [face] = outputs['faces'].detections
        [expected] = reference.detect(images[:1])[0][0].detections
        assert iou_matrix(np.array([expected.box]), np.array([face.box]))[0, 0] >= 0.9
        [landmarks] = outputs['landmarks'].tensors
        assert landmarks.shape == (1, 10, 80, 80)
    finally:
        for model in [pipeline.packed.trunk] + [h.model for h in pipeline.packed.heads.values()]:
            model.close()


def test_a_head_that_reads_features_is_not_calibrated_as_images(rknn_simulator, calibration):
    from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, MultiHeadPipeline
    with pytest.raises(BackendError, match='int8 calibration takes images'):
        MultiHeadPipeline.from_config(PipelineConfig(
            backend='rknn', input_size=SIZE,
            backend_options={'quantize': True, 'dataset': calibration}),
            [HeadConfig('faces', ['537', '538', '539'], decoder='centerface'),
             HeadConfig('landmarks', ['540'])])
