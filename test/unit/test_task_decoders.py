"""
The task decoders (segment, pose, obb, end-to-end, classify, semantic) on synthetic outputs.

Each test writes known detections into one export layout and checks what comes out, then what
the source mapping makes of it: boxes, keypoints and angles through a letterbox, instance masks
cut to their box, semantic masks through the inverse letterbox.
"""

import math

import cv2
from hobot_npu_infer.core.decoders import create_decoder, decoder_names
from hobot_npu_infer.core.decoders import nms as nms_module
from hobot_npu_infer.core.decoders.base import top_scores, YOLO_PREPROCESS
from hobot_npu_infer.core.decoders.nms import nms, probiou, rotated_nms
from hobot_npu_infer.core.detection import RawDetections, TASKS, to_detections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
from hobot_npu_infer.core.imaging.geometry import fit, ImageTransform
from hobot_npu_infer.core.imaging.source_mapping import to_source
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest
from test_decoder_properties import tensors

INPUT = (64, 64)
NEW = ['yolov8_seg', 'yolov8_pose', 'yolov8_obb', 'yolo_end2end', 'yolo_end2end_seg',
       'yolo_end2end_pose', 'yolo_end2end_obb', 'yolo_cls', 'semantic']


def raw_head(rows, num_classes=3, extra=0, anchors=12):
    """
    Return ``[1, 4+C+extra, anchors]``: one anchor per row (cx, cy, w, h, class, score, extras).

    The other anchors score nothing.
    """
    out = np.zeros((1, 4 + num_classes + extra, anchors), np.float32)
    out[0, 2:4] = 1.0
    for a, (cx, cy, w, h, cls, score, extras) in enumerate(rows):
        out[0, :4, a] = [cx, cy, w, h]
        out[0, 4 + cls, a] = score
        out[0, 4 + num_classes:, a] = extras
    return out


def end2end(rows, extra=0, slots=8):
    """Return ``[1, slots, 6+extra]``: rows of x1 y1 x2 y2 (obb: cx cy w h) score class extras."""
    out = np.zeros((1, slots, 6 + extra), np.float32)
    for i, row in enumerate(rows):
        out[0, i] = row
    return out


def identity(size=INPUT) -> ImageTransform:
    return ImageTransform(size, 1.0, 1.0)


# --- registration, attributes, options ----------------------------------------------------------

def test_new_decoders_are_registered_with_their_task_and_preprocessing():
    assert set(NEW) <= set(decoder_names())
    tasks = {name: create_decoder(name).task for name in NEW}
    assert tasks == {'yolov8_seg': 'segment', 'yolov8_pose': 'pose', 'yolov8_obb': 'obb',
                     'yolo_end2end': 'detect', 'yolo_end2end_seg': 'segment',
                     'yolo_end2end_pose': 'pose', 'yolo_end2end_obb': 'obb',
                     'yolo_cls': 'classify', 'semantic': 'semantic'}
    for name in decoder_names():
        decoder = create_decoder(name)
        assert decoder.task in TASKS
        assert 0.0 <= decoder.default_score_threshold < 1.0
    for name in NEW[:7] + ['yolov8', 'yolov5', 'rdk_yolov8', 'rknn_yolov5', 'semantic']:
        assert dict(create_decoder(name).preprocess) == dict(YOLO_PREPROCESS)
    assert dict(YOLO_PREPROCESS) == {'resize': 'letterbox', 'pad_value': 114,
                                     'channel_order': 'rgb', 'scale': 1 / 255}
    assert dict(create_decoder('centerface').preprocess) == {
        'resize': 'stretch', 'size_multiple': 32, 'channel_order': 'rgb'}
    assert dict(create_decoder('ssd').preprocess) == {}


