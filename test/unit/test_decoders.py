"""
Decoders on synthetic outputs of each layout, and boxes mapped back through the pipeline.

Every decoder gets the same behavioural checks through a small adapter that writes known
detections (model-input pixels x1 y1 x2 y2, class, score) into that decoder's output layout;
layout-specific details (objectness, normalised yxyx, CenterFace landmarks) have their own tests.
"""

import math
from typing import List, NamedTuple, Sequence, Tuple

from hobot_npu_infer.core.backends.base import Model
from hobot_npu_infer.core.backends.tensors import BatchCapability, TensorSpec
from hobot_npu_infer.core.decoders import create_decoder, decoder_names
from hobot_npu_infer.core.decoders.base import cxcywh_to_xyxy, Decoder
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, ImageResult
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
import numpy as np
import pytest

INPUT = (320, 320)  # (W, H) of the model input in the shared tests
NUM_CLASSES = 3
ALL = ['centerface', 'yolov8', 'yolov5', 'ssd']
MULTI_CLASS = ['yolov8', 'yolov5', 'ssd']


class Det(NamedTuple):
    box: Tuple[float, float, float, float]  # x1 y1 x2 y2 in model-input pixels
    cls: int = 0
    score: float = 0.9


# --- writing detections into each layout -------------------------------------------------------

def yolov8_outputs(images: Sequence[Sequence[Det]], anchors: int = 32, seed: int = 0,
                   input_size=INPUT) -> List[np.ndarray]:
    """[B, 4+C, N]: cx cy w h then C class scores; unused anchors get random low scores."""
    rng = np.random.default_rng(seed)
    w, h = input_size
    out = np.zeros((len(images), 4 + NUM_CLASSES, anchors), np.float32)
    out[:, 0] = rng.uniform(0, w, (len(images), anchors))
    out[:, 1] = rng.uniform(0, h, (len(images), anchors))
    out[:, 2:4] = rng.uniform(5, 50, (len(images), 2, anchors))
    out[:, 4:] = rng.uniform(0, 0.1, (len(images), NUM_CLASSES, anchors))
    for b, dets in enumerate(images):
        for a, (box, cls, score) in enumerate(dets):
            a = 2 * a + 1  # spread them out between the distractors
            x1, y1, x2, y2 = box
            out[b, :4, a] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
            out[b, 4:, a] = 0.05
            out[b, 4 + cls, a] = score
    return [out]


def yolov5_outputs(images: Sequence[Sequence[Det]], anchors: int = 32, seed: int = 0,
                   input_size=INPUT) -> List[np.ndarray]:
    """[B, N, 5+C]: cx cy w h, objectness, C class probabilities; score = obj * class prob."""
    rng = np.random.default_rng(seed)
    w, h = input_size
    out = np.zeros((len(images), anchors, 5 + NUM_CLASSES), np.float32)
    out[:, :, 0] = rng.uniform(0, w, (len(images), anchors))
    out[:, :, 1] = rng.uniform(0, h, (len(images), anchors))
    out[:, :, 2:4] = rng.uniform(5, 50, (len(images), anchors, 2))
    out[:, :, 4] = rng.uniform(0, 0.1, (len(images), anchors))
    out[:, :, 5:] = rng.uniform(0, 1, (len(images), anchors, NUM_CLASSES))
    for b, dets in enumerate(images):
        for a, (box, cls, score) in enumerate(dets):
            a = 2 * a + 1
            x1, y1, x2, y2 = box
            out[b, a, :4] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
            out[b, a, 4] = 1.0  # objectness 1 makes the final score exactly the class prob
            out[b, a, 5:] = 0.01
            out[b, a, 5 + cls] = score
    return [out]


def ssd_outputs(images: Sequence[Sequence[Det]], slots: int = 10, input_size=INPUT,
                num_detections: bool = False, seed: int = 0) -> List[np.ndarray]:
    """
    Make SSD outputs.

    boxes [B,N,4] normalised y1 x1 y2 x2, classes [B,N], scores [B,N] (+ num_detections [B]).
    """
    rng = np.random.default_rng(seed)
    w, h = input_size
    boxes = rng.uniform(0, 1, (len(images), slots, 4)).astype(np.float32)
    boxes[..., 2:] = np.maximum(boxes[..., 2:], boxes[..., :2])
    classes = rng.integers(0, NUM_CLASSES, (len(images), slots)).astype(np.float32)
    scores = rng.uniform(0, 0.1, (len(images), slots)).astype(np.float32)
    counts = np.zeros(len(images), np.float32)
    for b, dets in enumerate(images):
        order = sorted(range(len(dets)), key=lambda i: -dets[i].score)  # TF sorts by score
        for slot, i in enumerate(order):
            (x1, y1, x2, y2), cls, score = dets[i]
            boxes[b, slot] = [y1 / h, x1 / w, y2 / h, x2 / w]
            classes[b, slot] = cls
            scores[b, slot] = score
        counts[b] = len(dets)
    outputs = [boxes, classes, scores]
    return outputs + [counts] if num_detections else outputs


