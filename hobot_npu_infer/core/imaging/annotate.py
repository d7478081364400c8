"""Drawing detections on an image, for saved results and the debug image topic."""

from typing import List, Sequence, Tuple

import cv2
from hobot_npu_infer.core.detection import Detection
import numpy as np

# Ultralytics' class palette, as BGR: a colour per class, for its boxes, labels and masks.
_CLASS_COLOURS = np.array([[int(code[i:i + 2], 16) for i in (4, 2, 0)] for code in (
    'FF3838', 'FF9D97', 'FF701F', 'FFB21D', 'CFD231', '48F90A', '92CC17', '3DDB86', '1A9334',
    '00D4BB', '2C99A8', '00C2FF', '344593', '6473FF', '0018EC', '8438FF', '520085', 'CB38FF',
    'FF95C8', 'FF37C7')], np.uint8)
_MASK_OPACITY = 0.5
_KEYPOINT_SCORE = 0.5  # keypoints at or below this confidence are not drawn
_POINTS = ((0, 0, 255), (0, 255, 255), (255, 0, 0), (255, 0, 255), (255, 255, 0))
# COCO-17 body keypoints: Ultralytics' skeleton (keypoint index pairs) and its colours.
_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
             (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
_LEGS, _TORSO, _ARMS, _HEAD = (51, 153, 255), (255, 51, 255), (255, 128, 0), (0, 255, 0)
_LIMB_COLOURS = (_LEGS,) * 4 + (_TORSO,) * 3 + (_ARMS,) * 5 + (_HEAD,) * 7
_BODY_POINT_COLOURS = (_HEAD,) * 5 + (_ARMS,) * 6 + (_LEGS,) * 6


def _class_colour(class_id: int) -> Tuple[int, int, int]:
    return tuple(int(c) for c in _CLASS_COLOURS[class_id % len(_CLASS_COLOURS)])


def instance_labels(detections: Sequence[Detection], size: Tuple[int, int]) -> np.ndarray:
    """
    Return the instance-label image of ``size`` (width, height): i + 1 on detection i's mask.

    0 where no mask is; uint8, or uint16 past 255 detections. Where masks overlap, the earlier
    (better scoring) detection keeps the pixel.
    """
    width, height = size
    labels = np.zeros((height, width), np.uint8 if len(detections) < 256 else np.uint16)
    for i in range(len(detections) - 1, -1, -1):
        mask = detections[i].mask
        if mask is not None:
            mask.paste(labels, i + 1)
    return labels


def _covers_image(det: Detection, width: int, height: int) -> bool:
    """Tell whether ``det`` is about the whole image (a class of it), not a region."""
    x1, y1, x2, y2 = det.box
    return det.angle is None and x1 <= 1 and y1 <= 1 and x2 >= width - 1 and y2 >= height - 1


def draw_detections(image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """
    Return a BGR copy of the BGR (or grey) ``image`` with the detections drawn.

    Masks are a translucent overlay in their class's colour, boxes (obb: the rotated box) carry
    their label, keypoints show above 0.5 confidence (17 of them: the COCO skeleton too). The
    classes of the whole image (classification) are listed in its top-left corner instead of
    boxed.
    """
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    if any(det.mask is not None for det in detections):
        _overlay_masks(canvas, detections)
    listed: List[str] = []
    for det in detections:
        label = f'{det.class_name} {det.score:.2f}'
        if _covers_image(det, width, height):
            listed.append(label)
        else:
            _draw_box(canvas, det, label, thickness)
        if det.keypoints:
            _draw_keypoints(canvas, det, thickness)
    line_height = 16 * thickness
    for i, label in enumerate(listed):
        _put_text(canvas, label, (4, (i + 1) * line_height), (255, 255, 255), thickness)
    return canvas


def _overlay_masks(canvas: np.ndarray, detections: Sequence[Detection]) -> None:
    """Blend each mask's class colour into its pixels, by whole-image OpenCV operations."""
    labels = instance_labels(detections, canvas.shape[1::-1])
    table = np.zeros((max(256, len(detections) + 1), 3), np.uint8)  # instance label -> colour
    table[1:len(detections) + 1] = _CLASS_COLOURS[
        [det.class_id % len(_CLASS_COLOURS) for det in detections]]
    if labels.dtype == np.uint8:  # twice as fast as numpy's take
        colours = cv2.applyColorMap(labels, table[:256, None])
    else:
        colours = np.take(table, labels, axis=0)
        labels = (labels > 0).view(np.uint8)
    blended = cv2.addWeighted(canvas, 1 - _MASK_OPACITY, colours, _MASK_OPACITY, 0)
    cv2.copyTo(blended, labels, canvas)  # only where a mask is


def _draw_box(canvas: np.ndarray, det: Detection, label: str, thickness: int) -> None:
    colour = _class_colour(det.class_id)
    if det.angle is None:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
    else:
        corners = np.round(det.corners()).astype(np.int32)
        cv2.polylines(canvas, [corners], True, colour, thickness, cv2.LINE_AA)
        x1, y1 = corners[np.argmin(corners[:, 1])].tolist()  # the label over the top corner
    _put_text(canvas, label, (x1, max(12, y1 - 4)), colour, thickness)


def _draw_keypoints(canvas: np.ndarray, det: Detection, thickness: int) -> None:
    points = np.round(np.asarray(det.keypoints, np.float32)).astype(np.int32).tolist()
    shown = [True] * len(points) if det.keypoint_scores is None \
        else [score > _KEYPOINT_SCORE for score in det.keypoint_scores]
    if len(points) == 17:
        for (a, b), colour in zip(_SKELETON, _LIMB_COLOURS):
            if shown[a] and shown[b]:
                cv2.line(canvas, points[a], points[b], colour, thickness, cv2.LINE_AA)
        colours = _BODY_POINT_COLOURS
    else:
        colours = [_POINTS[i % len(_POINTS)] for i in range(len(points))]
    for point, visible, colour in zip(points, shown, colours):
        if visible:
            cv2.circle(canvas, point, thickness + 1, colour, -1, cv2.LINE_AA)


def _put_text(canvas: np.ndarray, text: str, origin: Tuple[int, int], colour, thickness: int):
    """Write ``text`` outlined in black, legible on any background."""
    scale = 0.4 * thickness
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2,
                cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                cv2.LINE_AA)