def test_default_thresholds_are_ultralytics_for_its_exports():
    for name in ['yolov8', 'yolov8_seg', 'yolo_end2end_pose', 'rknn_yolov8', 'yolov5']:
        assert create_decoder(name).default_score_threshold == 0.25
    assert create_decoder('yolov8').nms_threshold == 0.7
    assert create_decoder('yolov8_obb').nms_threshold == 0.7
    assert create_decoder('yolov5').nms_threshold == 0.45
    assert create_decoder('centerface').nms_threshold == 0.3
    assert create_decoder('centerface').default_score_threshold == 0.5
    assert create_decoder('ssd').default_score_threshold == 0.5
    assert create_decoder('yolo_cls').default_score_threshold == 0.0
    assert create_decoder('semantic').default_score_threshold == 0.0


@pytest.mark.parametrize('name', NEW)
def test_every_decoder_takes_the_shared_options(name):
    decoder = create_decoder(name, nms_threshold=0.5, max_detections=7, num_classes=4)
    assert (decoder.nms_threshold, decoder.max_detections) == (0.5, 7)


@pytest.mark.parametrize('name,options', [
    ('yolov8_pose', {'kpt_shape': [17]}), ('yolov8_pose', {'kpt_shape': [5, 4]}),
    ('yolo_end2end_pose', {'kpt_shape': [0, 3]}), ('yolo_end2end_pose', {'kpt_shape': 'x'}),
    ('yolo_cls', {'top_k': 0}), ('yolo_cls', {'top_k': 2.5}), ('semantic', {'num_classes': 0}),
    ('yolov8_seg', {'num_classes': True}), ('yolo_end2end', {'kpt_shape': [17, 3]}),
    ('yolov8_obb', {'nms_threshold': 0.0}), ('yolo_end2end_seg', {'max_detections': 0}),
])
def test_bad_options_raise_config_error(name, options):
    with pytest.raises(ConfigError):
        create_decoder(name, **options)


def test_bad_kpt_shape_error_says_what_it_must_be():
    with pytest.raises(ConfigError, match=r'kpt_shape must be \[K, D\]'):
        create_decoder('yolov8_pose', kpt_shape=[17, 4])


# --- NMS: strict like torchvision, rotated like Ultralytics -------------------------------------

def test_nms_keeps_a_box_whose_iou_equals_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20]], np.float32)  # IoU exactly 0.5
    rows = [(5, 5, 10, 10, 0, 0.9, []), (5, 10, 10, 20, 0, 0.8, [])]
    [raw] = create_decoder('yolov8', nms_threshold=0.5).decode([raw_head(rows)], INPUT, 0.25)
    np.testing.assert_allclose(raw.boxes, boxes)
    [raw] = create_decoder('yolov8', nms_threshold=0.49).decode([raw_head(rows)], INPUT, 0.25)
    assert raw.scores.tolist() == pytest.approx([0.9])
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]


def test_top_scores_keeps_the_best_in_input_order():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    assert top_scores(scores, 3).tolist() == [1, 2, 3]
    assert top_scores(scores, 10).tolist() == [0, 1, 2, 3, 4]


def test_probiou_of_identical_and_shifted_boxes_follows_the_formula():
    box = np.array([[50.0, 40.0, 20.0, 10.0, 0.3]])
    assert probiou(box, box)[0, 0] == pytest.approx(1 - math.sqrt(2e-7), abs=1e-9)
    # axis-aligned w x h boxes dx apart: distance 1.5 dx^2 / w^2 (Gaussians of w^2/12, h^2/12)
    a = np.array([[0.0, 0.0, 20.0, 10.0, 0.0]])
    b = np.array([[6.0, 0.0, 20.0, 10.0, 0.0]])
    expected = 1 - math.sqrt(1 - math.exp(-1.5 * 36 / 400) + 1e-7)
    assert probiou(a, b)[0, 0] == pytest.approx(expected, rel=1e-6)
    far = np.array([[5000.0, 0.0, 20.0, 10.0, 0.0]])
    assert probiou(a, far)[0, 0] < 1e-6


def test_probiou_sees_a_square_turned_a_quarter_as_itself():
    square = np.array([[30.0, 30.0, 16.0, 16.0, 0.0]])
    turned = np.array([[30.0, 30.0, 16.0, 16.0, math.pi / 2]])
    assert probiou(square, turned)[0, 0] == pytest.approx(probiou(square, square)[0, 0])
    thin = np.array([[30.0, 30.0, 40.0, 4.0, 0.0]])
    crossed = np.array([[30.0, 30.0, 40.0, 4.0, math.pi / 2]])
    assert probiou(thin, crossed)[0, 0] < 0.5


