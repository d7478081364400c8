"""
Non-maximum suppression, vectorised, as Ultralytics runs it.

Axis-aligned boxes: greedy, one numpy pass per kept box, as ``torchvision.ops.nms``. Rotated boxes:
Fast-NMS over the probabilistic IoU, as Ultralytics' ``TorchNMS.fast_nms`` with ``batch_probiou``.
Both drop a box when its IoU with a better one is above the threshold (strictly).
"""

import numpy as np

ROTATED_CHUNK = 1024  # rows of the rotated IoU matrix computed at once: memory stays O(rows * n)
PROBIOU_EPS = 1e-7


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_detections: int = 0) -> np.ndarray:
    """Return the indices of the boxes kept, best score first; drop a box when IoU > threshold."""
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
        order = rest[~(iou > iou_threshold)]  # NaN IoU suppresses nothing, as in torchvision
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                iou_threshold: float, max_detections: int = 0) -> np.ndarray:
    """Per-class NMS in one pass: boxes of different classes are shifted apart so never overlap."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    span = float(np.max(boxes)) - float(np.min(boxes)) + 1.0
    shifted = boxes + (class_ids.astype(np.float64) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_detections)


def _covariance(xywhr: np.ndarray):
    """Return the (a, b, c) of each rotated box's Gaussian, covariance [[a, c], [c, b]]."""
    a = xywhr[:, 2] ** 2 / 12
    b = xywhr[:, 3] ** 2 / 12
    cos, sin = np.cos(xywhr[:, 4]), np.sin(xywhr[:, 4])
    return a * cos ** 2 + b * sin ** 2, a * sin ** 2 + b * cos ** 2, (a - b) * cos * sin


def probiou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """
    Return the (N, M) probabilistic IoU of rotated boxes cx cy w h r (Ultralytics' batch_probiou).

    One minus the Hellinger distance between the boxes' Gaussians (arXiv 2106.06072).
    """
    eps = PROBIOU_EPS
    x1, y1 = first[:, 0:1], first[:, 1:2]
    x2, y2 = second[None, :, 0], second[None, :, 1]
    a1, b1, c1 = (v[:, None] for v in _covariance(first))
    a2, b2, c2 = (v[None, :] for v in _covariance(second))
    a, b, c = a1 + a2, b1 + b2, c1 + c2
    det = a * b - c ** 2
    t1 = (a * (y1 - y2) ** 2 + b * (x1 - x2) ** 2) / (det + eps) * 0.25
    t2 = (c * (x2 - x1) * (y1 - y2)) / (det + eps) * 0.5
    own = np.sqrt(np.maximum(a1 * b1 - c1 ** 2, 0) * np.maximum(a2 * b2 - c2 ** 2, 0))
    t3 = np.log(det / (4 * own + eps) + eps) * 0.5
    distance = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1 - np.sqrt(1.0 - np.exp(-distance) + eps)


def rotated_nms(xywhr: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                iou_threshold: float, max_detections: int = 0) -> np.ndarray:
    """
    Return the indices kept by per-class Fast-NMS on rotated boxes, best score first.

    Fast-NMS drops a box when any better box of its class overlaps it above the threshold, even
    one dropped itself: Ultralytics' rule for OBB, which differs from greedy NMS.
    """
    boxes = xywhr.astype(np.float64)
    dropped = np.zeros(len(scores), bool)
    for cls in np.unique(class_ids):
        members = np.flatnonzero(class_ids == cls)
        members = members[np.argsort(-scores[members], kind='stable')]
        group = boxes[members]
        for start in range(0, len(members), ROTATED_CHUNK):
            iou = probiou(group[start:start + ROTATED_CHUNK], group)
            rows = np.arange(start, start + len(iou))[:, None]
            later = np.arange(len(members))[None, :] > rows  # only better boxes suppress
            dropped[members] |= ((iou > iou_threshold) & later).any(axis=0)
    kept = np.flatnonzero(~dropped)
    kept = kept[np.argsort(-scores[kept], kind='stable')]
    return (kept[:max_detections] if max_detections else kept).astype(np.int64)