def centerface_outputs(images: Sequence[Sequence[Det]], input_size=INPUT,
                       landmarks: Sequence[Sequence[Sequence[Tuple[float, float]]]] = ()
                       ) -> List[np.ndarray]:
    """
    Make CenterFace outputs.

    heatmap [B,1,h,w], scale [B,2,h,w], offset [B,2,h,w], landmarks [B,10,h,w] at stride 4.

    Inverts the decoder's formulas: box h = exp(scale0) * 4, w = exp(scale1) * 4, centre
    x = (col + offset1 + 0.5) * 4, y = (row + offset0 + 0.5) * 4, landmark x = lm[2j+1] * w + x1,
    y = lm[2j] * h + y1.
    """
    w_in, h_in = input_size
    gh, gw = h_in // 4, w_in // 4
    b_n = len(images)
    heat = np.zeros((b_n, 1, gh, gw), np.float32)
    scale = np.zeros((b_n, 2, gh, gw), np.float32)
    offset = np.zeros((b_n, 2, gh, gw), np.float32)
    lms = np.zeros((b_n, 10, gh, gw), np.float32)
    for b, dets in enumerate(images):
        for i, ((x1, y1, x2, y2), _, score) in enumerate(dets):
            bw, bh = x2 - x1, y2 - y1
            fx, fy = (x1 + x2) / 2 / 4 - 0.5, (y1 + y2) / 2 / 4 - 0.5
            col, row = math.floor(fx), math.floor(fy)
            assert heat[b, 0, row, col] == 0, 'two test faces share a heatmap cell'
            heat[b, 0, row, col] = score
            scale[b, :, row, col] = [math.log(bh / 4), math.log(bw / 4)]
            offset[b, :, row, col] = [fy - row, fx - col]
            if landmarks:
                for j, (lx, ly) in enumerate(landmarks[b][i]):
                    lms[b, 2 * j, row, col] = (ly - y1) / bh
                    lms[b, 2 * j + 1, row, col] = (lx - x1) / bw
    return [heat, scale, offset, lms]


BUILDERS = {'yolov8': yolov8_outputs, 'yolov5': yolov5_outputs, 'ssd': ssd_outputs,
            'centerface': centerface_outputs}


def outputs_for(name: str, images: Sequence[Sequence[Det]]) -> List[np.ndarray]:
    return BUILDERS[name](images)


def decoder(name: str, **options) -> Decoder:
    return create_decoder(name, **options)


def sorted_by_score(dets: Sequence[Det]) -> List[Det]:
    return sorted(dets, key=lambda d: -d.score)


def assert_detections(raw: RawDetections, expected: Sequence[Det], name: str, atol=1e-3):
    """``raw`` holds exactly ``expected``, best score first (CenterFace has one class: 0)."""
    expected = sorted_by_score(expected)
    assert raw.boxes.shape == (len(expected), 4)
    assert raw.boxes.dtype == np.float32 and raw.scores.dtype == np.float32
    assert raw.class_ids.dtype == np.int64
    if expected:
        np.testing.assert_allclose(raw.boxes, [d.box for d in expected], atol=atol)
        np.testing.assert_allclose(raw.scores, [d.score for d in expected], rtol=1e-6)
        classes = [0 if name == 'centerface' else d.cls for d in expected]
        assert raw.class_ids.tolist() == classes
    if name == 'centerface':
        assert raw.keypoints is not None and raw.keypoints.shape == (len(expected), 5, 2)
    else:
        assert raw.keypoints is None


def assert_empty(raw: RawDetections, name: str):
    assert_detections(raw, [], name)


A = Det((40, 40, 120, 100), 1, 0.9)
B = Det((200, 160, 280, 300), 2, 0.75)
C = Det((20, 220, 60, 260), 0, 0.6)


def assert_threshold_is_exclusive(name: str, outputs_for, input_size) -> None:
    """
    Assert that a score equal to the threshold is left out and a lower threshold lets it in.

    Every decoder keeps this, whatever its layout, so the zoo decoders' tests check it here
    too, with their own ``outputs_for``.
    """
    dets = [A._replace(score=0.5), B._replace(score=0.75)]
    [raw] = decoder(name).decode(outputs_for(name, [dets]), input_size, 0.5)
    assert_detections(raw, [dets[1]], name)
    [raw] = decoder(name).decode(outputs_for(name, [dets]), input_size, 0.3)
    assert_detections(raw, dets, name)


# --- shared behaviour --------------------------------------------------------------------------

def test_builtin_decoders_are_registered():
    assert set(ALL) <= set(decoder_names())


@pytest.mark.parametrize('name', ALL)
def test_known_boxes_decode(name):
    [raw] = decoder(name).decode(outputs_for(name, [[B, A, C]]), INPUT, 0.5)
    assert_detections(raw, [A, B, C], name)


@pytest.mark.parametrize('name', ALL)
def test_all_candidates_below_threshold(name):
    low = [A._replace(score=0.3), B._replace(score=0.45), C._replace(score=0.2)]
    results = decoder(name).decode(outputs_for(name, [low, low]), INPUT, 0.5)
    assert len(results) == 2
    for raw in results:
        assert_empty(raw, name)


@pytest.mark.parametrize('name', ALL)
def test_no_detections_in_image(name):
    results = decoder(name).decode(outputs_for(name, [[]]), INPUT, 0.5)
    assert len(results) == 1
    assert_empty(results[0], name)


