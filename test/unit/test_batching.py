"""
Cross-camera batching in the core.

Cross-camera batching in the core: batch formation, delay bound, padding, the runtime pool,
per-source order, the second-stage crop model and offline batches of files.
"""

import threading
import time

import cv2
from hobot_npu_infer.core.backends.tensors import BatchCapability
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.pipeline.crop_stage import crop_box, CropConfig
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
from hobot_npu_infer.core.streaming.batcher import Frame, FrameBatcher
from hobot_npu_infer.core.streaming.offline import detect_files
from hobot_npu_infer.core.telemetry.health_reports import ModelStats
import numpy as np
import onnx
from onnx import helper, TensorProto
import pytest
from stream_harness import check_result, FakeModel


def test_a_batch_forms_as_soon_as_max_frames_sources_wait():
    slots = FrameBatcher(['a', 'b', 'c', 'd'])
    for source in 'abcd':
        slots.put(Frame(source, source))
    began = time.monotonic()
    frames = slots.take(4, timeout=1.0, max_delay_s=30.0)
    assert sorted(f.source for f in frames) == ['a', 'b', 'c', 'd']
    assert time.monotonic() - began < 15.0  # did not sit out the 30 s delay


def test_the_oldest_frame_waits_at_most_the_batch_delay():
    slots = FrameBatcher(['a', 'b'])
    frame = Frame('a', 'only one')
    slots.put(frame)
    frames = slots.take(2, timeout=1.0, max_delay_s=0.05)
    taken = time.monotonic()
    assert frames == [frame]
    waited = taken - frame.received
    assert 0.045 <= waited <= 0.05 + 2.0  # the delay, plus generous slack for a busy machine


def test_a_late_second_source_joins_the_batch_within_the_delay():
    slots = FrameBatcher(['a', 'b'])
    slots.put(Frame('a', 1))
    threading.Timer(0.05, lambda: slots.put(Frame('b', 2))).start()
    frames = slots.take(2, timeout=1.0, max_delay_s=10.0)
    assert sorted(f.source for f in frames) == ['a', 'b']


def test_runner_queue_wait_respects_the_batch_delay(make_harness):
    harness = make_harness(sources=('a', 'b', 'c', 'd'), max_batch=4, max_batch_delay_s=0.05)
    harness.put('a', 7)
    [result] = harness.delivered.wait_count(1)
    check_result(result)
    assert 45.0 <= result.stage_ms['queue_wait'] <= 50.0 + 2000.0
    assert harness.model.runs.items[0][0][0] == 1  # a dynamic-batch model runs the actual size


def test_batched_results_go_to_their_own_sources(make_harness):
    harness = make_harness(sources=('a', 'b', 'c', 'd'), max_batch=4, max_batch_delay_s=5.0)
    for value, source in zip((10, 20, 30, 40), 'abcd'):
        harness.put(source, value, meta=f'header of {source}')
    results = harness.delivered.wait_count(4)
    assert {r.frame.source: r.frame.payload.value for r in results} == \
        {'a': 10, 'b': 20, 'c': 30, 'd': 40}
    for result in results:
        check_result(result)  # the detection is decoded from this frame's own pixels
        assert result.frame.meta == f'header of {result.frame.source}'
    assert [shape[0] for shape, _ in harness.model.runs.items] == [4]


def test_fixed_batch_model_pads_partial_batches_and_counts_the_padding(make_harness):
    model = FakeModel(batch=BatchCapability(4))
    harness = make_harness(sources=('a', 'b', 'c'), model=model, max_batch=4,
                           max_batch_delay_s=5.0)
    for value, source in zip((10, 20, 30), 'abc'):
        harness.put(source, value)
    results = harness.delivered.wait_count(3)
    [(shape, values)] = model.runs.items
    assert shape[0] == 4 and sorted(values) == [0, 10, 20, 30]  # one zero padding slot
    for result in results:
        check_result(result)
    report = harness.model_stats.report('m').values
    assert report['padding_slots'] == '1'
    assert report['batch_size.max'] == '3.00' and report['batch_fill_ratio'] == '0.75'


def test_runtime_pool_runs_batches_concurrently_and_keeps_each_source_in_order(make_harness):
    gates = [threading.Event(), threading.Event()]
    models = [FakeModel(gate=gates[0]), FakeModel(gate=gates[1])]
    harness = make_harness(sources=('a',), model=models[0], more_runtimes=(models[1],))
    harness.put('a', 1)
    first = wait_for_a_run(models, exclude=None)  # frame 1 is held on one runtime ...
    harness.put('a', 2)
    second = wait_for_a_run(models, exclude=first)  # ... while frame 2 runs on the other
    assert {first, second} == {0, 1}
    gates[second].set()
    harness.delivered.wait_count(1)  # frame 2 is out first
    gates[first].set()  # frame 1 finishes after a newer result was delivered: dropped
    deadline = time.monotonic() + 10.0
    while harness.source_stats['a'].dropped_stale < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    harness.put('a', 3)
    harness.delivered.wait_for(lambda items: any(r.frame.payload.value == 3 for r in items),
                               'frame 3')
    assert harness.delivered_values('a') == [2, 3]  # never older after newer
    assert harness.source_stats['a'].dropped_stale == 1


