"""
Semantic segmentation: one detection per class present, its pixels kept in a class map.

A detection's box bounds its class's pixels; its mask, in source pixels, is made when the
detections are mapped back (``imaging/source_mapping``). Also the static-scene head of
multi-task models.
"""

from typing import Sequence, Tuple

from hobot_npu_infer.core.decoders.base import (
    first,
    MultiClassDecoder,
    register_decoder,
    YOLO_PREPROCESS,
)
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import OutputLayoutError
import numpy as np

NO_CLASS = -1  # a class-map cell of no class: ignored, unknown or garbage
MAX_CLASS_ID = 65535  # a class id above this is garbage, not a class


def class_extents(class_map: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return the classes present in ``class_map``, their cell counts and bounding boxes.

    Boxes are (K, 4) first column, first row, last column + 1, last row + 1. They come from the
    runs of equal cells along the rows: one pass over the map, then work per run, not per cell.
    """
    h, w = class_map.shape
    edge = np.ones((h, w + 1), bool)  # before and after every run
    np.not_equal(class_map[:, 1:], class_map[:, :-1], out=edge[:, 1:-1])
    rows, starts = np.nonzero(edge[:, :-1])
    ends = np.nonzero(edge[:, 1:])[1] + 1  # row-major like the starts: one end per start
    classes = class_map[rows, starts]
    labelled = classes >= 0
    rows, starts, ends, classes = rows[labelled], starts[labelled], ends[labelled], \
        classes[labelled]
    counts = np.bincount(classes, weights=ends - starts).astype(np.int64)
    present = np.flatnonzero(counts)
    if not len(present):
        return present, counts[present], np.zeros((0, 4), np.int64)
    order = np.argsort(classes, kind='stable')
    first = np.searchsorted(classes[order], present)
    rows, starts, ends = rows[order], starts[order], ends[order]
    boxes = np.stack([np.minimum.reduceat(starts, first), np.minimum.reduceat(rows, first),
                      np.maximum.reduceat(ends, first), np.maximum.reduceat(rows, first) + 1],
                     axis=1)
    return present, counts[present], boxes


@register_decoder('semantic')
class SemanticDecoder(MultiClassDecoder):
    """
    ``[B, H, W]`` class ids (YOLO26-sem: argmax in the graph) or ``[B, C, H, W]`` logits.

    Score: 1.0 for class ids; for logits, the class's softmax probability averaged over its
    pixels (one channel: foreground where the logit is positive, as Ultralytics). Class ids
    outside ``0..num_classes-1`` (an ignore label such as 255) are no class. No threshold by
    default: Ultralytics reports every class present.
    """

    task = 'semantic'
    preprocess = YOLO_PREPROCESS
    default_score_threshold = 0.0

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        output = outputs[0]
        if output.ndim not in (3, 4) or min(output.shape[1:]) < 1:
            raise OutputLayoutError(f'{self.name} output must be [B, H, W] class ids or '
                                    f'[B, C, H, W] logits, got shape {output.shape}')
        if output.ndim == 3:
            class_map, confidence = self.from_class_ids(output[b], output.shape), None
        else:
            class_map, confidence = self.from_logits(output[b], output.shape)
        classes, counts, extents = class_extents(class_map)
        if confidence is None:
            scores = np.ones(len(classes), np.float32)
        else:
            labelled = class_map >= 0
            sums = np.bincount(class_map[labelled], weights=confidence[labelled])
            scores = (sums[classes] / counts).astype(np.float32)
        h, w = class_map.shape
        w_in, h_in = input_size
        boxes = (extents * np.array([w_in / w, h_in / h] * 2)).astype(np.float32)
        order = np.argsort(-scores, kind='stable')
        order = order[scores[order] > score_threshold]
        return RawDetections(boxes[order], scores[order], classes[order].astype(np.int64),
                             class_map=class_map)

    def from_class_ids(self, ids: np.ndarray, shape) -> np.ndarray:
        """Return the class map of a map of class ids (any dtype), bad cells of no class."""
        integers = np.issubdtype(ids.dtype, np.integer)
        known = ids >= 0 if integers else np.isfinite(ids) & (ids >= 0)
        if self.num_classes is not None:
            known &= ids < self.num_classes
        elif known.any() and ids[known].max() > MAX_CLASS_ID:
            raise OutputLayoutError(f'{self.name} output of shape {shape} holds class id '
                                    f'{ids[known].max()}: not a class map (give num_classes '
                                    f'to ignore such ids)')
        class_map = np.full(ids.shape, NO_CLASS, np.int32)
        class_map[known] = ids[known] if integers else np.rint(ids[known])
        return class_map

    def from_logits(self, logits: np.ndarray, shape) -> Tuple[np.ndarray, np.ndarray]:
        """Return the class map (argmax) and each cell's probability of its class."""
        classes = max(shape[1], 2)  # one channel: background and foreground
        if self.num_classes is not None and classes != self.num_classes:
            raise OutputLayoutError(f'{self.name} output of shape {shape} has {shape[1]} '
                                    f'class channel(s), num_classes is {self.num_classes}')
        logits = logits.astype(np.float32, copy=False)
        finite = np.isfinite(logits).all(axis=0)
        if logits.shape[0] == 1:
            foreground = logits[0] > 0
            probability = 1 / (1 + np.exp(-np.abs(logits[0])))  # of the class chosen
            class_map = foreground.astype(np.int32)
        else:
            class_map = logits.argmax(axis=0).astype(np.int32)
            best = np.take_along_axis(logits, class_map[None], axis=0)
            probability = 1 / np.exp(logits - best).sum(axis=0)
        class_map[~finite] = NO_CLASS
        return class_map, probability.astype(np.float64)

    def suppress(self, raw: RawDetections) -> np.ndarray:
        return first(raw, self.max_detections)
