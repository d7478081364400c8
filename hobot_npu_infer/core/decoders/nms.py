"""Greedy non-maximum suppression, vectorised: one numpy pass per kept box."""

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_detections: int = 0) -> np.ndarray:
    """Return the indices of the boxes kept, best score first; drop a box when IoU >= threshold."""
    order = np.argsort(-scores, kind='stable')
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if max_detections and len(keep) >= max_detections:
            break
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou < iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                iou_threshold: float, max_detections: int = 0) -> np.ndarray:
    """Per-class NMS in one pass: boxes of different classes are shifted apart so never overlap."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    span = float(np.max(boxes)) - float(np.min(boxes)) + 1.0
    shifted = boxes + (class_ids.astype(np.float64) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_detections)
