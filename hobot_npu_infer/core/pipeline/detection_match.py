"""
Matching one backend's detections against a reference's: the check after int8 quantisation.

Greedy by IoU, highest first, class for class: a reference detection is matched at most once.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from hobot_npu_infer.core.detection import Detection
import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute the IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + \
        (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    return np.where(area > 0, inter / np.where(area > 0, area, 1), 0.0)


@dataclass
class MatchCounts:
    matched: int = 0
    missed: int = 0  # in the reference only
    extra: int = 0  # in the compared backend only
    ious: List[float] = field(default_factory=list)

    def add(self, other: 'MatchCounts') -> None:
        self.matched += other.matched
        self.missed += other.missed
        self.extra += other.extra
        self.ious += other.ious

    def as_dict(self) -> Dict[str, object]:
        ious = np.asarray(self.ious)
        return {'matched': self.matched, 'missed': self.missed, 'extra': self.extra,
                'iou_mean': round(float(ious.mean()), 4) if len(ious) else None,
                'iou_min': round(float(ious.min()), 4) if len(ious) else None}


def match_detections(reference: Sequence[Detection], candidate: Sequence[Detection],
                     min_iou: float = 0.5) -> MatchCounts:
    ious = iou_matrix(np.array([d.box for d in reference]).reshape(-1, 4),
                      np.array([d.box for d in candidate]).reshape(-1, 4))
    same_class = np.array([[r.class_id == c.class_id for c in candidate] for r in reference],
                          bool).reshape(ious.shape)
    ious = np.where(same_class, ious, 0.0)
    counts = MatchCounts()
    free_ref, free_cand = set(range(len(reference))), set(range(len(candidate)))
    for flat in np.argsort(-ious, axis=None):
        r, c = divmod(int(flat), max(1, len(candidate)))
        if ious[r, c] < min_iou:
            break
        if r in free_ref and c in free_cand:
            free_ref.discard(r)
            free_cand.discard(c)
            counts.matched += 1
            counts.ious.append(float(ious[r, c]))
    counts.missed, counts.extra = len(free_ref), len(free_cand)
    return counts
