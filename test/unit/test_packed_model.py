"""
Packed models.

Packed models on the real CenterFace: (a) one file split into trunk and heads, (b) a pack of
files with an explicit trunk or none; and the multi-head pipeline's per-head schedule.
"""

import os

import cv2
from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.backends.base import Model
from hobot_npu_infer.core.decoders import create_decoder
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.multi_head.graph_split import HeadSpec, save_split, split_model
from hobot_npu_infer.core.multi_head.head_scheduler import HeadRate
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadDecoding, MultiHeadPipeline
from hobot_npu_infer.core.multi_head.packed_model import HeadFile, load_pack, load_split
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
import numpy as np
import onnx
import pytest

HEADS = [HeadSpec('faces', ['537', '538', '539']), HeadSpec('landmarks', ['540'])]
ASTRONAUT_FACE = (182, 58, 270, 178)


@pytest.fixture(scope='module')
def centerface():
    return resolve_model('centerface').path


@pytest.fixture(scope='module')
def tensor():
    rgb = cv2.cvtColor(cv2.resize(load_sample('astronaut'), (320, 256)), cv2.COLOR_BGR2RGB)
    return rgb.transpose(2, 0, 1)[None].astype(np.float32)


def test_split_file_runs_trunk_once_and_heads_on_its_features(centerface, tensor, tmp_path):
    backend = create_backend('onnxruntime')
    packed = load_split(backend, centerface, HEADS, cache_dir=str(tmp_path))
    assert packed.trunk is not None and set(packed.heads) == {'faces', 'landmarks'}
    assert packed.input.name == 'input.1' and packed.cut_tensors
    features = packed.features(tensor)
    faces = packed.run_head('faces', features)
    landmarks = packed.run_head('landmarks', features)
    [whole] = backend.load(centerface)
    expected = whole.run([tensor])
    for got, want in zip(faces + landmarks, expected):
        assert np.abs(got - want).max() < 1e-4
    before = {n: os.stat(os.path.join(d, n)).st_mtime_ns
              for d, _, files in os.walk(tmp_path) for n in files}
    load_split(backend, centerface, HEADS, cache_dir=str(tmp_path))  # cached: nothing rewritten
    after = {n: os.stat(os.path.join(d, n)).st_mtime_ns
             for d, _, files in os.walk(tmp_path) for n in files}
    assert before == after


def test_pack_of_files_with_an_explicit_trunk(centerface, tensor, tmp_path):
    paths = save_split(split_model(onnx.load(centerface), HEADS), str(tmp_path))
    backend = create_backend('onnxruntime')
    packed = load_pack(backend, [HeadFile('faces', paths['faces']),
                                 HeadFile('landmarks', paths['landmarks'])],
                       HeadFile('trunk', paths['trunk']))
    [whole] = backend.load(centerface)
    features = packed.features(tensor)
    got = packed.run_head('faces', features) + packed.run_head('landmarks', features)
    for a, b in zip(got, whole.run([tensor])):
        assert np.abs(a - b).max() < 1e-4


def test_pack_without_trunk_feeds_each_head_the_image(centerface, tensor):
    backend = create_backend('onnxruntime')
    packed = load_pack(backend, [HeadFile('all', centerface), HeadFile('again', centerface)])
    assert packed.trunk is None
    features = packed.features(tensor)
    a, b = packed.run_head('all', features), packed.run_head('again', features)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_pack_errors_name_the_problem(centerface, tmp_path):
    paths = save_split(split_model(onnx.load(centerface), HEADS), str(tmp_path))
    backend = create_backend('onnxruntime')
    with pytest.raises(ConfigError, match='trunk does not produce'):
        load_pack(backend, [HeadFile('faces', paths['faces'])], HeadFile('trunk', centerface))
    with pytest.raises(ConfigError, match='at least one head'):
        load_pack(backend, [])
    with pytest.raises(ConfigError, match='no model named'):
        load_pack(backend, [HeadFile('faces', centerface, model_name='nope')])