@pytest.mark.parametrize('name', ALL)
def test_threshold_is_exclusive_and_configurable(name):
    assert_threshold_is_exclusive(name, outputs_for, INPUT)


@pytest.mark.parametrize('name', ALL)
def test_overlapping_boxes_of_same_class_keep_best(name):
    weaker = Det((100, 100, 200, 200), 1, 0.7)
    best = Det((104, 104, 204, 204), 1, 0.9)  # IoU with weaker 0.85: above every default
    far = Det((10, 10, 50, 50), 1, 0.6)
    [raw] = decoder(name).decode(outputs_for(name, [[weaker, best, far]]), INPUT, 0.5)
    assert_detections(raw, [best, far], name)


@pytest.mark.parametrize('name', MULTI_CLASS)
def test_overlapping_boxes_of_different_classes_are_both_kept(name):
    cat = Det((100, 100, 200, 200), 0, 0.7)
    dog = Det((110, 112, 210, 208), 2, 0.9)
    [raw] = decoder(name).decode(outputs_for(name, [[cat, dog]]), INPUT, 0.5)
    assert_detections(raw, [dog, cat], name)


@pytest.mark.parametrize('name', MULTI_CLASS)
def test_per_class_nms_in_a_crowd(name):
    dets = [Det((100, 100, 200, 200), 0, 0.7), Det((104, 100, 204, 200), 0, 0.95),
            Det((100, 104, 200, 204), 1, 0.8), Det((102, 102, 202, 202), 1, 0.85),
            Det((101, 101, 201, 201), 2, 0.6)]
    [raw] = decoder(name).decode(outputs_for(name, [dets]), INPUT, 0.5)
    assert_detections(raw, [dets[1], dets[3], dets[4]], name)


@pytest.mark.parametrize('name', ALL)
def test_nms_threshold_option(name):
    a = Det((100, 100, 200, 200), 1, 0.9)
    b = Det((150, 100, 250, 200), 1, 0.8)  # IoU 1/3
    [raw] = decoder(name, nms_threshold=0.3).decode(outputs_for(name, [[a, b]]), INPUT, 0.5)
    assert_detections(raw, [a], name)
    [raw] = decoder(name, nms_threshold=0.4).decode(outputs_for(name, [[a, b]]), INPUT, 0.5)
    assert_detections(raw, [a, b], name)


@pytest.mark.parametrize('name', ALL)
def test_batch_images_decoded_separately(name):
    images = [[A, B], [], [C]]
    results = decoder(name).decode(outputs_for(name, images), INPUT, 0.5)
    assert len(results) == 3
    assert_detections(results[0], [A, B], name)
    assert_empty(results[1], name)
    assert_detections(results[2], [C], name)


@pytest.mark.parametrize('name', ALL)
def test_batch_size_limits_images_decoded(name):
    images = [[A], [B], [C], [A, C]]  # the last two stand for padding slots of a fixed batch
    results = decoder(name).decode(outputs_for(name, images), INPUT, 0.5, batch_size=2)
    assert len(results) == 2
    assert_detections(results[0], [A], name)
    assert_detections(results[1], [B], name)


@pytest.mark.parametrize('name', ALL)
def test_max_detections_caps_best_first(name):
    dets = [Det((20 + 60 * i, 20 + 40 * (i % 2), 60 + 60 * i, 60 + 40 * (i % 2)), i % 3,
                0.55 + 0.08 * i) for i in range(5)]
    [raw] = decoder(name, max_detections=3).decode(outputs_for(name, [dets]), INPUT, 0.5)
    assert_detections(raw, sorted_by_score(dets)[:3], name)
    [raw] = decoder(name, max_detections=1).decode(outputs_for(name, [dets]), INPUT, 0.5)
    assert_detections(raw, [dets[4]], name)
    [raw] = decoder(name).decode(outputs_for(name, [dets]), INPUT, 0.5)
    assert_detections(raw, dets, name)


@pytest.mark.parametrize('name', ALL)
def test_too_few_outputs_raise_output_layout_error(name):
    outputs = outputs_for(name, [[A]])
    # centerface: landmarks optional
    keep = {'centerface': 2, 'ssd': len(outputs) - 1}.get(name, 0)
    with pytest.raises(OutputLayoutError):
        decoder(name).decode(outputs[:keep], INPUT, 0.5, batch_size=1)


def test_centerface_without_landmarks_gives_boxes_without_keypoints():
    outputs = outputs_for('centerface', [[A]])
    [full] = decoder('centerface').decode(outputs, INPUT, 0.5)
    [boxes_only] = decoder('centerface').decode(outputs[:3], INPUT, 0.5)
    assert boxes_only.keypoints is None
    assert np.array_equal(boxes_only.boxes, full.boxes)
    assert np.array_equal(boxes_only.scores, full.scores)


@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('options', [{'nms_threshold': 0.0}, {'nms_threshold': 1.5},
                                     {'max_detections': 0}, {'no_such_option': 1}])
def test_bad_decoder_options_raise_config_error(name, options):
    with pytest.raises(ConfigError):
        create_decoder(name, **options)


def test_unknown_decoder_raises_config_error():
    with pytest.raises(ConfigError, match='yolov8'):
        create_decoder('yolov99')


