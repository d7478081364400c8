"""Decoder interface and registry: raw model outputs to detections in model-input pixels."""

from abc import ABC, abstractmethod
from typing import List, Sequence, Tuple

from hobot_npu_infer.core.decoders.nms import batched_nms
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
from hobot_npu_infer.core.implementations import Registry
import numpy as np


class Decoder(ABC):
    """
    Turns a batch of outputs into one :class:`RawDetections` per image.

    Subclasses find the candidates of one image; thresholding order, per-class NMS and the
    detection cap are shared here so every layout behaves the same.
    """

    name: str
    num_keypoints = 0
    num_outputs = 1

    def __init__(self, nms_threshold: float = 0.45, max_detections: int = 300):
        if not 0.0 < nms_threshold <= 1.0:
            raise ConfigError(f'nms_threshold must be within (0, 1], got {nms_threshold}')
        if max_detections < 1:
            raise ConfigError(f'max_detections must be >= 1, got {max_detections}')
        self.nms_threshold = nms_threshold
        self.max_detections = max_detections

    def decode(self, outputs: Sequence[np.ndarray], input_size: Tuple[int, int],
               score_threshold: float, batch_size: int = 0) -> List[RawDetections]:
        """Decode the detections of the first ``batch_size`` images (all when 0) of the batch."""
        if len(outputs) < self.num_outputs:
            raise OutputLayoutError(f'decoder {self.name} needs {self.num_outputs} output(s), '
                                    f'the model gave {len(outputs)}')
        n = batch_size or outputs[0].shape[0]
        for i, output in enumerate(outputs[:self.num_outputs]):
            if output.ndim == 0 or output.shape[0] < n:
                raise OutputLayoutError(f'decoder {self.name}: output {i} of shape {output.shape} '
                                        f'holds no batch of {n}')
        results = []
        for b in range(n):
            # Garbage from a backend (NaN, infinities) makes no detection and no warning.
            with np.errstate(invalid='ignore', over='ignore', divide='ignore'):
                raw = self.candidates(outputs, b, input_size, score_threshold)
            finite = np.isfinite(raw.scores) & np.isfinite(raw.boxes).all(axis=1)
            if raw.keypoints is not None:
                finite &= np.isfinite(raw.keypoints).all(axis=(1, 2))
            raw = raw.select(finite)
            keep = batched_nms(raw.boxes, raw.scores, raw.class_ids,
                               self.nms_threshold, self.max_detections)
            results.append(raw.select(keep))
        return results

    @abstractmethod
    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        """All detections of image ``b`` scoring above ``score_threshold``, before NMS."""


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1).astype(np.float32)


def expect_rank(array: np.ndarray, rank: int, what: str) -> None:
    if array.ndim != rank:
        raise OutputLayoutError(f'{what} must have {rank} dimensions, got shape {array.shape}')


DECODERS: Registry[Decoder] = Registry('decoder')
register_decoder = DECODERS.register
decoder_names = DECODERS.names
create_decoder = DECODERS.create
