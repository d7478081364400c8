"""Drawing detections on an image, for saved results and the debug image topic."""

from typing import Sequence

import cv2
from hobot_npu_infer.core.detection import Detection
import numpy as np

_BOX = (0, 200, 0)
_POINTS = ((0, 0, 255), (0, 255, 255), (255, 0, 0), (255, 0, 255), (255, 255, 0))


def draw_detections(image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """Return a copy of the BGR ``image`` with boxes, labels and keypoints drawn."""
    canvas = image.copy()
    thickness = max(1, round(min(image.shape[:2]) / 300))
    for det in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), _BOX, thickness)
        cv2.putText(canvas, f'{det.class_name} {det.score:.2f}', (x1, max(12, y1 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, _BOX, thickness, cv2.LINE_AA)
        for i, (x, y) in enumerate(det.keypoints or ()):
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1,
                       _POINTS[i % len(_POINTS)], -1)
    return canvas