class Counting(Model):
    """Counts the runs of a wrapped model."""

    def __init__(self, model):
        self.model, self.runs = model, 0
        self.name, self.inputs, self.outputs, self.batch = \
            model.name, model.inputs, model.outputs, model.batch

    def run(self, inputs):
        self.runs += 1
        return self.model.run(inputs)


def test_heads_run_at_their_own_rates_on_the_same_frame(centerface, tmp_path):
    packed = load_split(create_backend('onnxruntime'), centerface, HEADS,
                        cache_dir=str(tmp_path))
    packed.trunk = Counting(packed.trunk)
    for head in packed.heads.values():
        head.model = Counting(head.model)
    pipeline = MultiHeadPipeline(
        packed, Preprocessor(PreprocessConfig(input_size=(320, 256), resize='stretch',
                                              channel_order='rgb'), packed.input),
        [HeadRate('faces', rate_hz=30.0), HeadRate('landmarks', 10.0)],
        {'faces': HeadDecoding(create_decoder('centerface'), ['face'])})
    image = load_sample('astronaut')
    ran = {'faces': 0, 'landmarks': 0}
    for frame in range(30):  # one second of a 30 Hz camera, on a simulated clock
        for head in pipeline.process([image], frame / 30.0):
            ran[head.head] += 1
            if head.head == 'faces':
                [face] = head.detections
                assert all(abs(g - w) <= 12 for g, w in zip(face.box, ASTRONAUT_FACE))
                assert face.keypoints is None  # landmarks belong to the other head
            else:
                assert head.detections is None and head.tensors[0].shape[1] == 10
    assert ran == {'faces': 30, 'landmarks': 10}
    assert packed.trunk.runs == 30  # once per frame that any head needed
    assert packed.heads['landmarks'].model.runs == 10

    pipeline.set_enabled('faces', False)
    pipeline.set_enabled('landmarks', False)
    for frame in range(30, 60):
        assert pipeline.process([image], frame / 30.0) == []
    assert packed.trunk.runs == 30  # disabled heads cost nothing, not even the trunk

    pipeline.set_enabled('landmarks', True)
    pipeline.set_rate('landmarks', rate_hz=30.0)  # a runtime rate change takes effect
    for frame in range(60, 90):
        pipeline.process([image], frame / 30.0)
    assert packed.heads['landmarks'].model.runs == 40
    assert packed.heads['faces'].model.runs == 30


def test_a_semantic_head_maps_its_class_map_onto_the_frame(centerface, tmp_path):
    """A generic semantic head beside a detector: [B, C, h, w] scores become class regions."""
    packed = load_split(create_backend('onnxruntime'), centerface, HEADS,
                        cache_dir=str(tmp_path))
    pipeline = MultiHeadPipeline(
        packed, Preprocessor(PreprocessConfig(input_size=(320, 256), resize='stretch',
                                              channel_order='rgb'), packed.input),
        [HeadRate('faces'), HeadRate('landmarks')],
        {'faces': HeadDecoding(create_decoder('centerface'), ['face']),
         # the 10 landmark maps read as the scores of 10 classes, one map per class
         'landmarks': HeadDecoding(create_decoder('semantic'), [f'c{i}' for i in range(10)],
                                   0.0)})
    image = load_sample('astronaut')  # 512x512, stretched to 320x256 and back
    outputs = {head.head: head for head in pipeline.process([image], 0.0)}
    [face] = outputs['faces'].detections
    assert all(abs(g - w) <= 12 for g, w in zip(face.box, ASTRONAUT_FACE))
    regions = outputs['landmarks'].detections
    assert len(regions) >= 2
    counts = np.zeros(image.shape[:2], np.int64)
    for region in regions:
        assert region.class_name == f'c{region.class_id}'
        assert 0.0 < region.score <= 1.0  # the class's mean probability over its pixels
        pixels = np.zeros(image.shape[:2], np.int64)
        region.mask.paste(pixels, 1)
        ys, xs = np.nonzero(pixels)
        x1, y1, x2, y2 = region.box
        assert x1 <= xs.min() and xs.max() < x2 and y1 <= ys.min() and ys.max() < y2
        counts += pixels
    assert (counts == 1).all()  # every pixel of the frame has exactly one class