def test_cxcywh_to_xyxy():
    out = cxcywh_to_xyxy(np.array([[50, 40, 20, 10], [0, 0, 0, 0]], np.float64))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[40, 35, 60, 45], [0, 0, 0, 0]])


# --- YOLOv8 ------------------------------------------------------------------------------------

def test_yolov8_empty_output_tensor():
    out = np.zeros((2, 4 + NUM_CLASSES, 0), np.float32)
    results = decoder('yolov8').decode([out], INPUT, 0.25)
    assert len(results) == 2
    for raw in results:
        assert_empty(raw, 'yolov8')


def test_yolov8_box_is_cx_cy_w_h_and_best_class_wins():
    out = np.zeros((1, 4 + 3, 4), np.float32)
    out[0, :, 2] = [100, 50, 40, 20, 0.3, 0.8, 0.6]
    [raw] = decoder('yolov8').decode([out], INPUT, 0.5)
    np.testing.assert_allclose(raw.boxes, [[80, 40, 120, 60]])
    assert raw.class_ids.tolist() == [1]
    np.testing.assert_allclose(raw.scores, [0.8])


def test_yolov8_single_class_model():
    out = np.zeros((1, 5, 3), np.float32)
    out[0, :, 1] = [10, 10, 4, 4, 0.9]
    [raw] = decoder('yolov8', num_classes=1).decode([out], INPUT, 0.5)
    np.testing.assert_allclose(raw.boxes, [[8, 8, 12, 12]])
    assert raw.class_ids.tolist() == [0]


def test_yolov8_channels_last_accepted_when_num_classes_given():
    [first] = yolov8_outputs([[A, B], [C]])
    expected = decoder('yolov8').decode([first], INPUT, 0.5)
    last = np.ascontiguousarray(first.transpose(0, 2, 1))  # [B, N, 4+C]
    results = decoder('yolov8', num_classes=NUM_CLASSES).decode([last], INPUT, 0.5)
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.class_ids, want.class_ids)
    assert_detections(results[0], [A, B], 'yolov8')


@pytest.mark.parametrize('shape,options', [
    ((4 + NUM_CLASSES, 32), {}),                  # no batch axis
    ((1, 1, 4 + NUM_CLASSES, 32), {}),            # rank 4
    ((1, 4, 32), {}),                             # boxes but no class scores
    ((1, 4 + NUM_CLASSES, 32), {'num_classes': 80}),
    ((1, 32, 9), {'num_classes': 3}),
])
def test_yolov8_wrong_shapes_raise_output_layout_error(shape, options):
    with pytest.raises(OutputLayoutError):
        decoder('yolov8', **options).decode([np.zeros(shape, np.float32)], INPUT, 0.5,
                                            batch_size=1)


# --- YOLOv5 ------------------------------------------------------------------------------------

def test_yolov5_empty_output_tensor():
    out = np.zeros((3, 0, 5 + NUM_CLASSES), np.float32)
    results = decoder('yolov5').decode([out], INPUT, 0.25)
    assert len(results) == 3
    for raw in results:
        assert_empty(raw, 'yolov5')


def test_yolov5_score_is_objectness_times_class_probability():
    out = np.zeros((1, 3, 5 + 3), np.float32)
    out[0, 0] = [100, 50, 40, 20, 0.9, 0.1, 0.2, 0.8]  # score 0.72, class 2
    out[0, 1] = [200, 50, 40, 20, 0.4, 1.0, 0.0, 0.0]  # objectness below threshold
    out[0, 2] = [300, 50, 40, 20, 1.0, 0.45, 0.0, 0.0]  # class prob below threshold
    [raw] = decoder('yolov5').decode([out], INPUT, 0.5)
    np.testing.assert_allclose(raw.boxes, [[80, 40, 120, 60]])
    np.testing.assert_allclose(raw.scores, [0.72], rtol=1e-6)
    assert raw.class_ids.tolist() == [2]
    [raw] = decoder('yolov5').decode([out], INPUT, 0.75)
    assert_empty(raw, 'yolov5')
    [raw] = decoder('yolov5').decode([out], INPUT, 0.3)
    np.testing.assert_allclose(raw.scores, [0.72, 0.45, 0.4], rtol=1e-6)
    assert raw.class_ids.tolist() == [2, 0, 0]


def test_yolov5_high_objectness_low_class_probabilities():
    out = np.zeros((1, 1, 5 + 2), np.float32)
    out[0, 0] = [10, 10, 4, 4, 0.99, 0.3, 0.2]
    [raw] = decoder('yolov5').decode([out], INPUT, 0.5)
    assert_empty(raw, 'yolov5')


def test_yolov5_channels_first_accepted_when_num_classes_given():
    [last] = yolov5_outputs([[A, B], [C]])
    first = np.ascontiguousarray(last.transpose(0, 2, 1))  # [B, 5+C, N]
    results = decoder('yolov5', num_classes=NUM_CLASSES).decode([first], INPUT, 0.5)
    assert_detections(results[0], [A, B], 'yolov5')
    assert_detections(results[1], [C], 'yolov5')


