"""
Many images at once: image files through the same batcher and runtime pool as live streams.

Every file is a source of its own, so nothing is dropped as stale; files are read ahead of the
runner only as far as a few batches, so memory stays bounded on large directories.
"""

from collections import defaultdict
from dataclasses import dataclass
import os
import threading
import time
from typing import Callable, Dict, Iterable, List

from hobot_npu_infer.core.errors import ImageError, InferError, one_line, OutputLayoutError
from hobot_npu_infer.core.imaging.image_files import read_image
from hobot_npu_infer.core.imaging.image_sequences import list_images
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.streaming.batcher import Frame, FrameBatcher
from hobot_npu_infer.core.streaming.stream_runner import FrameResult, StreamRunner
from hobot_npu_infer.core.telemetry.health_reports import ModelStats, SourceStats


def expand_paths(paths: Iterable[str]) -> List[str]:
    """Directories become their images (sorted); files stay as given."""
    out: List[str] = []
    for path in paths:
        out.extend(list_images(path) if os.path.isdir(path) else [path])
    return out


@dataclass
class OfflineSummary:
    images: int
    failed: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def detect_files(pipeline: DetectionPipeline, paths: List[str], max_batch: int,
                 on_result: Callable[[int, str, FrameResult], None],
                 on_error: Callable[[int, str, InferError], None],
                 max_batch_delay_s: float = 0.005) -> OfflineSummary:
    """Run every file; ``on_result``/``on_error`` are called in input order."""
    sources = [f'{i}' for i in range(len(paths))]
    slots = FrameBatcher(sources)
    ordered = OrderedOutput(paths, on_result, on_error)
    model_stats = ModelStats(pipeline.model.name, runtimes=len(pipeline.runtimes))
    failures: List[Exception] = []
    runner = StreamRunner(
        pipeline, slots, convert=lambda payload: payload,
        deliver=lambda r: ordered.done(int(r.frame.source), r),
        on_bad_frame=lambda f, e: ordered.done(int(f.source), e),
        on_internal_error=lambda message: None,
        source_stats=defaultdict(lambda: SourceStats('offline')), model_stats=model_stats,
        max_batch=max_batch, max_batch_delay_s=max_batch_delay_s, on_run_error=failures.append)
    read_ahead = 2 * runner.max_batch * len(pipeline.runtimes)
    start = time.monotonic()
    runner.start()
    try:
        for i, path in enumerate(paths):
            while slots.pending() >= read_ahead:
                time.sleep(0.001)
            try:
                image = read_image(path)
            except ImageError as exc:
                ordered.done(i, exc)
                continue
            slots.put(Frame(sources[i], (image, 'bgr')))
            if failures:
                raise run_failure(failures[0])
        while not ordered.wait(0.1):
            if failures:
                raise run_failure(failures[0])
    finally:
        runner.stop()
    return OfflineSummary(len(paths) - ordered.failed, ordered.failed, time.monotonic() - start)


def run_failure(exc: Exception) -> InferError:
    """
    Return the one-line error that ends an offline run, saying which stage failed.

    A decoder refusing the outputs is the model's layout, not the backend: the backend ran.
    """
    if isinstance(exc, OutputLayoutError):
        return OutputLayoutError(f'the model ran, but its outputs cannot be decoded: '
                                 f'{one_line(exc, named=False)}')
    return InferError(f'backend failed: {one_line(exc)}')


class OrderedOutput:
    """Collects results that finish in any order and hands them on in input order."""

    def __init__(self, paths: List[str], on_result, on_error):
        self.paths = paths
        self.on_result = on_result
        self.on_error = on_error
        self.failed = 0
        self._pending: Dict[int, object] = {}
        self._next = 0
        self._cond = threading.Condition()

    def done(self, index: int, outcome) -> None:
        with self._cond:
            self._pending[index] = outcome
            while self._next in self._pending:
                item = self._pending.pop(self._next)
                if isinstance(item, InferError):
                    self.failed += 1
                    self.on_error(self._next, self.paths[self._next], item)
                else:
                    self.on_result(self._next, self.paths[self._next], item)
                self._next += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._next == len(self.paths), timeout)
