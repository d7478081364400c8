"""
The stream-runner harness.

A real DetectionPipeline on a fake model that encodes each image's content in its box, so a
result that belongs to another frame cannot go unnoticed.
"""

from dataclasses import dataclass, field
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from hobot_npu_infer.core.backends.base import Model
from hobot_npu_infer.core.backends.tensors import BatchCapability, TensorSpec
from hobot_npu_infer.core.decoders import create_decoder
from hobot_npu_infer.core.errors import ImageError
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
from hobot_npu_infer.core.streaming.batcher import Frame, FrameBatcher
from hobot_npu_infer.core.streaming.stream_runner import FrameResult, StreamRunner
from hobot_npu_infer.core.telemetry.health_reports import ModelStats, SourceStats
import numpy as np
import pytest

TIMEOUT = 10.0  # only ever reached by a broken test
INPUT = (64, 64)  # (W, H) of the model input
NUM_CLASSES = 2
ANCHORS = 3
X_PER_VALUE = 1 / 8  # box x1 in model-input pixels per unit of pixel value
STAGES = {'queue_wait', 'preprocess', 'inference', 'postprocess'}


# --- the fake model ------------------------------------------------------------------------------

def encoded_outputs(tensor: np.ndarray) -> List[np.ndarray]:
    """yolov8 ``[B, 4+C, N]``: one box per slot at x1 = value / 8, class 0, score 0.9."""
    out = np.zeros((tensor.shape[0], 4 + NUM_CLASSES, ANCHORS), np.float32)
    for b in range(tensor.shape[0]):
        x1 = float(tensor[b, 0, 0, 0]) * X_PER_VALUE
        out[b, :4, 1] = [x1 + 10, 20, 20, 20]  # cx cy w h of (x1, 10, x1 + 20, 30)
        out[b, 4, 1] = 0.9
    return [out]


GARBAGE = {
    'rank 2': lambda b: [np.zeros((b, 6), np.float32)],
    'too few channels': lambda b: [np.zeros((b, 3, ANCHORS), np.float32)],
    'fewer images than the batch': lambda b: [np.zeros((0, 6, ANCHORS), np.float32)],
    'no outputs': lambda b: [],
}


class FakeModel(Model):
    """Records every run's tensor shape and slot values; can block, raise or return garbage."""

    def __init__(self, batch: BatchCapability = BatchCapability(),
                 gate: Optional[threading.Event] = None, fail=(), garbage=None):
        self.name = 'fake'
        self.inputs = [TensorSpec('images', (batch.fixed_size, 3, INPUT[1], INPUT[0]),
                                  np.dtype(np.float32), 'NCHW')]
        self.outputs = [TensorSpec('output0', (batch.fixed_size, 4 + NUM_CLASSES, ANCHORS),
                                   np.dtype(np.float32))]
        self.batch = batch
        self.gate = gate  # when given, every run waits until it is set
        self.fail = set(fail)  # a slot of one of these values makes the run raise
        self.garbage = garbage or {}  # slot value -> GARBAGE key
        self.runs = Recorder()  # (tensor shape, slot values) per run

    def run(self, inputs):
        tensor = next(iter(self.input_dict(inputs).values()))
        values = [int(tensor[b, 0, 0, 0]) for b in range(tensor.shape[0])]
        self.runs.add((tensor.shape, values))
        if self.gate is not None and not self.gate.wait(TIMEOUT):
            raise AssertionError('the test never opened the gate')
        if self.fail & set(values):
            raise RuntimeError('device lost\nsecond line of the backend message')
        for value in values:
            if value in self.garbage:
                return GARBAGE[self.garbage[value]](tensor.shape[0])
        return encoded_outputs(tensor)


# --- recording callbacks -------------------------------------------------------------------------

class Recorder:
    """A list that other threads append to and the test waits on."""

    def __init__(self):
        self._cond = threading.Condition()
        self._items: List[Any] = []

    def add(self, item) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def items(self) -> List[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, predicate: Callable[[List[Any]], bool], what: str = '') -> List[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._items), TIMEOUT):
                raise AssertionError(f'timed out waiting for {what}; have {self._items}')
            return list(self._items)

    def wait_count(self, n: int) -> List[Any]:
        return self.wait_for(lambda items: len(items) >= n, f'{n} item(s)')


class RecordingModelStats(ModelStats):

    def __init__(self):
        super().__init__('fake')
        self.errors = Recorder()

    def on_error(self, message: str) -> None:
        super().on_error(message)
        self.errors.add(message)


@dataclass
class Payload:
    """What a fake camera sends: a constant image of ``value``."""

    value: int
    size: Tuple[int, int] = INPUT  # (W, H)
    bad: bool = False
    hold: Optional[threading.Event] = None  # its conversion waits for this (a heavy frame)