@pytest.mark.parametrize('shape,options', [
    ((32, 5 + NUM_CLASSES), {}),
    ((1, 32, 5), {}),  # objectness but no class
    ((1, 1, 32, 5 + NUM_CLASSES), {}),
    ((1, 32, 5 + NUM_CLASSES), {'num_classes': 80}),
])
def test_yolov5_wrong_shapes_raise_output_layout_error(shape, options):
    with pytest.raises(OutputLayoutError):
        decoder('yolov5', **options).decode([np.zeros(shape, np.float32)], INPUT, 0.5,
                                            batch_size=1)


# --- SSD ---------------------------------------------------------------------------------------

def test_ssd_normalised_yxyx_to_pixels_on_non_square_input():
    boxes = np.array([[[0.25, 0.1, 0.5, 0.3]]], np.float32)  # y1 x1 y2 x2
    [raw] = decoder('ssd').decode([boxes, np.array([[2.0]]), np.array([[0.8]])], (640, 480), 0.5)
    np.testing.assert_allclose(raw.boxes, [[64, 120, 192, 240]], rtol=1e-6)
    assert raw.class_ids.tolist() == [2]


def test_ssd_xyxy_box_order():
    boxes = np.array([[[0.1, 0.25, 0.3, 0.5]]], np.float32)
    [raw] = decoder('ssd', box_order='xyxy').decode(
        [boxes, np.array([[1.0]]), np.array([[0.8]])], (640, 480), 0.5)
    np.testing.assert_allclose(raw.boxes, [[64, 120, 192, 240]], rtol=1e-6)


def test_ssd_empty_outputs():
    outputs = [np.zeros((2, 0, 4), np.float32), np.zeros((2, 0)), np.zeros((2, 0))]
    results = decoder('ssd').decode(outputs, INPUT, 0.5)
    assert len(results) == 2
    for raw in results:
        assert_empty(raw, 'ssd')


def test_ssd_num_detections_limits_slots():
    roles = ('boxes', 'classes', 'scores', 'num_detections')
    outputs = ssd_outputs([[A, B], [], [C]], num_detections=True)
    results = decoder('ssd', output_roles=roles).decode(outputs, INPUT, 0.5)
    assert_detections(results[0], [A, B], 'ssd')
    assert_empty(results[1], 'ssd')
    assert_detections(results[2], [C], 'ssd')
    # slots past num_detections are ignored even when they score high
    outputs[3][0] = 1
    outputs[2][1, 0] = 0.99
    results = decoder('ssd', output_roles=roles).decode(outputs, INPUT, 0.5)
    assert_detections(results[0], [A], 'ssd')
    assert_empty(results[1], 'ssd')


def test_ssd_output_roles_in_another_order():
    boxes, classes, scores = ssd_outputs([[A, B], [C]])
    outputs = [scores, np.array([2.0, 1.0]), boxes, classes]
    roles = ['scores', 'num_detections', 'boxes', 'classes']
    results = decoder('ssd', output_roles=roles).decode(outputs, INPUT, 0.5)
    assert_detections(results[0], [A, B], 'ssd')
    assert_detections(results[1], [C], 'ssd')


def test_ssd_class_offset_and_float_class_ids():
    boxes, classes, scores = ssd_outputs([[A._replace(cls=2), B._replace(cls=1)]])
    classes[0, :2] += 1.0000001  # a background class at 0, stored as floats
    [raw] = decoder('ssd', class_offset=1).decode([boxes, classes, scores], INPUT, 0.5)
    assert raw.class_ids.tolist() == [2, 1]


@pytest.mark.parametrize('options', [
    {'output_roles': ['boxes', 'scores']},
    {'output_roles': ['boxes', 'classes', 'scores', 'scores']},
    {'output_roles': ['boxes', 'classes', 'scores', 'masks']},
    {'box_order': 'xywh'},
])
def test_ssd_bad_options_raise_config_error(options):
    with pytest.raises(ConfigError):
        create_decoder('ssd', **options)


@pytest.mark.parametrize('which,array', [
    ('boxes', np.zeros((1, 10), np.float32)),            # no coordinate axis
    ('boxes', np.zeros((1, 10, 5), np.float32)),         # five coordinates
    ('boxes', np.zeros((1, 1, 10, 4), np.float32)),      # rank 4
    ('scores', np.zeros((1, 10, NUM_CLASSES), np.float32)),  # raw per-class scores
    ('classes', np.zeros((1, 7), np.float32)),           # not one class per box
])
def test_ssd_wrong_shapes_raise_output_layout_error(which, array):
    outputs = ssd_outputs([[A]], slots=10)
    outputs[{'boxes': 0, 'classes': 1, 'scores': 2}[which]] = array
    with pytest.raises(OutputLayoutError):
        decoder('ssd').decode(outputs, INPUT, 0.5)


# --- CenterFace --------------------------------------------------------------------------------

def centerface_zero(batch=1, gh=8, gw=8):
    return [np.zeros((batch, c, gh, gw), np.float32) for c in (1, 2, 2, 10)]