def test_rotated_nms_is_fast_nms_a_dropped_box_still_drops():
    # A overlaps B, B overlaps C, A and C barely: greedy NMS keeps C, Fast-NMS drops it too.
    boxes = np.array([[0, 0, 20, 10, 0], [4, 0, 20, 10, 0], [8, 0, 20, 10, 0]], np.float64)
    iou = probiou(boxes, boxes)
    assert iou[0, 1] > 0.7 and iou[1, 2] > 0.7 and iou[0, 2] < 0.7
    scores = np.array([0.9, 0.8, 0.7])
    assert rotated_nms(boxes, scores, np.zeros(3, np.int64), 0.7).tolist() == [0]
    xyxy = boxes[:, :4].copy()
    xyxy[:, 2:] += xyxy[:, :2]
    assert nms(xyxy, scores, 0.5).tolist() == [0, 2]  # greedy, for contrast


def test_rotated_nms_per_class_best_first_and_capped():
    boxes = np.array([[10, 10, 20, 10, 0.5]] * 3 + [[60, 60, 8, 8, 0.0]], np.float64)
    scores = np.array([0.6, 0.9, 0.8, 0.7])
    classes = np.array([0, 0, 1, 0])
    assert rotated_nms(boxes, scores, classes, 0.7).tolist() == [1, 2, 3]
    assert rotated_nms(boxes, scores, classes, 0.7, max_detections=2).tolist() == [1, 2]
    assert rotated_nms(boxes[:0], scores[:0], classes[:0], 0.7).tolist() == []


def test_rotated_nms_in_chunks_matches_one_matrix(monkeypatch):
    rng = np.random.default_rng(5)
    boxes = np.concatenate([rng.uniform(0, 100, (80, 2)), rng.uniform(5, 30, (80, 2)),
                            rng.uniform(0, math.pi, (80, 1))], axis=1)
    scores, classes = rng.random(80), rng.integers(0, 2, 80)
    whole = rotated_nms(boxes, scores, classes, 0.3)
    monkeypatch.setattr(nms_module, 'ROTATED_CHUNK', 7)
    assert rotated_nms(boxes, scores, classes, 0.3).tolist() == whole.tolist()


# --- raw heads: segment, pose, obb ---------------------------------------------------------------

def seg_outputs(coefficients=((1.0, 0.0), (0.0, 1.0))):
    rows = [(20, 20, 10, 10, 1, 0.9, coefficients[0]), (44, 44, 8, 12, 2, 0.6, coefficients[1])]
    protos = np.zeros((1, 2, 16, 16), np.float32)
    protos[0, 0] = 1.0   # positive everywhere
    protos[0, 1, :, :11] = 1.0  # positive left of about input x 44
    protos[0, 1, :, 11:] = -1.0
    return raw_head(rows, extra=2), protos


def test_segment_head_reads_coefficients_and_protos_in_either_order():
    pred, protos = seg_outputs()
    for outputs in ([pred, protos], [protos, pred]):
        [raw] = create_decoder('yolov8_seg').decode(outputs, INPUT, 0.25)
        np.testing.assert_allclose(raw.boxes, [[15, 15, 25, 25], [40, 38, 48, 50]])
        assert raw.class_ids.tolist() == [1, 2]
        np.testing.assert_array_equal(raw.mask_coefficients, [[1, 0], [0, 1]])
        assert raw.protos.shape == (2, 16, 16)


def test_segment_classes_come_from_channels_less_the_protos():
    pred, protos = seg_outputs()
    [raw] = create_decoder('yolov8_seg', num_classes=3).decode([pred, protos], INPUT, 0.25)
    assert raw.class_ids.tolist() == [1, 2]
    with pytest.raises(OutputLayoutError, match='no axis of 8 channels'):
        create_decoder('yolov8_seg', num_classes=2).decode([pred, protos], INPUT, 0.25)
    last = np.ascontiguousarray(pred.transpose(0, 2, 1))
    [raw] = create_decoder('yolov8_seg', num_classes=3).decode([last, protos], INPUT, 0.25)
    assert raw.class_ids.tolist() == [1, 2]


