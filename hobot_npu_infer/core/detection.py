"""
The one detection result type every decoder and every output path shares.

Every task is a list of detections: boxes (detect), boxes with an instance mask (segment),
boxes with keypoints and their confidences (pose), rotated boxes (obb), the top classes of the
whole image (classify: each box covers the image) and one masked region per class present
(semantic segmentation).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

TASKS = ('detect', 'segment', 'pose', 'classify', 'obb', 'semantic')


@dataclass(frozen=True, eq=False)
class InstanceMask:
    """A detection's pixels in the original image: a boolean bitmap placed at (x, y)."""

    x: int
    y: int
    bitmap: np.ndarray  # (h, w) bool

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.bitmap))

    def polygons(self) -> List[List[Tuple[int, int]]]:
        """Return the outer contours as lists of (x, y) image pixels, largest first."""
        contours, _ = cv2.findContours(self.bitmap.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        contours = sorted(contours, key=cv2.contourArea, reverse=True)
        return [[(int(x) + self.x, int(y) + self.y) for x, y in c.reshape(-1, 2)]
                for c in contours]

    def paste(self, canvas: np.ndarray, value) -> None:
        """Write ``value`` into ``canvas`` (an image of the source size) where the mask is set."""
        h, w = canvas.shape[:2]
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1 = min(self.x + self.bitmap.shape[1], w)
        y1 = min(self.y + self.bitmap.shape[0], h)
        if x1 > x0 and y1 > y0:
            region = self.bitmap[y0 - self.y:y1 - self.y, x0 - self.x:x1 - self.x]
            canvas[y0:y1, x0:x1][region] = value


class RawDetections(NamedTuple):
    """
    One image's decoded detections as arrays, in model-input pixels (before mapping back).

    Per-detection fields are indexed together by :meth:`select`; ``protos`` and ``class_map``
    belong to the image and make the masks when the detections are mapped back to the source.
    """

    boxes: np.ndarray  # (N, 4) float32 x1 y1 x2 y2; obb: the unrotated box about its centre
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64
    keypoints: Optional[np.ndarray] = None  # (N, K, 2) float32 x y
    keypoint_scores: Optional[np.ndarray] = None  # (N, K) float32 visibility confidences
    angles: Optional[np.ndarray] = None  # (N,) float32 radians, obb: rotation about the centre
    mask_coefficients: Optional[np.ndarray] = None  # (N, M) float32, segment
    protos: Optional[np.ndarray] = None  # (M, h, w) float32 mask prototypes of the image
    class_map: Optional[np.ndarray] = None  # (h, w) class id per cell of the image, semantic
    masks: Optional[List[InstanceMask]] = None  # per detection, once mapped to the source

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
        """Return the detections at indices (or boolean mask) ``keep``, every field alike."""
        def pick(values):
            return None if values is None else values[keep]
        masks = None
        if self.masks is not None:
            index = np.arange(len(self.masks))[keep]
            masks = [self.masks[i] for i in index]
        return self._replace(boxes=self.boxes[keep], scores=self.scores[keep],
                             class_ids=self.class_ids[keep], keypoints=pick(self.keypoints),
                             keypoint_scores=pick(self.keypoint_scores),
                             angles=pick(self.angles),
                             mask_coefficients=pick(self.mask_coefficients), masks=masks)


@dataclass(frozen=True)
class Detection:
    """A detection in original-image pixels."""

    box: Tuple[float, float, float, float]  # x1, y1, x2, y2; obb: the unrotated box
    score: float
    class_id: int
    class_name: str
    keypoints: Optional[Tuple[Tuple[float, float], ...]] = None
    attributes: Optional[Dict[str, Any]] = None  # a second stage's output (crop class, embedding)
    keypoint_scores: Optional[Tuple[float, ...]] = None  # per keypoint, where the model gives it
    angle: Optional[float] = None  # obb: radians, from the x axis towards y (Ultralytics' r)
    mask: Optional[InstanceMask] = field(default=None, compare=False)
    track_id: Optional[int] = None  # the tracker's ID for this object on its input, once confirmed
    predicted: bool = False  # the tracker's prediction on a frame the detector did not run on

    def corners(self) -> np.ndarray:
        """Return the box's four corners as (4, 2), turned by ``angle`` about its centre."""
        x1, y1, x2, y2 = self.box
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        cos, sin = np.cos(self.angle or 0.0), np.sin(self.angle or 0.0)
        along = np.array([cos, sin]) * (x2 - x1) / 2  # as Ultralytics' xywhr2xyxyxyxy
        across = np.array([-sin, cos]) * (y2 - y1) / 2
        return np.stack([centre + along + across, centre + along - across,
                         centre - along - across, centre - along + across]).astype(np.float32)

    def to_dict(self) -> dict:
        out = {
            'class_id': self.class_id,
            'class_name': self.class_name,
            'score': round(self.score, 5),
            'box': [round(v, 2) for v in self.box],
            'keypoints': [[round(x, 2), round(y, 2)] for x, y in self.keypoints or ()],
        }
        if self.keypoint_scores is not None:
            out['keypoint_scores'] = [round(s, 4) for s in self.keypoint_scores]
        if self.angle is not None:
            x1, y1, x2, y2 = self.box
            out['angle'] = round(self.angle, 6)
            out['rotated_box'] = [round((x1 + x2) / 2, 2), round((y1 + y2) / 2, 2),
                                  round(x2 - x1, 2), round(y2 - y1, 2), round(self.angle, 6)]
        if self.mask is not None:
            out['mask'] = {'area': self.mask.area,
                           'polygons': [[list(p) for p in poly] for poly in self.mask.polygons()]}
        if self.attributes:
            out['attributes'] = dict(self.attributes)
        if self.track_id is not None:
            out['track_id'] = self.track_id
        if self.predicted:
            out['predicted'] = True
        return out


def class_name(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def to_detections(raw: RawDetections, class_names: Sequence[str]) -> List[Detection]:
    """Arrays to Detection objects; ``raw`` must already be in original-image pixels."""
    def row(values, i):
        return None if values is None else values[i]
    out = []
    for i in range(len(raw.scores)):
        keypoints = row(raw.keypoints, i)
        keypoint_scores = row(raw.keypoint_scores, i)
        angle = row(raw.angles, i)
        out.append(Detection(
            tuple(float(v) for v in raw.boxes[i]), float(raw.scores[i]), int(raw.class_ids[i]),
            class_name(class_names, int(raw.class_ids[i])),
            None if keypoints is None else tuple((float(x), float(y)) for x, y in keypoints),
            keypoint_scores=None if keypoint_scores is None
            else tuple(float(s) for s in keypoint_scores),
            angle=None if angle is None else float(angle),
            mask=None if raw.masks is None else raw.masks[i]))
    return out
