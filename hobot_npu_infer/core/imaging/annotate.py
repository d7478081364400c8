"""
Drawing detections on an image, for saved results and the debug image topic.

Colours come from one palette (Ultralytics'): a tracked detection's from its track ID, so an
object keeps its colour from frame to frame, an untracked one's from its class. The ROS markers
(``ros/markers``) take their colours and the COCO skeleton from here too.
"""

from typing import List, Sequence, Tuple

import cv2
from hobot_npu_infer.core.detection import Detection
import numpy as np

# Ultralytics' class palette, as BGR: a colour per class (or track), for boxes, labels and masks.
_CLASS_COLOURS = np.array([[int(code[i:i + 2], 16) for i in (4, 2, 0)] for code in (
    'FF3838', 'FF9D97', 'FF701F', 'FFB21D', 'CFD231', '48F90A', '92CC17', '3DDB86', '1A9334',
    '00D4BB', '2C99A8', '00C2FF', '344593', '6473FF', '0018EC', '8438FF', '520085', 'CB38FF',
    'FF95C8', 'FF37C7')], np.uint8)
_MASK_OPACITY = 0.5
KEYPOINT_SCORE = 0.5  # keypoints at or below this confidence are not drawn
POINT_COLOURS = ((0, 0, 255), (0, 255, 255), (255, 0, 0), (255, 0, 255), (255, 255, 0))
# COCO-17 body keypoints: Ultralytics' skeleton (keypoint index pairs) and its colours.
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
                 (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5),
                 (4, 6))
_LEGS, _TORSO, _ARMS, _HEAD = (51, 153, 255), (255, 51, 255), (255, 128, 0), (0, 255, 0)
LIMB_COLOURS = (_LEGS,) * 4 + (_TORSO,) * 3 + (_ARMS,) * 5 + (_HEAD,) * 7
BODY_POINT_COLOURS = (_HEAD,) * 5 + (_ARMS,) * 6 + (_LEGS,) * 6


def palette_colour(index: int) -> Tuple[int, int, int]:
    """Return colour ``index`` of the palette (BGR), cycling through its 20 colours."""
    return tuple(int(c) for c in _CLASS_COLOURS[index % len(_CLASS_COLOURS)])


def detection_colour(det: Detection) -> Tuple[int, int, int]:
    """Return ``det``'s colour (BGR): its track ID's when it has one, else its class's."""
    return palette_colour(det.class_id if det.track_id is None else det.track_id)


def detection_label(det: Detection) -> str:
    """Return ``det``'s label: ``#<track id> <class> <score>``, without the ID if untracked."""
    label = f'{det.class_name} {det.score:.2f}'
    return label if det.track_id is None else f'#{det.track_id} {label}'


def keypoint_colours(count: int) -> Sequence[Tuple[int, int, int]]:
    """Return the colour (BGR) of each of ``count`` keypoints: body parts for COCO-17."""
    return BODY_POINT_COLOURS if count == 17 else \
        [POINT_COLOURS[i % len(POINT_COLOURS)] for i in range(count)]


def shown_keypoints(det: Detection) -> List[bool]:
    """Return per keypoint whether it is drawn: above 0.5 confidence, or all without scores."""
    if det.keypoint_scores is None:
        return [True] * len(det.keypoints or ())
    return [score > KEYPOINT_SCORE for score in det.keypoint_scores]


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


def covers_image(det: Detection, width: int, height: int) -> bool:
    """Tell whether ``det`` is about the whole image (a class of it), not a region."""
    x1, y1, x2, y2 = det.box
    return det.angle is None and x1 <= 1 and y1 <= 1 and x2 >= width - 1 and y2 >= height - 1


def draw_detections(image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """
    Return a BGR copy of the BGR (or grey) ``image`` with the detections drawn.

    Masks are a translucent overlay, boxes (obb: the rotated box) carry their label (``#<track
    id>`` first when tracked), both in the detection's colour (:func:`detection_colour`: stable
    per track ID); keypoints show above 0.5 confidence (17 of them: the COCO skeleton too). The
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
        label = detection_label(det)
        if covers_image(det, width, height):
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
    """Blend each mask's colour into its pixels, by whole-image OpenCV operations."""
    labels = instance_labels(detections, canvas.shape[1::-1])
    table = np.zeros((max(256, len(detections) + 1), 3), np.uint8)  # instance label -> colour
    table[1:len(detections) + 1] = [detection_colour(det) for det in detections]
    if labels.dtype == np.uint8:  # twice as fast as numpy's take
        colours = cv2.applyColorMap(labels, table[:256, None])
    else:
        colours = np.take(table, labels, axis=0)
        labels = (labels > 0).view(np.uint8)
    blended = cv2.addWeighted(canvas, 1 - _MASK_OPACITY, colours, _MASK_OPACITY, 0)
    cv2.copyTo(blended, labels, canvas)  # only where a mask is


def _draw_box(canvas: np.ndarray, det: Detection, label: str, thickness: int) -> None:
    colour = detection_colour(det)
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
    shown = shown_keypoints(det)
    if len(points) == 17:
        for (a, b), colour in zip(COCO_SKELETON, LIMB_COLOURS):
            if shown[a] and shown[b]:
                cv2.line(canvas, points[a], points[b], colour, thickness, cv2.LINE_AA)
    for point, visible, colour in zip(points, shown, keypoint_colours(len(points))):
        if visible:
            cv2.circle(canvas, point, thickness + 1, colour, -1, cv2.LINE_AA)


def _put_text(canvas: np.ndarray, text: str, origin: Tuple[int, int], colour, thickness: int):
    """Write ``text`` outlined in black, legible on any background."""
    scale = 0.4 * thickness
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2,
                cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                cv2.LINE_AA)