@pytest.mark.parametrize('name', ['yolov8_seg', 'yolo_end2end_seg'])
def test_segment_without_protos_names_the_shapes(name):
    pred, _ = seg_outputs()
    with pytest.raises(OutputLayoutError, match=r'rank 4.*\(1, 9, 12\), \(1, 9, 12\)'):
        create_decoder(name).decode([pred, pred], INPUT, 0.25)
    with pytest.raises(OutputLayoutError, match='needs 2 output'):
        create_decoder(name).decode([pred], INPUT, 0.25)


def test_pose_head_reads_keypoints_and_their_scores():
    kpts = [10, 11, 0.9, 12, 13, 0.2]
    rows = [(20, 20, 10, 10, 0, 0.8, kpts)]
    [raw] = create_decoder('yolov8_pose', kpt_shape=[2, 3]).decode(
        [raw_head(rows, num_classes=1, extra=6)], INPUT, 0.25)
    np.testing.assert_allclose(raw.keypoints, [[[10, 11], [12, 13]]])
    np.testing.assert_allclose(raw.keypoint_scores, [[0.9, 0.2]])
    [raw] = create_decoder('yolov8_pose', kpt_shape=[3, 2]).decode(
        [raw_head(rows, num_classes=1, extra=6)], INPUT, 0.25)
    np.testing.assert_allclose(raw.keypoints, [[[10, 11], [0.9, 12], [13, 0.2]]])
    assert raw.keypoint_scores is None


def test_pose_default_is_17_keypoints_of_3_values():
    out = raw_head([(20, 20, 10, 10, 0, 0.8, np.arange(51))], num_classes=1, extra=51)
    [raw] = create_decoder('yolov8_pose').decode([out], INPUT, 0.25)
    assert raw.keypoints.shape == (1, 17, 2) and raw.keypoint_scores.shape == (1, 17)
    with pytest.raises(OutputLayoutError, match=r'fewer than 56 channels'):
        create_decoder('yolov8_pose').decode([out[:, :20]], INPUT, 0.25)


def test_obb_head_reads_the_angle_and_suppresses_rotated_boxes():
    rows = [(30, 30, 20, 8, 0, 0.9, [0.5]), (30, 30, 20, 8, 0, 0.8, [0.52]),
            (30, 30, 20, 8, 0, 0.7, [0.5 + math.pi / 2]), (30, 30, 20, 8, 1, 0.6, [0.5])]
    [raw] = create_decoder('yolov8_obb').decode([raw_head(rows, num_classes=2, extra=1)],
                                                INPUT, 0.25)
    assert raw.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])  # the near twin goes
    np.testing.assert_allclose(raw.angles, [0.5, 0.5 + math.pi / 2, 0.5], rtol=1e-6)
    np.testing.assert_allclose(raw.boxes[0], [20, 26, 40, 34])


@pytest.mark.parametrize('field', ['keypoint', 'angle', 'coefficient'])
def test_non_finite_task_values_drop_the_detection(field):
    bad = float('nan')
    name, options, extra = {
        'keypoint': ('yolov8_pose', {'kpt_shape': [1, 3]}, ([1, 2, 0.5], [1, bad, 0.5])),
        'angle': ('yolov8_obb', {}, ([0.1], [bad])),
        'coefficient': ('yolov8_seg', {}, ([1.0, 0.0], [bad, 0.0])),
    }[field]
    decoder = create_decoder(name, **options)
    rows = [(20, 20, 10, 10, 0, 0.9, extra[0]), (50, 50, 10, 10, 0, 0.8, extra[1])]
    outputs = [raw_head(rows, extra=len(extra[0]))]
    if field == 'coefficient':
        outputs.append(np.ones((1, 2, 16, 16), np.float32))
    [raw] = decoder.decode(outputs, INPUT, 0.25)
    assert raw.scores.tolist() == pytest.approx([0.9])


