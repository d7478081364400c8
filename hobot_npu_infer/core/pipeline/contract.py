"""
What the stream runner and the nodes need of a pipeline, written down once.

Two pipelines keep this contract: :class:`DetectionPipeline` (one model on every frame) and
:class:`MultiHeadPipeline` (a packed model whose heads run at their own rates over a shared
trunk). Whoever drives a pipeline never asks which of the two it has.
"""

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Protocol, Sequence, Tuple

from hobot_npu_infer.core.backends.base import Backend, Model
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.pipeline.preprocess import PreparedBatch, Preprocessor
import numpy as np

# What runs on one frame: the names of a packed model's heads that are due; a single-model
# pipeline runs its model on every frame and plans nothing more (an empty set).
FramePlan = FrozenSet[str]
EVERYTHING: FramePlan = frozenset()

# One image as converted from a message, with its channel order ('bgr', 'rgb', 'nv12', ...).
SourceImage = Tuple[np.ndarray, str]


@dataclass
class BatchOutcome:
    """
    What one run of a batch gave, per frame, and how long the backend itself took.

    ``heads`` holds a packed model's per-head outputs for each frame (``None`` for a
    single model), which the ROS layer publishes on topics of their own.
    ``cpu_ms``: the calling thread's CPU time per stage (``inference``: inside the backend's
    runs, whose own pool threads come on top; ``decode``), so a benchmark can tell the
    backend's CPU from the node's.
    """

    detections: List[List[Detection]]
    inference_ms: float
    heads: Optional[List[list]] = None
    cpu_ms: Dict[str, float] = field(default_factory=dict)


class Pipeline(Protocol):
    """A model with its pre- and post-processing, run one prepared batch at a time."""

    model: Model  # its batch capability decides how frames are batched
    runtimes: List[Model]  # engine instances that run batches concurrently; [0] is ``model``
    preprocessor: Preprocessor
    class_names: List[str]
    score_threshold: float
    backend: Optional[Backend]
    backend_note: str  # which backend runs, and why when ``auto`` chose it
    model_note: str  # what the model runs with, and what of it was inferred from the file
    model_path: str  # the file a reload reads ('' when there is no single file)

    def plan(self, source: str, received: float) -> Optional[FramePlan]:
        """
        Return what to run on a frame of ``source`` that arrived at ``received``.

        None skips the frame.
        """

    def prepare(self, images: Sequence[np.ndarray],
                channel_orders: Sequence[str]) -> PreparedBatch:
        """Pre-process the images of one run into the model's input tensor."""

    def run_batch(self, plans: Sequence[FramePlan], images: Sequence[SourceImage],
                  batch: PreparedBatch, runtime: int = 0) -> BatchOutcome:
        """Run one prepared batch on ``runtime``; ``plans`` and ``images`` are per frame."""

    def warm_up(self) -> None:
        """Run every runtime once, so the first real frame does not pay for lazy set-up."""

    def reload(self) -> None:
        """Load the model afresh from its file (after repeated backend failures)."""


def run_blank_frame(pipeline: Pipeline, plan: FramePlan) -> None:
    """One run of ``plan`` on every runtime, on a blank frame at the size the model runs at."""
    width, height = pipeline.preprocessor.target_size((640, 480))
    blank = np.zeros((height, width, 3), np.uint8)
    batch = pipeline.prepare([blank], ['bgr'])
    for runtime in range(len(pipeline.runtimes)):
        pipeline.run_batch([plan], [(blank, 'bgr')], batch, runtime)
