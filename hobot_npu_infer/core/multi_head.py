"""Each head at its own rate over a shared trunk: on every frame the due heads are found, the
trunk runs only if one is due, and the due heads run on that same frame's features."""

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .decoders import Decoder
from .detection import Detection, to_detections
from .head_scheduler import HeadScheduler
from .packed_model import PackedModel
from .pipeline import to_source
from .preprocess import Preprocessor


@dataclass
class HeadOutput:
    """One head's result on one frame: detections when it has a decoder, else raw tensors."""

    head: str
    detections: Optional[List[List[Detection]]]  # per image of the batch
    tensors: List[np.ndarray]
    inference_ms: float
    postprocess_ms: float


@dataclass
class FrameOutputs:
    heads: List[HeadOutput] = field(default_factory=list)
    preprocess_ms: float = 0.0
    trunk_ms: float = 0.0


@dataclass
class HeadDecoding:
    decoder: Decoder
    class_names: Sequence[str] = ()
    score_threshold: float = 0.5


class MultiHeadPipeline:
    def __init__(self, packed: PackedModel, preprocessor: Preprocessor, scheduler: HeadScheduler,
                 decoding: Dict[str, HeadDecoding]):
        self.packed = packed
        self.preprocessor = preprocessor
        self.scheduler = scheduler
        self.decoding = decoding

    def process(self, images: Sequence[np.ndarray], frame_time: float,
                channel_orders: Union[str, Sequence[str]] = 'bgr') -> FrameOutputs:
        """Run the heads due at ``frame_time`` (stream seconds) on ``images``: nothing at all,
        not even pre-processing, when no head is due."""
        due = self.scheduler.due(frame_time)
        if not due:
            return FrameOutputs()
        t0 = time.perf_counter()
        batch = self.preprocessor.prepare(images, channel_orders,
                                          self.packed.input_batch_size())
        t1 = time.perf_counter()
        features = self.packed.features(batch.tensor)
        t2 = time.perf_counter()
        result = FrameOutputs(preprocess_ms=(t1 - t0) * 1e3, trunk_ms=(t2 - t1) * 1e3)
        for name in due:
            start = time.perf_counter()
            tensors = self.packed.run_head(name, features)
            ran = time.perf_counter()
            detections = None
            decoding = self.decoding.get(name)
            if decoding is not None:
                raws = decoding.decoder.decode(tensors, batch.input_size,
                                               decoding.score_threshold, len(batch.transforms))
                detections = [to_detections(to_source(raw, transform), decoding.class_names)
                              for raw, transform in zip(raws, batch.transforms)]
            done = time.perf_counter()
            result.heads.append(HeadOutput(name, detections,
                                           [t[:len(batch.transforms)] for t in tensors],
                                           (ran - start) * 1e3, (done - ran) * 1e3))
        return result
