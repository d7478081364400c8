"""
Live streams through a pipeline: newest frames in, results out, on two threads.

The prepare thread forms batches (up to ``max_batch`` sources, waiting at most
``max_batch_delay_s`` after the oldest frame arrived), converts and pre-processes them while one
infer thread per runtime runs the backend (which releases the GIL), so receiving never waits for
the model and the model rarely waits for Python. The frames of a batch are converted side by
side on a small pool (OpenCV's decoders release the GIL); a frame still converting well after
the batch's first one is done is parked, so one input's heavy frames (large JPEGs, say) never
hold up the others' batch: it joins a later batch once converted, and that input's newer frames
wait in its slot meanwhile. While every runtime is busy, the prepare thread
takes the next frames just in time (the expected end of the earliest run less the expected
pre-processing time), so what it prepares is the newest frame when a runtime frees up, and no
work is spent on frames that would be superseded. A prepared frame whose source delivered a
newer one meanwhile is still dropped as stale rather than run, so output never lags behind a
backlog; and a result older than one already delivered for its source is dropped too, so each
source's output stays in order when several runtimes finish out of turn.
"""

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
import functools
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import InferError, one_line
from hobot_npu_infer.core.imaging.nv12 import pixel_size
from hobot_npu_infer.core.pipeline.contract import FramePlan, Pipeline, SourceImage
from hobot_npu_infer.core.pipeline.preprocess import PreparedBatch
from hobot_npu_infer.core.streaming.batcher import Frame, FrameBatcher
from hobot_npu_infer.core.streaming.reload_backoff import ReloadBackoff
from hobot_npu_infer.core.telemetry.health_reports import ModelStats, SourceStats
from hobot_npu_infer.core.telemetry.thread_cpu import name_thread
import numpy as np

Converter = Callable[[object], SourceImage]
JIT_MARGIN_S = 0.002  # slack for the thread to wake up and take the frames
CONVERT_WORKERS = 4  # frames of one batch converted side by side
# A frame not converted this long (or twice the batch's first conversion, if longer) after the
# batch's first frame converted is parked: it joins a later batch instead of holding this one.
PARK_AFTER_S = 0.005
PARKED_POLL_S = 0.005  # how often the prepare thread looks at parked frames while any are


class MovingAverage:
    """Exponentially weighted mean of recent durations (seconds)."""

    def __init__(self, weight: float = 0.2):
        self.weight = weight
        self.value = 0.0

    def add(self, sample: float) -> None:
        self.value = sample if self.value == 0.0 else \
            self.value + self.weight * (sample - self.value)


@dataclass
class FrameResult:
    """
    One frame's results, to publish with its header.

    A frame no head ran on (shadow tracking) has no image, only its size, and head outputs of
    the tracker's predictions.
    """

    frame: Frame
    image: Optional[np.ndarray]  # the converted frame, for debug drawing
    channel_order: str
    detections: List[Detection]
    stage_ms: Dict[str, float] = field(default_factory=dict)
    heads: Optional[list] = None  # a packed model's HeadOutputs for this frame
    image_size: Optional[Tuple[int, int]] = None  # (w, h): the image's, when there is one

    def __post_init__(self):
        if self.image is not None:
            self.image_size = pixel_size(self.image) if self.channel_order == 'nv12' \
                else self.image.shape[1::-1]


@dataclass
class _Prepared:
    frames: List[Frame]
    plans: List[FramePlan]  # what the pipeline runs on each frame
    images: List[SourceImage]
    batch: PreparedBatch
    started: float
    ready: float
    parked: frozenset = frozenset()  # sources whose frame was parked: not freshened
    pipeline: Optional[Pipeline] = None  # the one that prepared it, which runs it (swap_pipeline)


@dataclass
class _Parked:
    """A frame whose conversion outlasted its batch, finishing on the pool."""

    frame: Frame
    plan: FramePlan
    conversion: Future