def wait_for_a_run(models, exclude):
    """Index of a model (other than ``exclude``) that has started a run."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        for i, model in enumerate(models):
            if i != exclude and model.runs.items:
                return i
        time.sleep(0.01)
    raise AssertionError('no runtime started a run')


def test_model_stats_report_batch_and_busy_figures():
    now = [0.0]
    stats = ModelStats('m', window_s=10.0, clock=lambda: now[0], runtimes=2)
    now[0] = 1.0
    for _ in range(4):
        stats.on_run(250.0, images=2, slots=4)
    now[0] = 2.0
    values = stats.report('m').values
    assert values['batch_size.mean'] == '2.00' and values['batch_fill_ratio'] == '0.50'
    assert values['padding_slots'] == '8' and values['runtimes'] == '2'
    assert values['runtime_busy_fraction'] == '0.25'  # 1 s busy over 2 s and 2 runtimes


# --- the second stage ----------------------------------------------------------------------------

def colour_classifier(path) -> str:
    """Class = the channel with the largest mean: red, green or blue for an RGB input."""
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 32, 32])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 3])
    graph = helper.make_graph(
        [helper.make_node('ReduceMean', ['x'], ['y'], axes=[2, 3], keepdims=0)],
        'colour', [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def tinted(image: np.ndarray, keep: int) -> np.ndarray:
    """Return the BGR image with every channel but ``keep`` darkened."""
    out = image.copy()
    for channel in range(3):
        if channel != keep:
            out[:, :, channel] = (out[:, :, channel] * 0.3).astype(np.uint8)
    return out


def test_crop_stage_attaches_each_result_to_its_own_detection(tmp_path):
    astronaut = load_sample('astronaut')
    # two faces in one image: a red-tinted astronaut left, a blue-tinted one right
    image = np.concatenate([tinted(astronaut, 2), tinted(astronaut, 0)], axis=1)
    pipeline = DetectionPipeline.from_config(PipelineConfig(crop=CropConfig(
        model=colour_classifier(tmp_path / 'colour.onnx'), class_names=['red', 'green', 'blue'],
        max_batch=1)))
    [result], _ = pipeline.detect([image])
    faces = sorted(result.detections, key=lambda d: d.box[0])
    assert len(faces) == 2
    assert [f.attributes['crop_class_name'] for f in faces] == ['red', 'blue']
    assert faces[0].box[2] < 512 < faces[1].box[0]
    assert all(0.0 < f.attributes['crop_score'] <= 1.0 for f in faces)
    assert faces[0].to_dict()['attributes']['crop_class_id'] == 0


def test_crop_stage_embeddings_are_unit_vectors(tmp_path):
    pipeline = DetectionPipeline.from_config(PipelineConfig(crop=CropConfig(
        model=colour_classifier(tmp_path / 'colour.onnx'), output='embedding')))
    [result], _ = pipeline.detect([load_sample('astronaut')])
    [face] = result.detections
    embedding = np.array(face.attributes['embedding'])
    assert embedding.shape == (3,) and abs(np.linalg.norm(embedding) - 1.0) < 1e-5


def test_crop_box_margin_and_clipping():
    image = np.zeros((100, 200, 3), np.uint8)
    assert crop_box(image, (50, 20, 150, 60), 0.1).shape == (48, 120, 3)
    assert crop_box(image, (-10, -10, 20, 20), 0.0).shape == (20, 20, 3)
    assert crop_box(image, (300, 300, 400, 400), 0.1) is None


# --- offline -------------------------------------------------------------------------------------

@pytest.mark.parametrize('batch, runtimes', [(1, 1), (3, 2)])
def test_offline_files_come_out_in_input_order(tmp_path, batch, runtimes):
    astronaut, cat = load_sample('astronaut'), load_sample('chelsea')
    paths = []
    for i in range(7):
        path = str(tmp_path / f'{i}.png')
        cv2.imwrite(path, astronaut if i % 2 == 0 else cat)
        paths.append(path)
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not an image')
    paths.insert(3, str(broken))
    pipeline = DetectionPipeline.from_config(PipelineConfig(input_size=(320, 256),
                                                            num_runtimes=runtimes))
    seen, errors = [], []
    summary = detect_files(pipeline, paths, batch,
                           lambda i, p, r: seen.append((i, len(r.detections))),
                           lambda i, p, e: errors.append((i, p)))
    assert [i for i, _ in seen] == [0, 1, 2, 4, 5, 6, 7]
    faces = dict(seen)
    assert [faces[i] for i in (0, 2, 5, 7)] == [1, 1, 1, 1]  # astronauts (even originals)
    assert [faces[i] for i in (1, 4, 6)] == [0, 0, 0]  # cats
    assert errors == [(3, str(broken))]
    assert summary.images == 7 and summary.failed == 1 and summary.images_per_s > 0