# --- end-to-end ----------------------------------------------------------------------------------

def test_end2end_keeps_scores_above_threshold_in_model_order_without_nms():
    rows = [(10, 10, 20, 20, 0.3, 1), (10, 10, 20, 20, 0.9, 1), (30, 30, 40, 40, 0.25, 0),
            (11, 10, 20, 20, 0.5, 2)]
    [raw] = create_decoder('yolo_end2end').decode([end2end(rows)], INPUT, 0.25)
    assert raw.scores.tolist() == pytest.approx([0.3, 0.9, 0.5])  # 0.25 is not above 0.25
    assert raw.class_ids.tolist() == [1, 1, 2]
    np.testing.assert_allclose(raw.boxes[0], [10, 10, 20, 20])
    [raw] = create_decoder('yolo_end2end', max_detections=2).decode([end2end(rows)], INPUT,
                                                                    0.25)
    assert raw.scores.tolist() == pytest.approx([0.3, 0.9])


def test_end2end_task_variants():
    [raw] = create_decoder('yolo_end2end_obb').decode(
        [end2end([(30, 20, 10, 4, 0.8, 3, 0.25)], extra=1)], INPUT, 0.25)
    np.testing.assert_allclose(raw.boxes, [[25, 18, 35, 22]])
    np.testing.assert_allclose(raw.angles, [0.25])
    [raw] = create_decoder('yolo_end2end_pose', kpt_shape=[2, 3]).decode(
        [end2end([(1, 2, 3, 4, 0.8, 0, 5, 6, 0.7, 8, 9, 0.1)], extra=6)], INPUT, 0.25)
    np.testing.assert_allclose(raw.keypoints, [[[5, 6], [8, 9]]])
    np.testing.assert_allclose(raw.keypoint_scores, [[0.7, 0.1]])
    protos = np.ones((1, 3, 16, 16), np.float32)
    [raw] = create_decoder('yolo_end2end_seg').decode(
        [protos, end2end([(1, 2, 3, 4, 0.8, 0, 0.1, 0.2, 0.3)], extra=3)], INPUT, 0.25)
    np.testing.assert_allclose(raw.mask_coefficients, [[0.1, 0.2, 0.3]])


@pytest.mark.parametrize('name,width,message', [
    ('yolo_end2end', 7, r'\(1, 8, 7\) must be \[B, N, 6\]: x1 y1 x2 y2 score class'),
    ('yolo_end2end_obb', 6, r'must be \[B, N, 7\]: cx cy w h score class \+ angle'),
    ('yolo_end2end_pose', 6, r'\[B, N, 57\]: .* \+ 17\*3 keypoint values'),
])
def test_end2end_wrong_width_names_the_layout(name, width, message):
    with pytest.raises(OutputLayoutError, match=message):
        create_decoder(name).decode([np.zeros((1, 8, width), np.float32)], INPUT, 0.25)


def test_end2end_class_ids_beyond_num_classes_raise():
    out = end2end([(1, 2, 3, 4, 0.8, 5)])
    with pytest.raises(OutputLayoutError, match=r'class ids 5\.\.5, num_classes is 3'):
        create_decoder('yolo_end2end', num_classes=3).decode([out], INPUT, 0.25)
    [raw] = create_decoder('yolo_end2end', num_classes=6).decode([out], INPUT, 0.25)
    assert raw.class_ids.tolist() == [5]


# --- classify ------------------------------------------------------------------------------------

def test_classify_top_k_classes_cover_the_whole_input():
    probs = np.array([[0.05, 0.5, 0.1, 0.3, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2]], np.float32)
    first, second = create_decoder('yolo_cls', top_k=3).decode([probs], (224, 160), 0.0)
    assert first.class_ids.tolist() == [1, 3, 2]
    assert first.scores.tolist() == pytest.approx([0.5, 0.3, 0.1])
    np.testing.assert_array_equal(first.boxes, [[0, 0, 224, 160]] * 3)
    assert second.class_ids.tolist() == [0, 1, 2]  # ties: the lower class first
    [raw, _] = create_decoder('yolo_cls').decode([probs], (224, 160), 0.2)
    assert raw.class_ids.tolist() == [1, 3]
    mapped = to_source(first, fit((640, 480), (224, 160), 'stretch'), (224, 160))
    np.testing.assert_allclose(mapped.boxes, [[0, 0, 640, 480]] * 3, atol=1e-3)