class StreamRunner:
    def __init__(self, pipeline: Pipeline, slots: FrameBatcher, convert: Converter,
                 deliver: Callable[[FrameResult], None],
                 on_bad_frame: Callable[[Frame, InferError], None],
                 on_internal_error: Callable[[str], None],
                 source_stats: Dict[str, SourceStats], model_stats: ModelStats,
                 max_batch: int = 1, max_batch_delay_s: float = 0.0,
                 reload_backoff: Optional[ReloadBackoff] = None,
                 on_run_error: Optional[Callable[[Exception], None]] = None,
                 on_skipped: Optional[Callable[[Frame], None]] = None):
        self.pipeline = pipeline
        self.slots = slots
        self.convert = convert
        self.deliver = deliver
        self.on_bad_frame = on_bad_frame
        self.on_internal_error = on_internal_error
        self.source_stats = source_stats
        self.model_stats = model_stats
        self._max_batch = max_batch  # asked for; a fixed-batch model's own size wins
        self.max_batch = pipeline.model.batch.fixed_size or max_batch
        self.max_batch_delay_s = max_batch_delay_s
        self.reload_backoff = reload_backoff or ReloadBackoff()
        # told the exception of each failed run (backend, decoder or second stage), not only
        # the line model_stats counts
        self.on_run_error = on_run_error
        # told each frame the pipeline skips (no head due), in its source's order: after the
        # results of that source's frames already taken for a run (shadow tracking's frames)
        self.on_skipped = on_skipped
        self._reload_lock = threading.Lock()
        self._handoff: Optional[_Prepared] = None
        self._busy: Dict[int, float] = {}  # runtime -> when its running backend call started
        self._newest_delivered: Dict[str, float] = {}  # source -> arrival of its newest result
        self._deliver_lock = threading.Lock()
        self._in_flight: Dict[str, int] = {}  # source -> its frames taken for a run, not done
        self._held: Dict[str, Frame] = {}  # source -> its newest skipped frame, waiting for them
        self._infer_s = MovingAverage()
        self._prepare_s = MovingAverage()
        self._cond = threading.Condition()
        self._running = False
        self._threads: List[threading.Thread] = []
        self._pool: Optional[ThreadPoolExecutor] = None
        self._parked: Dict[str, _Parked] = {}  # source -> its frame converting (prepare thread)

    def start(self) -> None:
        self._running = True
        self._pool = ThreadPoolExecutor(CONVERT_WORKERS, thread_name_prefix='convert',
                                        initializer=name_thread, initargs=('convert',))
        loops = [('prepare', self._prepare_once)] + [
            (f'infer-{i}' if i else 'infer', functools.partial(self._infer_once, i))
            for i in range(len(self.pipeline.runtimes))]
        self._threads = [threading.Thread(target=self._guarded, args=(loop,), name=name,
                                          daemon=True) for name, loop in loops]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        self.slots.close()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._parked = {}

    @property
    def running(self) -> bool:
        return self._running

    def swap_pipeline(self, pipeline: Pipeline) -> None:
        """
        Run ``pipeline`` from the next batch on, in place of the running one.

        The switch is at a batch boundary: every batch carries the pipeline that planned and
        pre-processed it (its input size, pre-processing, schedule) and runs on that one, so a
        batch taken before the swap (a pending handoff, or running) finishes on the old
        pipeline while the prepare thread takes the next frames for the new one. The new
        pipeline must have as many runtimes: infer thread i runs runtime i of either pipeline,
        one batch at a time, so the busy map keeps one entry per thread and no runtime runs
        two batches at once. Raises ValueError otherwise, changing nothing.
        """
        with self._cond:
            if len(pipeline.runtimes) != len(self.pipeline.runtimes):
                raise ValueError(f'the new pipeline has {len(pipeline.runtimes)} runtime(s), the '
                                 f'running one {len(self.pipeline.runtimes)}')
            self.pipeline = pipeline
            self.max_batch = pipeline.model.batch.fixed_size or self._max_batch
            self._infer_s, self._prepare_s = MovingAverage(), MovingAverage()  # its own times
            self.reload_backoff.record_success()  # the old model's failures are not its own
            self._cond.notify_all()

    def _guarded(self, step: Callable[[], None]) -> None:
        name_thread(threading.current_thread().name)
        while self._running:
            try:
                step()
            except Exception as exc:  # a bug must not silently end the stream
                self.on_internal_error(f'{threading.current_thread().name}: {one_line(exc)}')
                time.sleep(0.05)

    def _convert_all(self, frames: List[Frame], park: bool) -> List[Optional[Future]]:
        """
        Convert ``frames`` side by side; return their conversions, None for each one parked.

        With ``park``, a frame still converting well after the first one finished is left on
        the pool and parked (one batch never waits for one input's heavy frame).
        """
        if not frames:
            return []
        started = time.monotonic()
        futures = [self._pool.submit(self.convert, frame.payload) for frame in frames]
        _, pending = wait(futures, return_when=FIRST_COMPLETED)
        if pending:
            first = time.monotonic() - started
            _, pending = wait(pending, timeout=max(PARK_AFTER_S, 2 * first) if park else None)
        for i, future in enumerate(futures):
            if future in pending:
                self._parked[frames[i].source] = _Parked(frames[i], None, future)
                futures[i] = None
        return futures

    def _prepare(self, frames: List[Frame], plans: List[FramePlan],
                 done: Sequence[Optional[Future]] = (), park: bool = False,
                 parked: frozenset = frozenset(),
                 pipeline: Optional[Pipeline] = None) -> Optional[_Prepared]:
        """
        Convert and pre-process ``frames``; bad ones are reported and left out.

        ``done`` holds conversions already made (or None) for the first frames; ``park``
        parks slow conversions (see _convert_all), ``parked`` names frames that were.
        ``pipeline`` (default: the runner's) pre-processes them, and will run them.
        """
        pipeline = pipeline or self.pipeline
        started = time.monotonic()
        done = list(done) + [None] * (len(frames) - len(done))
        todo = [i for i, future in enumerate(done) if future is None]
        for i, future in zip(todo, self._convert_all([frames[i] for i in todo], park)):
            done[i] = future
            if future is None:
                self._parked[frames[i].source].plan = plans[i]
        kept, kept_plans, images = [], [], []
        for frame, plan, future in zip(frames, plans, done):
            if future is None:
                continue
            try:
                images.append(future.result())
                kept.append(frame)
                kept_plans.append(plan)
            except InferError as exc:
                self.on_bad_frame(frame, exc)
        if not kept:
            return None
        try:
            batch = pipeline.prepare([i for i, _ in images], [o for _, o in images])
        except InferError as exc:
            for frame in kept:
                self.on_bad_frame(frame, exc)
            return None
        ready = time.monotonic()
        self._prepare_s.add(ready - started)
        return _Prepared(kept, kept_plans, images, batch, started, ready,
                         parked & {frame.source for frame in kept}, pipeline)

    def _reload(self) -> None:
        """Load the model afresh after repeated failures; a failed reload is an error too."""
        with self._reload_lock:
            try:
                self.pipeline.reload()
            except Exception as exc:  # a missing or corrupt file, a backend that will not start
                self.model_stats.on_error(f'reload failed: {one_line(exc)}')
                return
            self.model_stats.on_reload()

    def _start_delay(self) -> float:
        """Seconds to wait before taking frames so they are ready just as a runtime frees up."""
        if len(self._busy) < len(self.pipeline.runtimes):
            return 0.0
        return min(self._busy.values()) + self._infer_s.value - self._prepare_s.value \
            - JIT_MARGIN_S - time.monotonic()

    def _prepare_once(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._handoff is None or not self._running)
            delay = self._start_delay()
            if delay > 0:  # cut short when the run ends early
                runtimes = len(self.pipeline.runtimes)
                self._cond.wait_for(lambda: len(self._busy) < runtimes or not self._running,
                                    timeout=delay)
            pipeline, max_batch = self.pipeline, self.max_batch  # these frames', to the end
        ready = [s for s, parked in self._parked.items() if parked.conversion.done()]
        frames = [self._parked[s].frame for s in ready]
        plans = [self._parked[s].plan for s in ready]
        done = [self._parked.pop(s).conversion for s in ready]
        if len(frames) < max_batch:
            for frame in self.slots.take(max_batch - len(frames),
                                         PARKED_POLL_S if self._parked else 0.2,
                                         self.max_batch_delay_s, frozenset(self._parked)):
                plan = pipeline.plan(frame.source, frame.received)
                if plan is not None:
                    frames.append(frame)
                    plans.append(plan)
                elif self.on_skipped is not None:
                    self._skipped(frame)
        item = self._prepare(frames, plans, done, park=True, parked=frozenset(ready),
                             pipeline=pipeline) if frames else None
        if item is None:
            return
        with self._deliver_lock:
            for frame in item.frames:
                self._in_flight[frame.source] = self._in_flight.get(frame.source, 0) + 1
        with self._cond:
            self._handoff = item
            self._cond.notify_all()

    def _freshen(self, item: _Prepared, newer: List[Optional[Frame]]) -> Optional[_Prepared]:
        """
        Swap each frame whose source sent a newer one while it waited.

        The old one is dropped and the newer one runs what was planned for it.
        """
        if all(frame is None for frame in newer):
            return item
        frames, done = [], []
        for frame, new, image in zip(item.frames, newer, item.images):
            if new is not None:
                self.source_stats[frame.source].on_dropped()
            frames.append(frame if new is None else new)
            done.append(_converted(image) if new is None else None)
        # the kept frames first, so their conversions line up with ``done``
        order = sorted(range(len(frames)), key=lambda i: done[i] is None)
        return self._prepare([frames[i] for i in order], [item.plans[i] for i in order],
                             [done[i] for i in order if done[i] is not None],
                             parked=item.parked, pipeline=item.pipeline)

    def _infer_once(self, runtime: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._handoff is not None or not self._running,
                                       timeout=0.2) or self._handoff is None:
                return
            item, self._handoff = self._handoff, None
            # Take the newer frames before the prepare thread may run again: else it could take
            # them first, and this stale item would be run instead of being dropped. A parked
            # frame is not swapped: its input's newer frame would be as slow to convert.
            newer = [None if frame.source in item.parked else
                     self.slots.take_source(frame.source) for frame in item.frames]
            self._cond.notify_all()
        try:
            self._run(item, newer, runtime)
        finally:
            self._done([frame.source for frame in item.frames])

    def _run(self, item: _Prepared, newer: List[Optional[Frame]], runtime: int) -> None:
        """Run one prepared item on ``runtime`` and deliver its results."""
        item = self._freshen(item, newer)
        if item is None:
            return
        batch = item.batch
        t0 = time.monotonic()
        with self._cond:
            self._busy[runtime] = t0
        try:
            outcome = item.pipeline.run_batch(item.plans, item.images, batch, runtime)
        except Exception as exc:  # the backend may raise anything; count it, keep serving
            self.model_stats.on_error(one_line(exc))
            if self.on_run_error is not None:
                self.on_run_error(exc)
            if self.reload_backoff.record_failure():
                self._reload()
            return
        finally:
            with self._cond:
                self._busy.pop(runtime, None)
                self._cond.notify_all()
        self.reload_backoff.record_success()
        t2 = time.monotonic()
        self._infer_s.add(t2 - t0)
        inference_ms, postprocess_ms = outcome.inference_ms, (t2 - t0) * 1e3 - outcome.inference_ms
        self.model_stats.on_run(inference_ms, len(item.frames), batch.tensor.shape[0],
                                outcome.cpu_ms)
        prep_ms = (item.ready - item.started) * 1e3
        with self._deliver_lock:
            for i, (frame, (image, order)) in enumerate(zip(item.frames, item.images)):
                if frame.received <= self._newest_delivered.get(frame.source, float('-inf')):
                    self.source_stats[frame.source].on_dropped()  # a newer result went out
                    continue
                self._newest_delivered[frame.source] = frame.received
                waited = (item.started - frame.received) + (t0 - item.ready)
                self.deliver(FrameResult(frame, image, order, outcome.detections[i], {
                    'queue_wait': waited * 1e3, 'preprocess': prep_ms,
                    'inference': inference_ms, 'postprocess': postprocess_ms},
                    outcome.heads[i] if outcome.heads else None))

    def _skipped(self, frame: Frame) -> None:
        """Tell of a skipped frame now, or after its source's frames in flight."""
        with self._deliver_lock:
            if self._in_flight.get(frame.source):
                if frame.source in self._held:
                    self.source_stats[frame.source].on_dropped()  # superseded while held
                self._held[frame.source] = frame
            else:
                self._tell_skipped(frame)

    def _tell_skipped(self, frame: Frame) -> None:
        """Tell ``on_skipped`` of ``frame`` unless a newer result went out (under the lock)."""
        if frame.received <= self._newest_delivered.get(frame.source, float('-inf')):
            self.source_stats[frame.source].on_dropped()
            return
        self._newest_delivered[frame.source] = frame.received
        try:
            self.on_skipped(frame)
        except Exception as exc:  # a bug must not leave the other sources' frames held
            self.on_internal_error(f'skipped frame of {frame.source}: {one_line(exc)}')

    def _done(self, sources: List[str]) -> None:
        """Frames of ``sources`` are out of flight: tell the skipped frames held for them."""
        with self._deliver_lock:
            for source in sources:
                self._in_flight[source] -= 1
                if not self._in_flight[source] and source in self._held:
                    self._tell_skipped(self._held.pop(source))


def _converted(image: SourceImage) -> Future:
    """Return a conversion already made as a finished Future."""
    future: Future = Future()
    future.set_result(image)
    return future
