"""The one detection result type every decoder and every output path shares."""

from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np


class RawDetections(NamedTuple):
    """One image's decoded detections as arrays, in model-input pixels (before mapping back)."""

    boxes: np.ndarray  # (N, 4) float32 x1 y1 x2 y2
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64
    keypoints: Optional[np.ndarray] = None  # (N, K, 2) float32 x y

    @classmethod
    def empty(cls, num_keypoints: int = 0) -> 'RawDetections':
        keypoints = np.zeros((0, num_keypoints, 2), np.float32) if num_keypoints else None
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros(0, np.int64), keypoints)

    @classmethod
    def join(cls, boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray],
             class_ids: Sequence[np.ndarray]) -> 'RawDetections':
        """One image's detections gathered part by part (stride by stride, say)."""
        return cls(np.concatenate(boxes).reshape(-1, 4), np.concatenate(scores).astype(np.float32),
                   np.concatenate(class_ids).astype(np.int64))

    def select(self, keep: np.ndarray) -> 'RawDetections':
        return RawDetections(self.boxes[keep], self.scores[keep], self.class_ids[keep],
                             None if self.keypoints is None else self.keypoints[keep])


@dataclass(frozen=True)
class Detection:
    """A detection in original-image pixels."""

    box: Tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    class_id: int
    class_name: str
    keypoints: Optional[Tuple[Tuple[float, float], ...]] = None
    attributes: Optional[Dict[str, Any]] = None  # a second stage's output (crop class, embedding)

    def to_dict(self) -> dict:
        out = {
            'class_id': self.class_id,
            'class_name': self.class_name,
            'score': round(self.score, 5),
            'box': [round(v, 2) for v in self.box],
            'keypoints': [[round(x, 2), round(y, 2)] for x, y in self.keypoints or ()],
        }
        if self.attributes:
            out['attributes'] = dict(self.attributes)
        return out


def class_name(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def to_detections(raw: RawDetections, class_names: Sequence[str]) -> List[Detection]:
    """Arrays to Detection objects; ``raw`` must already be in original-image pixels."""
    keypoints = raw.keypoints
    return [
        Detection(tuple(float(v) for v in raw.boxes[i]), float(raw.scores[i]),
                  int(raw.class_ids[i]), class_name(class_names, int(raw.class_ids[i])),
                  None if keypoints is None
                  else tuple((float(x), float(y)) for x, y in keypoints[i]))
        for i in range(len(raw.scores))
    ]