def test_classify_layout_errors_name_the_shape():
    with pytest.raises(OutputLayoutError, match=r'\[B, C\].*\(1, 5, 1, 1\)'):
        create_decoder('yolo_cls').decode([np.zeros((1, 5, 1, 1))], INPUT, 0.0)
    with pytest.raises(OutputLayoutError, match='has 5 classes, num_classes is 4'):
        create_decoder('yolo_cls', num_classes=4).decode([np.zeros((1, 5))], INPUT, 0.0)


# --- semantic ------------------------------------------------------------------------------------

def class_id_map():
    ids = np.zeros((1, 8, 8), np.int64)
    ids[0, 2:4, 1:5] = 3
    ids[0, 6:, 6:] = 255  # an ignore label
    return ids


def test_semantic_class_ids_give_one_detection_per_class_with_its_bounds():
    [raw] = create_decoder('semantic', num_classes=4).decode([class_id_map()], INPUT, 0.0)
    assert raw.class_ids.tolist() == [0, 3]
    assert raw.scores.tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(raw.boxes, [[0, 0, 64, 64], [8, 16, 40, 32]])
    assert raw.class_map.shape == (8, 8) and raw.class_map[7, 7] == -1
    [raw] = create_decoder('semantic', num_classes=4).decode(
        [class_id_map().astype(np.uint8)], INPUT, 0.0)
    assert raw.class_ids.tolist() == [0, 3] and raw.class_map[7, 7] == -1
    floats = class_id_map().astype(np.float32)
    floats[0, 0, 0] = np.nan
    [raw] = create_decoder('semantic').decode([floats], INPUT, 0.0)
    assert raw.class_ids.tolist() == [0, 3, 255] and raw.class_map[0, 0] == -1
    with pytest.raises(OutputLayoutError, match='holds class id 300'):
        create_decoder('semantic').decode([np.full((1, 4, 4), 300000.0)], INPUT, 0.0)


def test_semantic_logits_score_the_mean_probability_of_each_class():
    logits = np.zeros((1, 3, 4, 4), np.float32)
    logits[0, 0] = 2.0
    logits[0, 2, :2, :2] = 5.0
    [raw] = create_decoder('semantic').decode([logits], (16, 16), 0.0)
    assert raw.class_ids.tolist() == [2, 0]
    p2 = math.exp(5) / (math.exp(5) + math.exp(2) + 1)
    p0 = math.exp(2) / (math.exp(2) + 2)
    np.testing.assert_allclose(raw.scores, [p2, p0], rtol=1e-5)
    np.testing.assert_array_equal(raw.boxes, [[0, 0, 8, 8], [0, 0, 16, 16]])
    [raw] = create_decoder('semantic').decode([logits], (16, 16), 0.9)
    assert raw.class_ids.tolist() == [2]


def test_semantic_one_logit_channel_is_background_and_foreground():
    logits = np.full((1, 1, 4, 4), -1.0, np.float32)
    logits[0, 0, 1:3, 1:3] = 3.0
    [raw] = create_decoder('semantic', num_classes=2).decode([logits], (4, 4), 0.0)
    assert sorted(raw.class_ids.tolist()) == [0, 1]
    scores = dict(zip(raw.class_ids.tolist(), raw.scores.tolist()))
    assert scores[1] == pytest.approx(1 / (1 + math.exp(-3)))
    assert scores[0] == pytest.approx(1 / (1 + math.exp(-1)))


def test_semantic_layout_errors_name_the_shape():
    with pytest.raises(OutputLayoutError, match=r'\[B, H, W\].*\(1, 4\)'):
        create_decoder('semantic').decode([np.zeros((1, 4))], INPUT, 0.0)
    with pytest.raises(OutputLayoutError, match='3 class channel'):
        create_decoder('semantic', num_classes=5).decode([np.zeros((1, 3, 4, 4))], INPUT, 0.0)