def test_centerface_box_and_landmarks_from_raw_values():
    """Raw tensor values in, the documented formulas out."""
    heat, scale, offset, lms = centerface_zero(gh=16, gw=16)
    y, x = 6, 9
    heat[0, 0, y, x] = 0.8
    scale[0, :, y, x] = [math.log(5.0), math.log(3.0)]  # h = 20, w = 12
    offset[0, :, y, x] = [0.25, 0.75]
    lm = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # pairs of (dy, dx)
    lms[0, :, y, x] = lm
    [raw] = decoder('centerface').decode([heat, scale, offset, lms], (64, 64), 0.5)
    h, w = math.exp(math.log(5.0)) * 4, math.exp(math.log(3.0)) * 4
    cx, cy = (x + 0.75 + 0.5) * 4, (y + 0.25 + 0.5) * 4
    x1, y1 = cx - w / 2, cy - h / 2
    np.testing.assert_allclose(raw.boxes, [[x1, y1, x1 + w, y1 + h]], atol=1e-4)
    np.testing.assert_allclose(raw.boxes, [[35, 17, 47, 37]], atol=1e-4)
    expected_lm = [[lm[2 * j + 1] * w + x1, lm[2 * j] * h + y1] for j in range(5)]
    np.testing.assert_allclose(raw.keypoints[0], expected_lm, atol=1e-4)
    np.testing.assert_allclose(raw.scores, [0.8])
    assert raw.class_ids.tolist() == [0]
    assert raw.keypoints.dtype == np.float32


def test_centerface_known_faces_with_landmarks():
    faces = [[Det((40, 60, 100, 140), 0, 0.95), Det((200, 20, 232, 60), 0, 0.7)]]
    points = [[[(55, 90), (85, 90), (70, 105), (58, 125), (82, 125)],
               [(208, 30), (224, 30), (216, 40), (210, 50), (222, 50)]]]
    outputs = centerface_outputs(faces, landmarks=points)
    [raw] = decoder('centerface').decode(outputs, INPUT, 0.5)
    assert_detections(raw, faces[0], 'centerface')
    np.testing.assert_allclose(raw.keypoints, points[0], atol=1e-3)


def test_centerface_empty_heatmap_and_empty_grid():
    results = decoder('centerface').decode(centerface_zero(batch=2), (32, 32), 0.5)
    assert len(results) == 2
    for raw in results:
        assert_empty(raw, 'centerface')
        assert raw.keypoints.dtype == np.float32
    [raw] = decoder('centerface').decode(centerface_zero(gh=0, gw=0), (0, 0), 0.5)
    assert_empty(raw, 'centerface')


def test_centerface_box_crossing_left_and_top_edges_is_cut_not_shifted():
    # centre (2, 2), 32 x 32: the true box is -14..18 on both axes
    heat, scale, offset, lms = centerface_zero()
    heat[0, 0, 0, 0] = 0.9
    scale[0, :, 0, 0] = math.log(8.0)
    lms[0, :, 0, 0] = [0.5, 0.25] * 5  # every landmark at (x1 + w/4, y1 + h/2) = (-6, 2)
    [raw] = decoder('centerface').decode([heat, scale, offset, lms], (32, 32), 0.5)
    np.testing.assert_allclose(raw.boxes, [[0, 0, 18, 18]], atol=1e-4)
    # landmarks are relative to the predicted (unclipped) box, and are not clipped
    np.testing.assert_allclose(raw.keypoints[0], [[-6, 2]] * 5, atol=1e-4)


def test_centerface_box_crossing_right_and_bottom_edges_is_cut():
    heat, scale, offset, lms = centerface_zero()
    heat[0, 0, 7, 7] = 0.9  # centre (30, 30)
    scale[0, :, 7, 7] = math.log(4.0)  # 16 x 16: 22..38
    [raw] = decoder('centerface').decode([heat, scale, offset, lms], (32, 32), 0.5)
    np.testing.assert_allclose(raw.boxes, [[22, 22, 32, 32]], atol=1e-4)


def test_centerface_nms_default_threshold_is_0_3():
    assert decoder('centerface').nms_threshold == 0.3
    a = Det((100, 100, 200, 200), 0, 0.9)
    b = Det((160, 100, 260, 200), 0, 0.8)  # IoU 0.25: kept at 0.3
    c = Det((148, 100, 248, 200), 0, 0.7)  # IoU with a 0.35: dropped at 0.3
    [raw] = decoder('centerface').decode(centerface_outputs([[a, b]]), INPUT, 0.5)
    assert_detections(raw, [a, b], 'centerface')
    [raw] = decoder('centerface').decode(centerface_outputs([[a, c]]), INPUT, 0.5)
    assert_detections(raw, [a], 'centerface')


@pytest.mark.parametrize('index,shape', [
    (0, (1, 8, 8)),          # heatmap without channel axis
    (3, (1, 10, 8)),         # landmarks of rank 3
    (0, (1, 2, 8, 8)),       # two heatmap channels
    (1, (1, 1, 8, 8)),       # one scale channel
    (2, (1, 3, 8, 8)),       # three offset channels
    (3, (1, 8, 8, 8)),       # four landmarks
    (1, (1, 2, 4, 8)),       # scale grid differs from the heatmap's
    (3, (2, 10, 8, 8)),      # landmarks batch differs
])
def test_centerface_wrong_shapes_raise_output_layout_error(index, shape):
    outputs = centerface_zero()
    outputs[0][0, 0, 2, 2] = 0.9
    outputs[index] = np.zeros(shape, np.float32)
    with pytest.raises(OutputLayoutError):
        decoder('centerface').decode(outputs, (32, 32), 0.5)


