"""
The NPU model zoos' per-stride YOLO decoders on synthetic outputs that encode known boxes.

Builders write detections (model-input pixels x1 y1 x2 y2, class, score) into each zoo's layout:
YOLOv8/YOLO11 boxes as DFL logits whose softmax expectation is the exact distance (weight 1-f on
bin i and f on bin i+1 for a distance i+f), YOLOv5 boxes by inverting the anchor formulas.
"""

import math
from typing import List, Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders import create_decoder, decoder_names
from hobot_npu_infer.core.decoders.zoo_yolo import dfl_boxes, logit, YOLOV5_ANCHORS
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest
from test_decoder_properties import SPECIAL, tensors
from test_decoders import (
    A,
    assert_detections,
    assert_empty,
    assert_threshold_is_exclusive,
    B,
    C,
    Det,
)

INPUT = (384, 320)  # W, H: grids 48x40, 24x20, 12x10 (W x H); not square, to catch swapped axes
NUM_CLASSES = 3
STRIDES = (8, 16, 32)
DFL = ['rdk_yolov8', 'rknn_yolov8']
ANCHOR = ['rdk_yolov5', 'rknn_yolov5']
ALL = DFL + ANCHOR
LAYOUT = {'rdk_yolov8': 'nhwc', 'rknn_yolov8': 'nchw', 'rdk_yolov5': 'nhwc', 'rknn_yolov5': 'nchw'}
LOGITS = {'rdk_yolov8', 'rdk_yolov5'}  # the RDK zoo leaves sigmoid to the CPU


