"""Greedy NMS and per-class (batched) NMS on hand-made boxes."""

from hobot_npu_infer.core.decoders.nms import batched_nms, nms
import numpy as np
import pytest


def boxes_of(*rows):
    return np.array(rows, np.float32).reshape(-1, 4)


def scores_of(*values):
    return np.array(values, np.float32)


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


# --- nms ---------------------------------------------------------------------------------------

def test_keeps_best_of_overlapping_pair():
    boxes = boxes_of([0, 0, 10, 10], [1, 1, 11, 11])
    keep = nms(boxes, scores_of(0.6, 0.9), 0.5)
    assert keep.tolist() == [1]
    assert keep.dtype == np.int64


def test_keeps_disjoint_boxes_best_first():
    boxes = boxes_of([0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10])
    keep = nms(boxes, scores_of(0.3, 0.9, 0.6), 0.5)
    assert keep.tolist() == [1, 2, 0]


def test_cluster_suppression_is_greedy():
    # A overlaps B strongly, B overlaps C strongly, A and C barely: A wins, B goes, C stays.
    boxes = boxes_of([0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10])
    assert iou(boxes[0], boxes[1]) > 0.5 and iou(boxes[1], boxes[2]) > 0.5
    assert iou(boxes[0], boxes[2]) < 0.5
    keep = nms(boxes, scores_of(0.9, 0.8, 0.7), 0.5)
    assert keep.tolist() == [0, 2]


def test_iou_threshold_boundary_keeps_at_equal_and_drops_above():
    # Two 10x10 boxes offset so intersection = 50, union = 150: IoU exactly 1/3 (0.5 is exact too)
    a, b = [0, 0, 10, 10], [5, 0, 15, 10]
    boxes = boxes_of(a, b)
    assert iou(a, b) == pytest.approx(1 / 3)
    scores = scores_of(0.9, 0.8)
    # IoU == threshold: kept (only "> threshold" suppresses, as torchvision and Ultralytics)
    half = boxes_of([0, 0, 10, 10], [0, 0, 10, 20])  # inter 100, union 200: IoU exactly 0.5
    assert nms(half, scores, 0.5).tolist() == [0, 1]
    assert nms(half, scores, np.nextafter(0.5, 0.0)).tolist() == [0]
    # just above / below the 1/3 IoU
    assert nms(boxes, scores, 0.34).tolist() == [0, 1]
    assert nms(boxes, scores, 0.33).tolist() == [0]


def test_threshold_one_suppresses_nothing():
    # no IoU exceeds 1, not even of identical boxes
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10.5])
    keep = nms(boxes, scores_of(0.9, 0.8, 0.7), 1.0)
    assert keep.tolist() == [0, 1, 2]


def test_empty_input():
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert keep.shape == (0,)
    assert keep.dtype == np.int64


def test_single_box():
    assert nms(boxes_of([1, 2, 3, 4]), scores_of(0.1), 0.5).tolist() == [0]


def test_max_detections_caps_and_keeps_the_best():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], np.float32)
    scores = np.linspace(0.1, 1.0, 10).astype(np.float32)
    keep = nms(boxes, scores, 0.5, max_detections=3)
    assert keep.tolist() == [9, 8, 7]
    assert nms(boxes, scores, 0.5, max_detections=0).tolist() == list(range(9, -1, -1))
    assert len(nms(boxes, scores, 0.5, max_detections=100)) == 10


def test_max_detections_counts_kept_boxes_not_candidates():
    # the second-best box is suppressed, so the cap of 2 is filled by the third
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60])
    keep = nms(boxes, scores_of(0.9, 0.8, 0.7), 0.5, max_detections=2)
    assert keep.tolist() == [0, 2]


def test_equal_scores_keep_input_order():
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 10], [30, 30, 40, 40])
    keep = nms(boxes, scores_of(0.5, 0.5, 0.5), 0.5)
    assert keep.tolist() == [0, 2]


def test_zero_area_boxes_do_not_crash_or_suppress():
    boxes = boxes_of([5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 0, 10], [0, 0, 10, 10])
    keep = nms(boxes, scores_of(0.9, 0.8, 0.7, 0.6), 0.5)
    # zero-area boxes have IoU 0 with everything (union may be 0): nothing is suppressed
    assert sorted(keep.tolist()) == [0, 1, 2, 3]


def test_inverted_boxes_do_not_crash():
    boxes = boxes_of([10, 10, 0, 0], [0, 0, 10, 10])
    keep = nms(boxes, scores_of(0.9, 0.8), 0.5)
    assert keep.tolist() == [0, 1]


def test_does_not_modify_inputs():
    boxes = boxes_of([0, 0, 10, 10], [1, 1, 11, 11])
    scores = scores_of(0.6, 0.9)
    before = boxes.copy(), scores.copy()
    nms(boxes, scores, 0.5)
    np.testing.assert_array_equal(boxes, before[0])
    np.testing.assert_array_equal(scores, before[1])


def test_matches_brute_force_reference():
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 100, (60, 2))
    wh = rng.uniform(1, 40, (60, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.permutation(60).astype(np.float32) / 60
    keep = nms(boxes, scores, 0.4)
    expected = []
    for i in np.argsort(-scores):
        if all(iou(boxes[i].astype(float), boxes[j].astype(float)) <= 0.4 for j in expected):
            expected.append(int(i))
    assert keep.tolist() == expected


# --- batched_nms -------------------------------------------------------------------------------

def test_batched_same_class_suppresses():
    boxes = boxes_of([0, 0, 10, 10], [1, 1, 11, 11])
    keep = batched_nms(boxes, scores_of(0.7, 0.9), np.array([3, 3]), 0.5)
    assert keep.tolist() == [1]


def test_batched_different_classes_both_kept():
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 10])
    keep = batched_nms(boxes, scores_of(0.7, 0.9), np.array([0, 1]), 0.5)
    assert keep.tolist() == [1, 0]


def test_batched_per_class_mixture():
    boxes = boxes_of([0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [1, 1, 11, 11],
                     [100, 100, 110, 110])
    classes = np.array([0, 0, 1, 1, 0])
    keep = batched_nms(boxes, scores_of(0.9, 0.8, 0.5, 0.95, 0.1), classes, 0.5)
    assert keep.tolist() == [3, 0, 4]


def test_batched_large_coordinates_and_many_classes_never_cross_suppress():
    rng = np.random.default_rng(3)
    boxes = np.tile(np.array([[-500.0, -500.0, 5000.0, 5000.0]], np.float32), (50, 1))
    boxes += rng.uniform(-1, 1, boxes.shape).astype(np.float32)
    classes = np.arange(50)
    keep = batched_nms(boxes, rng.uniform(0, 1, 50).astype(np.float32), classes, 0.5)
    assert sorted(keep.tolist()) == list(range(50))


def test_batched_empty_input():
    keep = batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                       np.zeros(0, np.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64


def test_batched_max_detections():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(6)], np.float32)
    scores = scores_of(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    keep = batched_nms(boxes, scores, np.array([0, 1, 2, 0, 1, 2]), 0.5, max_detections=2)
    assert keep.tolist() == [5, 4]


def test_batched_zero_area_boxes():
    boxes = boxes_of([3, 3, 3, 3], [3, 3, 3, 3])
    keep = batched_nms(boxes, scores_of(0.5, 0.4), np.array([0, 0]), 0.5)
    assert sorted(keep.tolist()) == [0, 1]