def test_centerface_outputs_in_wrong_order_raise_output_layout_error():
    heat, scale, offset, lms = centerface_zero()
    with pytest.raises(OutputLayoutError):
        decoder('centerface').decode([lms, scale, offset, heat], (32, 32), 0.5)


# --- end to end through DetectionPipeline.decode -----------------------------------------------

class FakeModel(Model):
    """Returns canned outputs, or outputs computed from the input tensor; records each run."""

    def __init__(self, spec: TensorSpec, batch: BatchCapability, produce=None):
        self.name = 'fake'
        self.inputs = [spec]
        self.outputs = []
        self.batch = batch
        self.produce = produce
        self.runs: List[Tuple[int, ...]] = []

    def run(self, inputs):
        tensor = next(iter(self.input_dict(inputs).values()))
        self.runs.append(tensor.shape)
        return self.produce(tensor)


def make_pipeline(resize: str, size=(320, 320), batch=BatchCapability(), decoder_name='yolov8',
                  produce=None, threshold=0.5, **decoder_options) -> DetectionPipeline:
    spec = TensorSpec('images', (batch.fixed_size, 3, size[1], size[0]),
                      np.dtype(np.float32), 'NCHW')
    model = FakeModel(spec, batch, produce)
    pre = Preprocessor(PreprocessConfig(resize=resize, scale=1 / 255), spec)
    return DetectionPipeline(model, pre, create_decoder(decoder_name, **decoder_options),
                             ['person', 'car', 'dog'], threshold)


def grey(w, h, value=100):
    return np.full((h, w, 3), value, np.uint8)


def test_pipeline_letterbox_maps_boxes_to_original_pixels():
    pipeline = make_pipeline('letterbox')
    batch = pipeline.prepare([grey(640, 360)])
    t = batch.transforms[0]
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (0.5, 0.5, 0, 70)
    outputs = yolov8_outputs([[Det((100, 100, 200, 150), 1, 0.9),
                               Det((10, 60, 50, 250), 2, 0.8)]])  # reaches into the pad bands
    [detections] = pipeline.decode(outputs, batch)
    assert len(detections) == 2
    first, second = detections
    np.testing.assert_allclose(first.box, (200, 60, 400, 160), atol=1e-3)
    assert (first.class_id, first.class_name) == (1, 'car')
    assert first.score == pytest.approx(0.9)
    assert first.keypoints is None
    np.testing.assert_allclose(second.box, (20, 0, 100, 360), atol=1e-3)  # clipped to the image
    assert second.class_name == 'dog'
    assert all(isinstance(v, float) for v in first.box)


def test_pipeline_letterbox_tall_image():
    pipeline = make_pipeline('letterbox')
    batch = pipeline.prepare([grey(300, 600)])  # scale 320/600, 160 wide, pad_x 80
    outputs = yolov8_outputs([[Det((96, 32, 176, 288), 0, 0.9)]])
    [[det]] = pipeline.decode(outputs, batch)
    s = 600 / 320
    np.testing.assert_allclose(det.box, (16 * s, 32 * s, 96 * s, 288 * s), atol=1e-3)
    assert det.class_name == 'person'


def test_pipeline_stretch_maps_boxes_to_original_pixels():
    pipeline = make_pipeline('stretch')
    batch = pipeline.prepare([grey(400, 300)])
    t = batch.transforms[0]
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (0.8, 320 / 300, 0, 0)
    outputs = yolov8_outputs([[Det((80, 32, 240, 160), 0, 0.9)]])
    [[det]] = pipeline.decode(outputs, batch)
    np.testing.assert_allclose(det.box, (100, 30, 300, 150), atol=1e-3)


def test_pipeline_stretch_maps_centerface_keypoints():
    pipeline = make_pipeline('stretch', decoder_name='centerface')
    batch = pipeline.prepare([grey(400, 300)])
    face = Det((80, 32, 240, 160), 0, 0.9)
    points = [(120, 64), (200, 64), (160, 96), (128, 128), (192, 128)]
    outputs = centerface_outputs([[face]], landmarks=[[points]])
    [[det]] = pipeline.decode(outputs, batch)
    np.testing.assert_allclose(det.box, (100, 30, 300, 150), atol=1e-3)
    expected = [(x / 0.8, y * 300 / 320) for x, y in points]
    np.testing.assert_allclose(det.keypoints, expected, atol=1e-3)
    assert det.class_name == 'person' and det.class_id == 0


def test_pipeline_letterbox_maps_ssd_normalised_boxes():
    pipeline = make_pipeline('letterbox', decoder_name='ssd')
    batch = pipeline.prepare([grey(640, 360)])
    outputs = ssd_outputs([[Det((100, 100, 200, 150), 2, 0.9)]])
    [[det]] = pipeline.decode(outputs, batch)
    np.testing.assert_allclose(det.box, (200, 60, 400, 160), atol=1e-3)
    assert det.class_name == 'dog'