def test_semantic_masks_go_through_the_letterbox_by_nearest_neighbour():
    source = (100, 50)  # letterboxed into 64x64: 64x32 content, 16 rows of pad above
    transform = fit(source, INPUT, 'letterbox')
    ids = np.full((1, 64, 64), 7)
    ids[0, 16:48] = 0
    ids[0, 16:32, 32:64] = 3  # the top right quarter of the content
    [raw] = create_decoder('semantic').decode([ids], INPUT, 0.0)
    assert raw.class_ids.tolist() == [0, 3, 7]
    mapped = to_source(raw, transform, INPUT)
    assert mapped.class_ids.tolist() == [0, 3]  # class 7 is only in the pad band
    assert mapped.class_map.shape == (50, 100)
    quarter = mapped.masks[1]
    assert (quarter.x, quarter.y, quarter.bitmap.shape) == (50, 0, (25, 50))
    assert quarter.bitmap.all()
    np.testing.assert_array_equal(mapped.boxes, [[0, 0, 100, 50], [50, 0, 100, 25]])
    assert mapped.masks[0].area == 100 * 50 - 50 * 25
    [detection, _] = to_detections(mapped, ['ground', 'a', 'b', 'car'])
    assert detection.mask.area == 3750


# --- source mapping: instance masks, keypoints, rotated boxes -----------------------------------

def test_instance_mask_is_cut_to_the_pixels_inside_the_box():
    raw = RawDetections(np.array([[10.2, 20.0, 30.0, 40.5]], np.float32),
                        np.array([0.9], np.float32), np.zeros(1, np.int64),
                        mask_coefficients=np.ones((1, 1), np.float32),
                        protos=np.ones((1, 16, 16), np.float32))
    [mask] = to_source(raw, identity(), INPUT).masks
    canvas = np.zeros((64, 64), bool)
    mask.paste(canvas, True)
    rows, cols = np.nonzero(canvas)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (11, 29, 20, 40)
    assert mask.area == 19 * 21


def test_instance_masks_through_a_letterbox_stay_in_their_box():
    pred, protos = seg_outputs()
    [raw] = create_decoder('yolov8_seg').decode([pred, protos], INPUT, 0.25)
    transform = fit((128, 64), INPUT, 'letterbox')  # scale 0.5, 16 rows of pad above
    mapped = to_source(raw, transform, INPUT)
    np.testing.assert_allclose(mapped.boxes, [[30, 0, 50, 18], [80, 44, 96, 64]])
    first, second = mapped.masks
    canvas = np.zeros((64, 128), bool)
    first.paste(canvas, True)
    assert canvas[0:18, 30:50].all() and canvas.sum() == 18 * 20
    canvas[:] = False
    second.paste(canvas, True)
    rows, cols = np.nonzero(canvas)  # the protos cut it at about input x 44, source x 88
    assert rows.min() >= 44 and cols.min() >= 80 and 86 <= cols.max() <= 89
    assert (first.x, first.y) == (29, 0)  # one pixel around the box may be sampled


def test_detections_with_empty_masks_are_dropped_and_fields_follow():
    pred, protos = seg_outputs(coefficients=((-1.0, 0.0), (1.0, 0.0)))
    [raw] = create_decoder('yolov8_seg').decode([pred, protos], INPUT, 0.25)
    assert len(raw.scores) == 2
    mapped = to_source(raw, identity(), INPUT)
    assert mapped.scores.tolist() == pytest.approx([0.6])
    assert len(mapped.masks) == 1 and mapped.protos is None
    assert mapped.mask_coefficients.tolist() == [[1.0, 0.0]]


def test_a_mask_wholly_in_the_pad_band_is_kept_empty():
    raw = RawDetections(np.array([[10, 2, 30, 12]], np.float32), np.array([0.9], np.float32),
                        np.zeros(1, np.int64), mask_coefficients=np.ones((1, 1), np.float32),
                        protos=np.ones((1, 16, 16), np.float32))
    mapped = to_source(raw, fit((128, 64), INPUT, 'letterbox'), INPUT)
    assert mapped.masks[0].area == 0 and mapped.masks[0].polygons() == []


