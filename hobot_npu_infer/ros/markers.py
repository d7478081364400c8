"""
Detections as visualization_msgs/MarkerArray, for RViz and Foxglove's 3D panel.

Geometry: markers are in the image's ``header.frame_id`` on its z = 0 plane, image pixel
(u, v) at (u * s, v * s, 0) metres with s = ``pixel_size`` (0.001 by default: a 640x480 image
spans 0.64 m by 0.48 m): x to the right, y down, as the image's own axes. Per detection ``i``:

- ns ``boxes``: its box as a LINE_STRIP around the corners (obb: the rotated corners); a
  predicted box (shadow tracking) is dashed instead (a LINE_LIST of dashes) and dimmer;
- ns ``labels``: a TEXT_VIEW_FACING label ``#<track id> <class> <score>`` above the box;
- ns ``keypoints``: its keypoints above 0.5 confidence as POINTS, and ns ``skeleton``: with 17
  keypoints, the COCO skeleton as a LINE_LIST.

Marker ``id`` is ``i`` in every namespace; the first marker of every array is a DELETEALL, so
the markers of the previous frame vanish. Colours are the debug image's
(:func:`~hobot_npu_infer.core.imaging.annotate.detection_colour`: stable per track ID).
"""

from typing import List, Sequence, Tuple

from geometry_msgs.msg import Point
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.imaging.annotate import (
    COCO_SKELETON,
    covers_image,
    detection_colour,
    detection_label,
    keypoint_colours,
    LIMB_COLOURS,
    shown_keypoints,
)
import numpy as np
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

DEFAULT_PIXEL_SIZE = 0.001  # metres per image pixel
PREDICTED_ALPHA = 0.5  # a predicted box's opacity (a measured one's is 1)
DASH_PX = 8  # a predicted box's dashes and the gaps between them, in line widths


def colour(bgr: Tuple[int, int, int], alpha: float = 1.0) -> ColorRGBA:
    """Return the ColorRGBA of an 8-bit BGR colour."""
    return ColorRGBA(r=bgr[2] / 255.0, g=bgr[1] / 255.0, b=bgr[0] / 255.0, a=alpha)


class MarkerScale:
    """Image pixels to marker metres, and the sizes of lines, points and text in pixels."""

    def __init__(self, size: Tuple[int, int], pixel_size: float = DEFAULT_PIXEL_SIZE):
        self.pixel_size = pixel_size
        self.thickness = max(1, round(min(size) / 300))  # the debug image's line thickness
        self.line = self.thickness * pixel_size
        self.text = 12 * self.thickness * pixel_size
        self.point = 3 * self.thickness * pixel_size

    def point_at(self, x: float, y: float) -> Point:
        return Point(x=float(x) * self.pixel_size, y=float(y) * self.pixel_size, z=0.0)


def _marker(header, ns: str, index: int, kind: int, scale: MarkerScale) -> Marker:
    marker = Marker(header=header, ns=ns, id=index, type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = scale.line
    return marker


def dashes(corners: np.ndarray, dash: float) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Return the dashes of a closed polygon: (start, end) pairs, ``dash`` on, ``dash`` off."""
    out = []
    for start, end in zip(corners, np.roll(corners, -1, axis=0)):
        length = float(np.hypot(*(end - start)))
        steps = np.arange(0.0, length, 2 * dash)
        for t in steps:
            out.append((start + (end - start) * t / length,
                        start + (end - start) * min(t + dash, length) / length))
    return out


def box_marker(header, index: int, det: Detection, scale: MarkerScale) -> Marker:
    """Return the box of ``det``: a closed LINE_STRIP, or dashed LINE_LIST when predicted."""
    corners = det.corners().astype(np.float64)
    if det.predicted:
        marker = _marker(header, 'boxes', index, Marker.LINE_LIST, scale)
        for start, end in dashes(corners, DASH_PX * scale.thickness):
            marker.points += [scale.point_at(*start), scale.point_at(*end)]
        marker.color = colour(detection_colour(det), PREDICTED_ALPHA)
    else:
        marker = _marker(header, 'boxes', index, Marker.LINE_STRIP, scale)
        marker.points = [scale.point_at(x, y) for x, y in list(corners) + [corners[0]]]
        marker.color = colour(detection_colour(det))
    return marker


def label_marker(header, index: int, det: Detection, scale: MarkerScale,
                 at: Tuple[float, float]) -> Marker:
    """Return the label of ``det``, centred on image point ``at``."""
    marker = _marker(header, 'labels', index, Marker.TEXT_VIEW_FACING, scale)
    marker.scale.x = marker.scale.y = 0.0
    marker.scale.z = scale.text
    marker.pose.position = scale.point_at(*at)
    marker.text = detection_label(det)
    marker.color = colour(detection_colour(det), PREDICTED_ALPHA if det.predicted else 1.0)
    return marker


def keypoint_markers(header, index: int, det: Detection, scale: MarkerScale) -> List[Marker]:
    """Return the keypoints of ``det`` as POINTS, and for COCO-17 the skeleton as LINE_LIST."""
    points, shown = det.keypoints, shown_keypoints(det)
    alpha = PREDICTED_ALPHA if det.predicted else 1.0
    dots = _marker(header, 'keypoints', index, Marker.POINTS, scale)
    dots.scale.x = dots.scale.y = scale.point
    dots.color = colour((255, 255, 255), alpha)
    for point, visible, bgr in zip(points, shown, keypoint_colours(len(points))):
        if visible:
            dots.points.append(scale.point_at(*point))
            dots.colors.append(colour(bgr, alpha))
    markers = [dots]
    if len(points) == 17:  # COCO's body keypoints
        lines = _marker(header, 'skeleton', index, Marker.LINE_LIST, scale)
        lines.color = colour((255, 255, 255), alpha)
        for (a, b), bgr in zip(COCO_SKELETON, LIMB_COLOURS):
            if shown[a] and shown[b]:
                lines.points += [scale.point_at(*points[a]), scale.point_at(*points[b])]
                lines.colors += [colour(bgr, alpha)] * 2
        markers.append(lines)
    return markers


def markers_message(header, detections: Sequence[Detection], size: Tuple[int, int],
                    pixel_size: float = DEFAULT_PIXEL_SIZE) -> MarkerArray:
    """
    Return the markers of one frame's ``detections`` on an image of ``size`` (w, h).

    A DELETEALL first, then per detection its box, label and keypoints. The classes of the
    whole image (classification) get no box, their labels listed down from the top-left corner.
    """
    scale = MarkerScale(size, pixel_size)
    array = MarkerArray()
    array.markers.append(Marker(header=header, action=Marker.DELETEALL))
    listed = 0
    for i, det in enumerate(detections):
        if covers_image(det, *size):
            listed += 1
            x, y = 40.0 * scale.thickness, listed * 16.0 * scale.thickness
        else:
            array.markers.append(box_marker(header, i, det, scale))
            corners = det.corners()
            x = float(corners[:, 0].mean())
            y = float(corners[:, 1].min()) - 10.0 * scale.thickness
        array.markers.append(label_marker(header, i, det, scale, (x, y)))
        if det.keypoints:
            array.markers += keypoint_markers(header, i, det, scale)
    return array