def grids(input_size=INPUT, strides=STRIDES):
    w, h = input_size
    return [(s, -(-h // s), -(-w // s)) for s in strides]


def to_layout(canonical: np.ndarray, layout: str) -> np.ndarray:
    """[B, H, W, C] to the zoo's layout."""
    return canonical if layout == 'nhwc' else np.ascontiguousarray(canonical.transpose(0, 3, 1, 2))


def dfl_bins(distance: float, reg_max: int = 16) -> np.ndarray:
    """Logits whose softmax expectation over bins 0..reg_max-1 is ``distance``."""
    assert 0 <= distance <= reg_max - 1, f'distance {distance} out of the DFL range'
    i = min(math.floor(distance), reg_max - 1)
    f = distance - i  # in [0, 1)
    bins = np.full(reg_max, -100.0)  # exp(-100) is nothing next to the two weights
    bins[i] = math.log(1 - f)
    if f > 0:
        bins[i + 1] = math.log(f)
    return bins


def dfl_place(box, stride: int, reg_max: int = 16) -> Optional[Tuple[int, int, List[float]]]:
    """
    Place a box for DFL decoding.

    Cell (row, col) of the box centre at ``stride`` and its l t r b distances in cells, or
    None when the distances do not fit the DFL range.
    """
    x1, y1, x2, y2 = box
    col, row = int((x1 + x2) / 2 // stride), int((y1 + y2) / 2 // stride)
    ax, ay = col + 0.5, row + 0.5
    ltrb = [ax - x1 / stride, ay - y1 / stride, x2 / stride - ax, y2 / stride - ay]
    return (row, col, ltrb) if all(0 <= d <= reg_max - 1 for d in ltrb) else None


def dfl_outputs(images: Sequence[Sequence[Det]], name: str, layout: Optional[str] = None,
                score_sum: bool = False, input_size=INPUT, strides=STRIDES, reg_max: int = 16,
                num_classes: int = NUM_CLASSES, stride_of: Optional[dict] = None,
                seed: int = 0) -> List[np.ndarray]:
    """
    Make DFL outputs.

    Per stride: RDK [cls, box] NHWC logits; Rockchip [box, cls(, score_sum)] NCHW, scores
    after sigmoid. Detections go to the smallest stride whose DFL range fits them, or to
    ``stride_of[det]``; other cells get low class scores and random box logits.
    """
    rng = np.random.default_rng(seed)
    layout = layout or LAYOUT[name]
    n = len(images)
    outputs = []
    for s, gh, gw in grids(input_size, strides):
        probs = rng.uniform(0.0, 0.05, (n, gh, gw, num_classes))
        box = rng.normal(0, 3, (n, gh, gw, 4 * reg_max))
        used = set()
        for b, dets in enumerate(images):
            for det in dets:
                chosen = (stride_of or {}).get(det) or next(
                    t for t in strides if dfl_place(det.box, t, reg_max))
                if chosen != s:
                    continue
                row, col, ltrb = dfl_place(det.box, s, reg_max)
                assert (b, row, col) not in used, 'two test boxes share a cell'
                used.add((b, row, col))
                probs[b, row, col] = 0.05
                probs[b, row, col, det.cls] = det.score
                box[b, row, col] = np.concatenate([dfl_bins(d, reg_max) for d in ltrb])
        if name in LOGITS:
            cls = np.vectorize(logit)(probs)
        else:
            cls = probs
        level = {'cls': to_layout(cls.astype(np.float32), layout),
                 'box': to_layout(box.astype(np.float32), layout),
                 'sum': to_layout(np.clip(probs.sum(axis=3, keepdims=True), 0, 1)
                                  .astype(np.float32), layout)}
        order = ['cls', 'box'] if name.startswith('rdk') else ['box', 'cls']
        outputs += [level[k] for k in order + (['sum'] if score_sum else [])]
    return outputs


def anchor_place(box, strides=STRIDES, anchors=YOLOV5_ANCHORS):
    """Return the (stride index, anchor index) of the anchor nearest the box size in log scale."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    table = np.asarray(anchors, np.float64).reshape(len(strides), -1, 2)
    cost = np.abs(np.log(w / table[..., 0])) + np.abs(np.log(h / table[..., 1]))
    k, a = np.unravel_index(np.argmin(cost), cost.shape)
    assert w < 4 * table[k, a, 0] and h < 4 * table[k, a, 1]
    return int(k), int(a)


def anchor_outputs(images: Sequence[Sequence[Det]], name: str, layout: Optional[str] = None,
                   input_size=INPUT, strides=STRIDES, anchors=YOLOV5_ANCHORS,
                   num_classes: int = NUM_CLASSES, seed: int = 0) -> List[np.ndarray]:
    """
    Make anchor outputs.

    Per stride [B,H,W,A*(5+C)] (RDK, logits) or [B,A*(5+C),H,W] (Rockchip, probabilities),
    anchor-major; p_xy = (centre / stride - cell + 0.5) / 2, p_wh = sqrt(size / anchor) / 2.
    """
    rng = np.random.default_rng(seed)
    layout = layout or LAYOUT[name]
    table = np.asarray(anchors, np.float64).reshape(len(strides), -1, 2)
    per_cell, fields = table.shape[1], 5 + num_classes
    n = len(images)
    outputs = []
    for k, (s, gh, gw) in enumerate(grids(input_size, strides)):
        probs = rng.uniform(0.0, 1.0, (n, gh, gw, per_cell, fields))
        probs[..., 4] = rng.uniform(0.0, 0.05, (n, gh, gw, per_cell))  # low objectness
        for b, dets in enumerate(images):
            for (x1, y1, x2, y2), cls, score in dets:
                if anchor_place((x1, y1, x2, y2), strides, anchors)[0] != k:
                    continue
                a = anchor_place((x1, y1, x2, y2), strides, anchors)[1]
                fx, fy = (x1 + x2) / 2 / s, (y1 + y2) / 2 / s
                col, row = int(fx), int(fy)
                assert probs[b, row, col, a, 4] < 0.5, 'two test boxes share a cell and anchor'
                probs[b, row, col, a, :4] = [(fx - col + 0.5) / 2, (fy - row + 0.5) / 2,
                                             math.sqrt((x2 - x1) / table[k, a, 0]) / 2,
                                             math.sqrt((y2 - y1) / table[k, a, 1]) / 2]
                probs[b, row, col, a, 4] = 1.0  # objectness 1: the score is the class prob
                probs[b, row, col, a, 5:] = 0.01
                probs[b, row, col, a, 5 + cls] = score
        # sigmoid(30) is 1 to 1e-13: the logit stand-in for objectness 1
        values = np.where(probs >= 1.0, 30.0, np.vectorize(logit)(probs)) if name in LOGITS \
            else probs
        outputs.append(to_layout(values.reshape(n, gh, gw, -1).astype(np.float32), layout))
    return outputs


def outputs_for(name: str, images, **options) -> List[np.ndarray]:
    return (dfl_outputs if name in DFL else anchor_outputs)(images, name, **options)


def shuffled(outputs: List[np.ndarray], seed: int = 1) -> List[np.ndarray]:
    order = list(np.random.default_rng(seed).permutation(len(outputs)))
    if order == sorted(order):
        order.reverse()
    return [outputs[i] for i in order]


D = Det((150, 40, 330, 300), 0, 0.8)  # 180 x 260: too big for stride 8 and for YOLOv5's P3 anchors


# --- finding known boxes -----------------------------------------------------------------------

def test_zoo_decoders_are_registered():
    assert set(ALL) <= set(decoder_names())


@pytest.mark.parametrize('layout', ['nhwc', 'nchw'])
@pytest.mark.parametrize('name', ALL)
def test_known_boxes_in_a_batch_of_two_in_shuffled_order(name, layout):
    """
    The per-stride decoders find known boxes in synthetic tensors.

    They find them per image, in either layout, whatever the output order.
    """
    images = [[B, A, D], [C]]
    outputs = shuffled(outputs_for(name, images, layout=layout))
    results = create_decoder(name, layout=layout).decode(outputs, INPUT, 0.5)
    assert len(results) == 2
    assert_detections(results[0], [A, B, D], name)
    assert_detections(results[1], [C], name)


@pytest.mark.parametrize('name', DFL)
def test_dfl_boxes_on_every_stride_with_score_sums(name):
    big = Det((20, 10, 360, 310), 2, 0.7)
    stride_of = {A: 8, D: 16, big: 32}  # each stride decodes one of them
    outputs = dfl_outputs([[A, D, big], [D]], name, score_sum=True, stride_of=stride_of)
    assert len(outputs) == 9
    results = create_decoder(name).decode(shuffled(outputs), INPUT, 0.5)
    assert_detections(results[0], [A, D, big], name)
    assert_detections(results[1], [D], name)


@pytest.mark.parametrize('name', ALL)
def test_class_maps_with_no_score_above_threshold_give_no_detection(name):
    low = [A._replace(score=0.3), B._replace(score=0.45), D._replace(score=0.2)]
    results = create_decoder(name).decode(outputs_for(name, [low, []]), INPUT, 0.5)
    assert len(results) == 2
    for raw in results:
        assert_empty(raw, name)


@pytest.mark.parametrize('name', ALL)
def test_threshold_is_exclusive(name):
    assert_threshold_is_exclusive(name, outputs_for, INPUT)


@pytest.mark.parametrize('name', ALL)
def test_per_class_nms_and_max_detections(name):
    weaker, best = Det((100, 100, 200, 200), 1, 0.7), Det((110, 112, 210, 208), 1, 0.9)
    other = Det((90, 90, 230, 250), 2, 0.8)  # overlaps both, another class
    far = Det((300, 20, 340, 60), 0, 0.6)
    outputs = outputs_for(name, [[weaker, best, other, far]])
    [raw] = create_decoder(name).decode(outputs, INPUT, 0.5)
    assert_detections(raw, [best, other, far], name)
    [raw] = create_decoder(name, max_detections=2).decode(outputs, INPUT, 0.5)
    assert_detections(raw, [best, other], name)


@pytest.mark.parametrize('name', ALL)
def test_batch_size_limits_images_decoded(name):
    outputs = outputs_for(name, [[A], [B], [C, D]])
    results = create_decoder(name).decode(outputs, INPUT, 0.5, batch_size=2)
    assert len(results) == 2
    assert_detections(results[0], [A], name)
    assert_detections(results[1], [B], name)


@pytest.mark.parametrize('name', ALL)
def test_one_decoder_serves_several_input_sizes(name):
    decoder = create_decoder(name)
    small = Det((20, 20, 60, 50), 1, 0.9)
    for size in [(384, 320), (256, 192), (384, 320)]:
        [raw] = decoder.decode(outputs_for(name, [[small]], input_size=size), size, 0.5)
        assert_detections(raw, [small], name)


# --- the formulas on raw values ----------------------------------------------------------------

def test_dfl_boxes_expectation_and_cell_centre():
    flat = np.zeros((1, 64))  # uniform bins: every distance is 7.5 cells
    np.testing.assert_allclose(dfl_boxes(flat, np.array([2 * 5 + 3]), 5, 8, 16),
                               [[(3.5 - 7.5) * 8, (2.5 - 7.5) * 8, (3.5 + 7.5) * 8,
                                 (2.5 + 7.5) * 8]])
    one_hot = np.full((2, 4, 16), -1e4)
    one_hot[0, [0, 1, 2, 3], [1, 2, 3, 4]] = 0  # l=1 t=2 r=3 b=4 for cell 0
    one_hot[1, :, 0] = 0
    out = dfl_boxes(one_hot.reshape(2, 64), np.array([0, 7]), 4, 16, 16)
    np.testing.assert_allclose(out, [[-8, -24, 56, 72], [56, 24, 56, 24]])
    assert out.dtype == np.float32


def test_rdk_yolov8_from_raw_values():
    outputs = []
    for s, gh, gw in grids((64, 64)):
        cls = np.full((1, gh, gw, 2), -20.0, np.float32)
        box = np.zeros((1, gh, gw, 64), np.float32)
        if s == 8:
            cls[0, 2, 3] = [-1.0, 2.0]  # sigmoid(2) = 0.8808
        outputs += [cls, box]
    [raw] = create_decoder('rdk_yolov8').decode(outputs, (64, 64), 0.5)
    np.testing.assert_allclose(raw.boxes, [[-32, -40, 88, 80]])
    np.testing.assert_allclose(raw.scores, [1 / (1 + math.exp(-2))], rtol=1e-6)
    assert raw.class_ids.tolist() == [1]


def test_rknn_yolov5_from_raw_values():
    outputs = [np.zeros((1, 3 * 7, gh, gw), np.float32) for _, gh, gw in grids((64, 64))]
    outputs[1][0, 7:14, 1, 2] = [0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 0.6]  # stride 16, anchor 1
    [raw] = create_decoder('rknn_yolov5').decode(outputs, (64, 64), 0.25)
    # xy = (0.5*2 - 0.5 + cell) * 16 = (40, 24); wh = (0.5*2)^2 * anchor (62, 45)
    np.testing.assert_allclose(raw.boxes, [[40 - 31, 24 - 22.5, 40 + 31, 24 + 22.5]])
    np.testing.assert_allclose(raw.scores, [0.3], rtol=1e-6)
    assert raw.class_ids.tolist() == [1]


def test_rdk_yolov5_applies_sigmoid_to_every_value():
    outputs = [np.full((1, gh, gw, 3 * 6), -20.0, np.float32) for _, gh, gw in grids((64, 64))]
    outputs[0][0, 4, 5, 6:12] = [0.0, 0.0, 0.0, 0.0, 3.0, 1.0]  # stride 8, anchor 1 (16, 30)
    [raw] = create_decoder('rdk_yolov5').decode(outputs, (64, 64), 0.5)
    sig = [1 / (1 + math.exp(-v)) for v in (3.0, 1.0)]
    cx, cy = (0.5 * 2 - 0.5 + 5) * 8, (0.5 * 2 - 0.5 + 4) * 8
    np.testing.assert_allclose(raw.boxes, [[cx - 8, cy - 15, cx + 8, cy + 15]], rtol=1e-6)
    np.testing.assert_allclose(raw.scores, [sig[0] * sig[1]], rtol=1e-6)


@pytest.mark.parametrize('name', ['rdk_yolov8', 'rdk_yolov5'])
def test_logits_just_above_the_threshold_pass_the_logit_prefilter(name):
    """Cells are filtered on logits before sigmoid: one scoring 0.5000125 stays."""
    outputs = [np.full(o.shape, -20.0, np.float32)
               for o in outputs_for(name, [[]], input_size=(64, 64))]
    if name == 'rdk_yolov8':
        outputs[0][0, 1, 1, 2] = 5e-5
    else:
        outputs[0][0, 1, 1, 4:7] = [5e-5, 30.0, -20.0]  # objectness, classes 0 and 1
    [raw] = create_decoder(name).decode(outputs, (64, 64), 0.5)
    assert len(raw.scores) == 1 and 0.5 < raw.scores[0] < 0.50002


def test_custom_strides_and_reg_max():
    strides = (8, 16, 32, 64)
    box = Det((40, 40, 100, 90), 1, 0.9)
    outputs = dfl_outputs([[box]], 'rknn_yolov8', strides=strides, reg_max=8)
    decoder = create_decoder('rknn_yolov8', strides=strides, reg_max=8)
    [raw] = decoder.decode(outputs, INPUT, 0.5)
    assert_detections(raw, [box], 'rknn_yolov8')
    with pytest.raises(OutputLayoutError, match='stride 64 needs 2 or 3 output.s. of grid 6x5'):
        decoder.decode(outputs[:7] + outputs[5:6], INPUT, 0.5)  # 3 at stride 32, 1 at 64


def test_yolov5_custom_anchors():
    anchors = [[20, 20, 40, 40, 60, 60], [80, 80, 100, 100, 120, 120], [200, 200, 250, 250,
                                                                        300, 300]]
    box = Det((100, 100, 190, 180), 2, 0.8)
    outputs = anchor_outputs([[box]], 'rknn_yolov5', anchors=anchors)
    [raw] = create_decoder('rknn_yolov5', anchors=anchors).decode(outputs, INPUT, 0.5)
    assert_detections(raw, [box], 'rknn_yolov5')


# --- score sums (Rockchip) ---------------------------------------------------------------------

def test_score_sum_is_trusted_as_a_bound():
    outputs = dfl_outputs([[A, B]], 'rknn_yolov8', score_sum=True)
    outputs[2][:] = 0.0  # stride 8's score sums say nothing there scores
    [raw] = create_decoder('rknn_yolov8').decode(outputs, INPUT, 0.5)
    assert_empty(raw, 'rknn_yolov8')
    # without stride 8's sums (8 outputs), its class scores are searched in full
    [raw] = create_decoder('rknn_yolov8').decode(outputs[:2] + outputs[3:], INPUT, 0.5)
    assert_detections(raw, [A, B], 'rknn_yolov8')
    no_sums = [o for i, o in enumerate(outputs) if i % 3 != 2]
    [raw] = create_decoder('rknn_yolov8').decode(no_sums, INPUT, 0.5)
    assert_detections(raw, [A, B], 'rknn_yolov8')


def test_single_class_model_with_score_sums():
    box = Det((40, 40, 120, 100), 0, 0.9)
    outputs = dfl_outputs([[box]], 'rknn_yolov8', score_sum=True, num_classes=1)
    [raw] = create_decoder('rknn_yolov8', num_classes=1).decode(shuffled(outputs), INPUT, 0.5)
    assert_detections(raw, [box], 'rknn_yolov8')


# --- garbage in: no detection or a layout error ------------------------------------------------

@pytest.mark.parametrize('name', DFL)
@pytest.mark.parametrize('role,value', [('cls', np.nan), ('cls', np.inf), ('box', np.nan),
                                        ('box', -np.inf), ('box', np.inf), ('sum', np.nan)])
def test_dfl_non_finite_values_give_no_detection(name, role, value):
    outputs = dfl_outputs([[A, B]], name, score_sum=True)
    row, col, _ = dfl_place(A.box, 8)
    index = {'cls': 0, 'box': 1, 'sum': 2} if name.startswith('rdk') else \
        {'box': 0, 'cls': 1, 'sum': 2}
    target = outputs[index[role]]
    if LAYOUT[name] == 'nhwc':
        target[0, row, col, A.cls if role == 'cls' else 0] = value
    else:
        target[0, A.cls if role == 'cls' else 0, row, col] = value
    [raw] = create_decoder(name).decode(outputs, INPUT, 0.5)
    assert_detections(raw, [B], name)


@pytest.mark.parametrize('name', ANCHOR)
@pytest.mark.parametrize('field,value', [(4, np.nan), (0, np.nan), (3, np.inf), (5, -np.inf),
                                         (6, np.nan)])
def test_yolov5_non_finite_values_give_no_detection(name, field, value):
    outputs = anchor_outputs([[A, B]], name)
    k, a = anchor_place(A.box)
    s = STRIDES[k]
    col, row = int((A.box[0] + A.box[2]) / 2 / s), int((A.box[1] + A.box[3]) / 2 / s)
    channel = a * (5 + NUM_CLASSES) + field
    if LAYOUT[name] == 'nhwc':
        outputs[k][0, row, col, channel] = value
    else:
        outputs[k][0, channel, row, col] = value
    [raw] = create_decoder(name).decode(outputs, INPUT, 0.5)
    assert_detections(raw, [B], name)


def replace(outputs, index, array):
    return outputs[:index] + [array] + outputs[index + 1:]


def first_dim_2(o):
    return np.concatenate([o, o])


@pytest.mark.parametrize('name,change,message', [
    ('rdk_yolov8', lambda o: o[:5], 'needs 6 output'),
    ('rdk_yolov8', lambda o: o + [o[0], o[0]], 'stride 8 needs 2 or 3'),
    ('rdk_yolov8', lambda o: [x.transpose(0, 3, 1, 2) for x in o], 'no stride grid'),
    ('rknn_yolov8', lambda o: [x.transpose(0, 2, 3, 1) for x in o], 'another layout'),
    ('rdk_yolov8', lambda o: replace(o, 1, o[1][..., :60]), '4\\*reg_max = 64'),
    ('rdk_yolov8', lambda o: replace(o, 2, o[2][0]), 'must have 4 dimensions'),
    ('rdk_yolov8', lambda o: replace(o, 2, o[2][..., :2]), 'another stride'),
    ('rknn_yolov8', lambda o: replace(o, 1, first_dim_2(o[1])), 'another batch'),
    ('rknn_yolov8', lambda o: o + [o[1]], 'two class maps'),
    ('rknn_yolov5', lambda o: o[:2], 'needs 3 output'),
    ('rknn_yolov5', lambda o: replace(o, 0, o[0][:, :20]), 'not 3 anchors'),
    ('rknn_yolov5', lambda o: replace(o, 0, o[0][:, :, :, :-1]), 'no stride grid'),
    ('rdk_yolov5', lambda o: replace(o, 1, o[1][..., :21]), 'another stride'),
    ('rdk_yolov5', lambda o: [o[0], o[0], o[2]], 'stride 8 needs 1'),
])
def test_wrong_shapes_raise_output_layout_error(name, change, message):
    outputs = change(outputs_for(name, [[A], [B]]))
    with pytest.raises(OutputLayoutError, match=message) as error:
        create_decoder(name).decode(outputs, INPUT, 0.5)
    assert '\n' not in str(error.value)


@pytest.mark.parametrize('name,options,message', [
    ('rdk_yolov8', {'num_classes': 80}, 'num_classes is 80'),
    ('rknn_yolov5', {'num_classes': 80}, 'num_classes is 80'),
    ('rdk_yolov8', {'reg_max': 8}, '4\\*reg_max = 32'),
    ('rknn_yolov8', {'strides': (8, 16)}, 'no stride grid'),
])
def test_options_that_do_not_fit_the_model_raise_output_layout_error(name, options, message):
    with pytest.raises(OutputLayoutError, match=message):
        create_decoder(name, **options).decode(outputs_for(name, [[A]]), INPUT, 0.5)


def test_as_many_classes_as_box_channels_cannot_be_told_apart():
    outputs = dfl_outputs([[A]], 'rdk_yolov8', num_classes=64)
    with pytest.raises(OutputLayoutError, match='cannot be told apart'):
        create_decoder('rdk_yolov8').decode(outputs, INPUT, 0.5)


def test_input_too_small_to_tell_strides_apart():
    outputs = [np.zeros((1, 1, 1, c), np.float32) for c in (3, 64) * 3]
    with pytest.raises(OutputLayoutError, match='too small'):
        create_decoder('rdk_yolov8').decode(outputs, (8, 8), 0.5)


@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('options', [
    {'layout': 'nchwc'}, {'layout': 3}, {'strides': []}, {'strides': [8, 8, 16]},
    {'strides': [8, 0, 32]}, {'num_classes': 0}, {'apply_sigmoid': 'yes'},
    {'nms_threshold': 0.0}, {'max_detections': 0}, {'no_such_option': 1},
])
def test_bad_options_raise_config_error(name, options):
    with pytest.raises(ConfigError):
        create_decoder(name, **options)


@pytest.mark.parametrize('options', [{'anchors': [[10, 13], [16, 30]]}, {'anchors': 'big'},
                                     {'anchors': [[10, -13, 16, 30, 33, 23]] * 3},
                                     {'reg_max': 0}])
def test_bad_head_options_raise_config_error(options):
    name = 'rknn_yolov8' if 'reg_max' in options else 'rknn_yolov5'
    with pytest.raises(ConfigError):
        create_decoder(name, **options)


def test_layout_and_sigmoid_options_override_the_zoo():
    """The RDK layout and logits decoded by the Rockchip name with options, and back."""
    images = [[A, D]]
    rdk = dfl_outputs(images, 'rdk_yolov8')
    [raw] = create_decoder('rknn_yolov8', layout='NHWC', apply_sigmoid=True).decode(rdk, INPUT,
                                                                                    0.5)
    assert_detections(raw, images[0], 'rknn_yolov8')
    rknn = anchor_outputs(images, 'rknn_yolov5')
    [raw] = create_decoder('rdk_yolov5', layout='nchw', apply_sigmoid=False).decode(rknn, INPUT,
                                                                                    0.5)
    assert_detections(raw, images[0], 'rdk_yolov5')


# --- properties --------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(ALL), outputs=st.lists(tensors(), min_size=0, max_size=9),
       threshold=st.sampled_from([0.0, 0.25, 0.5, 0.99]))
def test_garbage_outputs_never_raise_anything_else(name, outputs, threshold):
    try:
        results = create_decoder(name).decode(outputs, (64, 48), threshold)
    except OutputLayoutError as exc:
        assert '\n' not in str(exc)
        return
    for raw in results:
        assert raw.boxes.shape[1:] == (4,) and len(raw.scores) == len(raw.boxes)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(ALL), seed=st.integers(0, 2 ** 31 - 1),
       special=st.sampled_from(SPECIAL), threshold=st.sampled_from([0.0, 0.25, 0.5]))
def test_well_shaped_outputs_with_bad_values(name, seed, special, threshold):
    """Random values of the right shapes with one special value: finite detections only."""
    rng = np.random.default_rng(seed)
    outputs = [rng.normal(0, 4, o.shape).astype(np.float32)
               for o in outputs_for(name, [[], []], input_size=(64, 48))]
    target = outputs[int(rng.integers(0, len(outputs)))]
    target.reshape(-1)[int(rng.integers(0, target.size))] = special
    results = create_decoder(name).decode(outputs, (64, 48), threshold)
    assert len(results) == 2
    for raw in results:
        assert np.isfinite(raw.boxes).all() and np.isfinite(raw.scores).all()
        assert (raw.scores > threshold).all()
        assert raw.boxes.dtype == np.float32 and raw.class_ids.dtype == np.int64