class DelayedTakeSource(FrameBatcher):
    """Slots whose take_source is slow, as when the thread calling it is preempted."""

    def take_source(self, source):
        time.sleep(0.1)
        return super().take_source(source)


@dataclass
class Harness:
    runner: StreamRunner
    slots: FrameBatcher
    model: FakeModel
    source_stats: dict
    model_stats: RecordingModelStats
    delivered: Recorder
    bad_frames: Recorder
    internal_errors: Recorder
    converted: Recorder
    fail_delivery: set = field(default_factory=set)

    def put(self, source: str, value: int, size=INPUT, bad=False, meta=None,
            hold: Optional[threading.Event] = None) -> bool:
        return self.slots.put(Frame(source, Payload(value, size, bad, hold), meta=meta))

    def delivered_values(self, source: Optional[str] = None) -> List[int]:
        return [r.frame.payload.value for r in self.delivered.items
                if source is None or r.frame.source == source]


def convert(payload: Payload) -> Tuple[np.ndarray, str]:
    if payload.hold is not None and not payload.hold.wait(TIMEOUT):
        raise AssertionError('the test never released the heavy frame')
    if payload.bad:
        raise ImageError(f'frame {payload.value} has an unsupported encoding')
    w, h = payload.size
    return np.full((h, w, 3), payload.value, np.uint8), 'bgr'


@pytest.fixture
def make_harness():
    made: List[Harness] = []

    def make(sources=('a',), model: Optional[FakeModel] = None, max_batch=1,
             slots_type=FrameBatcher, start=True, more_runtimes: Tuple[FakeModel, ...] = (),
             max_batch_delay_s: float = 0.0, runs: Optional[Callable[[], bool]] = None,
             on_skipped: Optional[Callable[[Frame], None]] = None) -> Harness:
        """Make a harness; ``runs()`` answers whether the next frame taken runs (else skipped)."""
        model = model or FakeModel()
        spec = model.inputs[0]
        pipeline = DetectionPipeline(
            model, Preprocessor(PreprocessConfig(input_size=INPUT, resize='stretch'), spec),
            create_decoder('yolov8'), ['person', 'car'], 0.5, [model, *more_runtimes])
        if runs is not None:
            everything = pipeline.plan
            pipeline.plan = lambda source, received: everything(source, received) \
                if runs() else None
        slots = slots_type(list(sources))
        source_stats = {s: SourceStats(s) for s in sources}
        delivered, bad_frames, internal, converted = Recorder(), Recorder(), Recorder(), Recorder()
        model_stats = RecordingModelStats()
        harness = None

        def deliver(result: FrameResult) -> None:
            if result.frame.payload.value in harness.fail_delivery:
                raise ValueError(f'cannot publish {result.frame.payload.value}')
            delivered.add(result)

        def converting(payload):
            converted.add(payload.value)
            return convert(payload)

        runner = StreamRunner(pipeline, slots, converting, deliver,
                              lambda frame, error: bad_frames.add((frame, error)),
                              internal.add, source_stats, model_stats, max_batch=max_batch,
                              max_batch_delay_s=max_batch_delay_s, on_skipped=on_skipped)
        harness = Harness(runner, slots, model, source_stats, model_stats, delivered, bad_frames,
                          internal, converted)
        made.append(harness)
        if start:
            runner.start()
        return harness

    yield make
    for harness in made:
        if harness.model.gate is not None:
            harness.model.gate.set()
        harness.runner.stop()
    for harness in made:
        assert harness.internal_errors.items == [], 'a runner thread hit an internal error'


def check_result(result: FrameResult) -> None:
    """Check that the result's detection is the one encoded from its own frame's pixels."""
    payload = result.frame.payload
    w, h = payload.size
    assert result.image.shape == (h, w, 3)
    assert (result.image == payload.value).all()
    assert result.channel_order == 'bgr'
    [detection] = result.detections
    scale_x, scale_y = w / INPUT[0], h / INPUT[1]  # stretch: model input back to the source
    x1 = payload.value * X_PER_VALUE
    assert detection.box == pytest.approx(
        (x1 * scale_x, 10 * scale_y, (x1 + 20) * scale_x, 30 * scale_y), abs=1e-3)
    assert detection.class_id == 0 and detection.class_name == 'person'
    assert detection.score == pytest.approx(0.9)
    assert set(result.stage_ms) == STAGES
    assert all(ms >= 0 for ms in result.stage_ms.values())


def runner_threads(before: List[threading.Thread]) -> List[threading.Thread]:
    return [t for t in threading.enumerate()
            if t not in before and t.name in ('prepare', 'infer')]