def test_keypoints_map_back_and_clip_only_for_pose():
    raw = RawDetections(np.array([[16, 16, 48, 40]], np.float32), np.array([0.9], np.float32),
                        np.zeros(1, np.int64),
                        keypoints=np.array([[[32, 24], [70, 8]]], np.float32),
                        keypoint_scores=np.array([[0.9, 0.8]], np.float32))
    transform = fit((128, 64), INPUT, 'letterbox')
    mapped = to_source(raw, transform, INPUT)
    np.testing.assert_allclose(mapped.keypoints, [[[64, 16], [140, -16]]])
    clipped = to_source(raw, transform, INPUT, 'pose')
    np.testing.assert_allclose(clipped.keypoints, [[[64, 16], [128, 0]]])
    np.testing.assert_allclose(clipped.keypoint_scores, [[0.9, 0.8]])


def test_a_classification_is_of_the_whole_image_whatever_the_crop():
    raw = RawDetections(np.array([[0, 0, 224, 224]], np.float32), np.array([0.9], np.float32),
                        np.zeros(1, np.int64))
    transform = fit((810, 1080), (224, 224), 'crop')
    assert transform.pad_y < 0 and transform.pad_x == 0  # the top and bottom were cut off
    mapped = to_source(raw, transform, (224, 224), 'classify')
    np.testing.assert_array_equal(mapped.boxes, [[0, 0, 810, 1080]])


def test_rotated_boxes_keep_their_angle_through_a_letterbox_unclipped():
    raw = RawDetections(np.array([[-4, 20, 24, 28]], np.float32), np.array([0.9], np.float32),
                        np.zeros(1, np.int64), angles=np.array([0.4], np.float32))
    mapped = to_source(raw, fit((128, 64), INPUT, 'letterbox'), INPUT)
    np.testing.assert_allclose(mapped.boxes, [[-8, 8, 48, 24]])
    np.testing.assert_allclose(mapped.angles, [0.4])


def test_rotated_boxes_through_a_stretch_are_refitted_around_the_corners():
    transform = fit((128, 32), INPUT, 'stretch')  # x halves, y doubles
    raw = RawDetections(np.array([[20, 28, 44, 36]], np.float32), np.array([0.9], np.float32),
                        np.zeros(1, np.int64), angles=np.array([0.0], np.float32))
    [upright] = to_detections(to_source(raw, transform, INPUT), ['x'])
    np.testing.assert_allclose(sorted(map(tuple, np.round(upright.corners(), 3))),
                               [(40, 14), (40, 18), (88, 14), (88, 18)], atol=1e-3)
    turned = raw._replace(angles=np.array([0.6], np.float32))
    [detection] = to_detections(turned, ['x'])
    corners = transform.points_to_source(detection.corners())
    [mapped] = to_detections(to_source(turned, transform, INPUT), ['x'])
    # the refitted rectangle holds every mapped corner
    fitted = mapped.corners().astype(np.float32)
    for x, y in corners:
        assert cv2.pointPolygonTest(fitted.reshape(-1, 1, 2), (float(x), float(y)), True) > -1e-2


# --- garbage ------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NEW), outputs=st.lists(tensors(), min_size=0, max_size=3),
       threshold=st.sampled_from([0.0, 0.25, 0.99]),
       options=st.sampled_from([{}, {'kpt_shape': [1, 3]}, {'kpt_shape': [2, 2]}]))
def test_garbage_outputs_give_detections_or_an_output_layout_error(
        name, outputs, threshold, options):
    if not name.endswith('pose'):
        options = {}
    try:
        results = create_decoder(name, **options).decode(outputs, (64, 48), threshold)
        for raw in results:
            mapped = to_source(raw, fit((80, 40), (64, 48), 'letterbox'), (64, 48))
            assert len(mapped.boxes) == len(mapped.scores) == len(mapped.class_ids)
    except OutputLayoutError as exc:
        assert '\n' not in str(exc)