def test_pipeline_images_of_different_sizes_map_separately():
    pipeline = make_pipeline('letterbox')
    batch = pipeline.prepare([grey(640, 360), grey(360, 640), grey(320, 320)])
    box = Det((100, 100, 200, 150), 1, 0.9)
    results = pipeline.decode(yolov8_outputs([[box], [], [box]]), batch)
    assert [len(r) for r in results] == [1, 0, 1]
    np.testing.assert_allclose(results[0][0].box, (200, 60, 400, 160), atol=1e-3)
    np.testing.assert_allclose(results[2][0].box, (100, 100, 200, 150), atol=1e-3)


def test_pipeline_fixed_batch_pads_to_compiled_size():
    pipeline = make_pipeline('letterbox', batch=BatchCapability(4))
    assert pipeline.max_batch == 4
    batch = pipeline.prepare([grey(640, 360), grey(640, 360, 50), grey(400, 300)])
    assert batch.tensor.shape == (4, 3, 320, 320)
    assert len(batch.transforms) == 3
    assert (batch.tensor[3] == 0).all()
    box = Det((100, 100, 200, 150), 1, 0.9)
    outputs = yolov8_outputs([[box], [], [box], [box, C]])  # the padding slot is ignored
    results = pipeline.decode(outputs, batch)
    assert len(results) == 3
    assert [len(r) for r in results] == [1, 0, 1]
    np.testing.assert_allclose(results[0][0].box, (200, 60, 400, 160), atol=1e-3)
    # 400 x 300 letterboxed: scale 0.8, 320 x 240, pad_y 40
    np.testing.assert_allclose(results[2][0].box, (125, 75, 250, 137.5), atol=1e-3)


def slot_marker_model_output(tensor: np.ndarray) -> List[np.ndarray]:
    """
    One detection per slot, whose class tells the images apart.

    The class is the slot's grey level // 40 - 1, so images can be told apart after
    batching; all-zero padding slots give none.
    """
    n = tensor.shape[0]
    dets = []
    for i in range(n):
        level = int(round(float(tensor[i, 0, 160, 160]) * 255))
        dets.append([] if level == 0 else [Det((100, 100, 200, 150), level // 40 - 1, 0.9)])
    return yolov8_outputs(dets)


def test_pipeline_detect_runs_fixed_batches_and_keeps_image_order():
    pipeline = make_pipeline('stretch', batch=BatchCapability(4),
                             produce=slot_marker_model_output)
    images = [grey(400, 300, 40 * (i % 3 + 1) + 1) for i in range(5)]
    results, timing = pipeline.detect(images)
    assert pipeline.model.runs == [(4, 3, 320, 320), (4, 3, 320, 320)]
    assert len(results) == 5
    assert all(isinstance(r, ImageResult) and (r.width, r.height) == (400, 300) for r in results)
    assert [[d.class_id for d in r.detections] for r in results] == [[0], [1], [2], [0], [1]]
    for r in results:
        np.testing.assert_allclose(r.detections[0].box, (125, 93.75, 250, 140.625), atol=1e-3)
    assert set(timing) == {'preprocess', 'inference', 'postprocess'}


def test_pipeline_detect_dynamic_batch_runs_once():
    pipeline = make_pipeline('stretch', produce=slot_marker_model_output)
    results, _ = pipeline.detect([grey(400, 300, 41), grey(400, 300, 81), grey(400, 300, 121)])
    assert pipeline.model.runs == [(3, 3, 320, 320)]
    names = [[d.class_name for d in r.detections] for r in results]
    assert names == [['person'], ['car'], ['dog']]


def test_pipeline_decode_rejects_outputs_for_fewer_images():
    pipeline = make_pipeline('letterbox')
    batch = pipeline.prepare([grey(64, 64), grey(64, 64)])
    with pytest.raises(OutputLayoutError):
        pipeline.decode(yolov8_outputs([[A]]), batch)
    with pytest.raises(OutputLayoutError):
        pipeline.decode([], batch)


@pytest.mark.parametrize('threshold', [-0.1, 1.5])
def test_pipeline_rejects_bad_score_threshold(threshold):
    with pytest.raises(ConfigError):
        make_pipeline('letterbox', threshold=threshold)


@pytest.mark.parametrize('name', MULTI_CLASS)
def test_agnostic_nms_keeps_one_box_per_object_whatever_its_class(name):
    """Ultralytics' agnostic_nms: a person both 'standing' and 'fallen' is one box, the best."""
    standing, fallen = Det((40, 40, 140, 240), 0, 0.8), Det((44, 42, 142, 236), 1, 0.6)
    apart = Det((200, 40, 260, 120), 2, 0.7)
    outputs = outputs_for(name, [[standing, fallen, apart]])
    per_class = decoder(name).decode(outputs, INPUT, 0.25)[0]
    assert sorted(per_class.class_ids.tolist()) == [0, 1, 2]  # NMS never compares classes
    agnostic = decoder(name, agnostic_nms=True).decode(outputs, INPUT, 0.25)[0]
    assert sorted(agnostic.class_ids.tolist()) == [0, 2]
    assert agnostic.scores.tolist() == pytest.approx([0.8, 0.7], abs=1e-3)
    with pytest.raises(ConfigError, match='agnostic_nms'):
        decoder(name, agnostic_nms='yes')
