"""Decoder interface and registry: raw model outputs to detections in model-input pixels."""

from abc import ABC, abstractmethod
from types import MappingProxyType
from typing import List, Mapping, Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders.nms import batched_nms
from hobot_npu_infer.core.detection import RawDetections, TASKS
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
from hobot_npu_infer.core.implementations import Registry
import numpy as np

# What Ultralytics' predictors and the YOLO zoos feed their models: a letterbox on grey 114, RGB,
# pixels over 255.
YOLO_PREPROCESS: Mapping[str, object] = MappingProxyType(
    {'resize': 'letterbox', 'pad_value': 114, 'channel_order': 'rgb', 'scale': 1 / 255})
MAX_NMS = 30000  # candidates NMS sees at most, the best scores (Ultralytics' max_nms)


class Decoder(ABC):
    """
    Turns a batch of outputs into one :class:`RawDetections` per image.

    Subclasses find the candidates of one image; thresholding order, the garbage filter and the
    detection cap are shared here so every layout behaves the same. :meth:`suppress` is per-class
    NMS unless a layout needs another (rotated boxes) or none (end-to-end models).
    """

    name: str
    task = 'detect'  # one of detection.TASKS: what the detections carry
    preprocess: Mapping[str, object] = MappingProxyType({})  # PreprocessConfig overrides it needs
    default_score_threshold = 0.5
    default_nms_threshold = 0.45
    num_keypoints = 0
    num_outputs = 1

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 agnostic_nms: bool = False):
        if nms_threshold is None:
            nms_threshold = self.default_nms_threshold
        if not 0.0 < nms_threshold <= 1.0:
            raise ConfigError(f'nms_threshold must be within (0, 1], got {nms_threshold}')
        if max_detections < 1:
            raise ConfigError(f'max_detections must be >= 1, got {max_detections}')
        if not isinstance(agnostic_nms, bool):
            raise ConfigError(f'agnostic_nms must be true or false, got {agnostic_nms!r}')
        self.nms_threshold = nms_threshold
        self.max_detections = max_detections
        # NMS across the classes (Ultralytics' agnostic_nms): one box per object when the
        # classes are states of one thing (standing, fallen), which trackers need
        self.agnostic_nms = agnostic_nms

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.task not in TASKS:
            raise TypeError(f'{cls.__name__}.task must be one of {TASKS}, got {cls.task!r}')

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
                raw = raw.select(finite_rows(raw))
                results.append(raw.select(self.suppress(raw)))
        return results

    @abstractmethod
    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        """All detections of image ``b`` scoring above ``score_threshold``, before NMS."""

    def suppress(self, raw: RawDetections) -> np.ndarray:
        """Return the indices of the detections kept, best first: NMS, then the cap."""
        best = top_scores(raw.scores, MAX_NMS)
        return best[self.nms(raw.select(best))]

    def nms(self, raw: RawDetections) -> np.ndarray:
        """Return the indices :meth:`suppress` keeps of the best candidates: per-class NMS."""
        return batched_nms(raw.boxes, raw.scores, self.nms_classes(raw), self.nms_threshold,
                           self.max_detections)

    def nms_classes(self, raw: RawDetections) -> np.ndarray:
        """Return the class of each detection as NMS sees it: all one when agnostic."""
        return np.zeros_like(raw.class_ids) if self.agnostic_nms else raw.class_ids


class MultiClassDecoder(Decoder):
    """A decoder of C classes: C from the ``num_classes`` option, else from the output shapes."""

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 num_classes: Optional[int] = None, agnostic_nms: bool = False):
        super().__init__(nms_threshold, max_detections, agnostic_nms)
        if num_classes is not None and (isinstance(num_classes, bool)
                                        or not isinstance(num_classes, int) or num_classes < 1):
            raise ConfigError(f'{self.name} num_classes must be a positive integer, '
                              f'got {num_classes!r}')
        self.num_classes = num_classes


def finite_rows(raw: RawDetections) -> np.ndarray:
    """Return which detections have only finite values in every per-detection field."""
    finite = np.ones(len(raw.scores), bool)
    for values in (raw.scores, raw.boxes, raw.keypoints, raw.keypoint_scores, raw.angles,
                   raw.mask_coefficients):
        if values is not None:
            finite &= np.isfinite(values).all(axis=tuple(range(1, values.ndim)))
    return finite


def first(raw: RawDetections, max_detections: int) -> np.ndarray:
    """Return the indices of the first ``max_detections`` detections: the cap without NMS."""
    return np.arange(min(len(raw.scores), max_detections))


def top_scores(scores: np.ndarray, limit: int) -> np.ndarray:
    """Return the indices of the ``limit`` best scores (all of them when fewer), in input order."""
    if len(scores) <= limit:
        return np.arange(len(scores))
    return np.sort(np.argsort(-scores, kind='stable')[:limit])


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
