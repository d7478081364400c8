"""
YOLO heads of the NPU vendors' model zoos: per-stride outputs, decoded on the CPU.

The zoos cut the decode step off their YOLO models (it quantises badly, and on a few candidates
it is cheap on the CPU) and leave raw outputs per stride. Outputs are matched to strides by their
grid, ``ceil(input / stride)``, so any export order works; the backend de-quantises, so every
output arrives as floats. Verified against (paths in the vendors' GitHub repositories):

* D-Robotics ``rdk_model_zoo`` (``rdk_*``, NHWC, raw logits):
  YOLOv8/YOLO11 -- ``demos/detect/YOLOv8/YOLOv8_Detect.py``,
  ``demos/detect/YOLOv8/YOLOv8-Detect_YUV420SP/YOLOv8_Detect_YUV420SP.py``,
  ``demos/detect/YOLO11/YOLO11-Detect_YUV420SP/YOLOv11_Detect_YUV420SP.py`` and
  ``demos/detect/YOLOv8/README.md``: per stride a class map ``[B,H,W,C]`` (score = sigmoid) and
  a box distribution ``[B,H,W,4*16]`` (S32 with per-channel scales, boxes listed first in the
  README, classes first in the demos). YOLOv5 -- ``demos/detect/YOLOv5/YOLOv5_Detect.py`` and
  ``README_cn.md``: ``[B,H,W,3*(5+C)]`` per stride, anchor-major channels, sigmoid on every value.
* Rockchip ``rknn_model_zoo`` (``rknn_*``, NCHW; RV1106/RV1103 builds are NHWC; the model applies
  sigmoid): YOLOv8/YOLO11 -- ``examples/yolov8/python/yolov8.py``,
  ``examples/yolo11/python/yolo11.py``, ``examples/yolov8/cpp/postprocess.cc`` and the export head
  in ``airockchip/ultralytics_yolov8`` ``ultralytics/nn/modules/head.py``: per stride box
  ``[B,64,H,W]``, class scores ``[B,C,H,W]`` and, optionally, ``score_sum = clamp(sum of class
  scores, 0, 1)`` ``[B,1,H,W]``, which bounds the best class score and so filters cells fast.
  YOLOv5 -- ``examples/yolov5/python/yolov5.py`` and ``examples/yolov5/cpp/postprocess.cc``:
  ``[B,3*(5+C),H,W]`` per stride, anchors 10,13 16,30 33,23 / 30,61 62,45 59,119 /
  116,90 156,198 373,326.

DFL (YOLOv8, YOLO11): per side (left, top, right, bottom) ``reg_max`` logits; softmax, expectation
of the bin index, times the stride; the anchor is the cell centre (column + 0.5, row + 0.5).
YOLOv5: ``xy = (2 p_xy - 0.5 + cell) * stride``, ``wh = (2 p_wh)^2 * anchor``, score =
objectness * best class probability. Both zoos agree on the formulas; they differ in layout and in
whether sigmoid is left to the CPU, which are options here.
"""

from abc import abstractmethod
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders.base import (
    cxcywh_to_xyxy,
    expect_rank,
    MultiClassDecoder,
    register_decoder,
    YOLO_PREPROCESS,
)
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
import numpy as np

LAYOUTS = ('nhwc', 'nchw')
DEFAULT_STRIDES = (8, 16, 32)
YOLOV5_ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119),
                  (116, 90, 156, 198, 373, 326))
# Cells are first filtered on raw logits against logit(threshold) lowered by this much (sigmoid
# changes by at most a quarter of it, far above rounding), then exactly on the sigmoid score.
LOGIT_MARGIN = 1e-4


def logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def dfl_boxes(distributions: np.ndarray, cells: np.ndarray, grid_w: int, stride: int,
              reg_max: int) -> np.ndarray:
    """
    Return x1 y1 x2 y2 in input pixels from (k, 4*reg_max) box distributions.

    The distributions are those of the flat cells ``cells``.
    """
    logits = distributions.reshape(-1, 4, reg_max).astype(np.float64)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))  # softmax, without overflow
    ltrb = (weights @ np.arange(reg_max, dtype=np.float64)) / weights.sum(axis=2)
    cx = cells % grid_w + 0.5
    cy = cells // grid_w + 0.5
    boxes = np.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], axis=1)
    return (boxes * stride).astype(np.float32)


class Level(NamedTuple):
    """The outputs of one stride, in model order."""

    stride: int
    grid_w: int
    indices: Tuple[int, ...]


class PerStrideDecoder(MultiClassDecoder):
    """Outputs per stride, matched by grid; the registered names configure layout and sigmoid."""

    preprocess = YOLO_PREPROCESS
    default_score_threshold = 0.25
    layout = 'nhwc'  # the zoo's default; an option overrides it
    apply_sigmoid = True
    outputs_per_stride: Tuple[int, ...] = (1,)

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 num_classes: Optional[int] = None, strides: Sequence[int] = DEFAULT_STRIDES,
                 layout: Optional[str] = None, apply_sigmoid: Optional[bool] = None,
                 agnostic_nms: bool = False):
        super().__init__(nms_threshold, max_detections, num_classes, agnostic_nms)
        strides = tuple(strides)
        if not strides or any(not isinstance(s, int) or s < 1 for s in strides) \
                or len(set(strides)) != len(strides):
            raise ConfigError(f'{self.name} strides must be distinct positive integers, '
                              f'got {list(strides)}')
        if layout is not None:
            if not isinstance(layout, str) or layout.lower() not in LAYOUTS:
                raise ConfigError(f'{self.name} layout must be one of {LAYOUTS}, got {layout!r}')
            self.layout = layout.lower()
        if apply_sigmoid is not None:
            if not isinstance(apply_sigmoid, bool):
                raise ConfigError(f'{self.name} apply_sigmoid must be true or false, '
                                  f'got {apply_sigmoid!r}')
            self.apply_sigmoid = apply_sigmoid
        self.strides = strides
        self.num_outputs = len(strides) * min(self.outputs_per_stride)
        self._plan: Tuple[object, object] = (None, None)  # (shapes and input size, plan)

    # --- layout ---------------------------------------------------------------------------------

    def grid_and_channels(self, shape: Tuple[int, ...]) -> Tuple[int, int, int]:
        return (shape[1], shape[2], shape[3]) if self.layout == 'nhwc' else \
            (shape[2], shape[3], shape[1])

    def cells(self, output: np.ndarray) -> np.ndarray:
        """One image's ``[H,W,C]`` or ``[C,H,W]`` output as (H*W, C), a view where possible."""
        if self.layout == 'nhwc':
            return output.reshape(-1, output.shape[2])
        return output.reshape(output.shape[0], -1).T

    def raw_threshold(self, score_threshold: float) -> float:
        """Return a raw-value bound that every cell scoring above ``score_threshold`` passes."""
        return logit(score_threshold) - LOGIT_MARGIN if self.apply_sigmoid else score_threshold

    def plan(self, outputs: Sequence[np.ndarray], input_size: Tuple[int, int]):
        """Return the per-stride roles of the outputs, worked out once per set of shapes."""
        key = (tuple(o.shape for o in outputs), tuple(input_size))
        cached_key, plan = self._plan
        if cached_key != key:
            plan = self.assign_roles(outputs, self.levels(outputs, input_size))
            self._plan = (key, plan)
        return plan

    def levels(self, outputs: Sequence[np.ndarray], input_size: Tuple[int, int]) -> List[Level]:
        w_in, h_in = (int(v) for v in input_size)
        grids: Dict[Tuple[int, int], List[int]] = {}
        for s in self.strides:
            grids.setdefault((-(-h_in // s), -(-w_in // s)), []).append(s)
        expected = ', '.join(f'{gw}x{gh} (stride {"/".join(map(str, ss))})'
                             for (gh, gw), ss in grids.items())
        found: Dict[int, List[int]] = {s: [] for s in self.strides}
        batch = outputs[0].shape[0] if outputs and outputs[0].ndim else 0
        form = '[B, H, W, C]' if self.layout == 'nhwc' else '[B, C, H, W]'
        for i, output in enumerate(outputs):
            expect_rank(output, 4, f'{self.name} output {i} ({self.layout.upper()} {form})')
            if output.shape[0] != batch:
                raise OutputLayoutError(f'{self.name}: output {i} of shape {output.shape} has '
                                        f'another batch than output 0 {outputs[0].shape}')
            gh, gw, _ = self.grid_and_channels(output.shape)
            strides = grids.get((gh, gw), [])
            if len(strides) > 1:
                raise OutputLayoutError(f'{self.name}: the {w_in}x{h_in} input is too small to '
                                        f'tell strides {strides} apart (grids {expected})')
            if not strides:
                raise OutputLayoutError(
                    f'{self.name}: output {i} of shape {output.shape} is no stride grid of the '
                    f'{w_in}x{h_in} input as {self.layout.upper()} {form} (grids W x H: '
                    f'{expected}); another layout option or input size?')
            found[strides[0]].append(i)
        for s, indices in found.items():
            if len(indices) not in self.outputs_per_stride:
                counts = ' or '.join(map(str, self.outputs_per_stride))
                raise OutputLayoutError(
                    f'{self.name}: stride {s} needs {counts} output(s) of grid '
                    f'{-(-w_in // s)}x{-(-h_in // s)}, the model gave {len(indices)} '
                    f'(shapes {[tuple(o.shape) for o in outputs]})')
        return [Level(s, -(-w_in // s), tuple(found[s])) for s in self.strides]

    @abstractmethod
    def assign_roles(self, outputs: Sequence[np.ndarray], levels: List[Level]):
        """Each level's outputs by role, checked; cached with the shapes by :meth:`plan`."""

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        raw_threshold = self.raw_threshold(score_threshold)
        boxes, scores, class_ids = zip(*(
            self.level_candidates(outputs, b, level, score_threshold, raw_threshold)
            for level in self.plan(outputs, input_size)))
        return RawDetections.join(boxes, scores, class_ids)

    @abstractmethod
    def level_candidates(self, outputs: Sequence[np.ndarray], b: int, level,
                         score_threshold: float,
                         raw_threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Boxes, scores and class ids of image ``b`` at one stride (one entry of the plan).

        Each head finds its stride's candidates its own way; gathering them is shared, in
        :meth:`candidates`.
        """

    def check_classes(self, classes: Optional[int], channels: int, what: str) -> int:
        """
        Return the class count a level implies.

        It is checked against the option and the other levels.
        """
        if channels < 1:
            raise OutputLayoutError(f'{self.name}: {what} has no class channels')
        if self.num_classes is not None and channels != self.num_classes:
            raise OutputLayoutError(f'{self.name}: {what} has {channels} classes, '
                                    f'num_classes is {self.num_classes}')
        if classes is not None and channels != classes:
            raise OutputLayoutError(f'{self.name}: {what} has {channels} classes, another '
                                    f'stride {classes}')
        return channels


class DflRoles(NamedTuple):
    stride: int
    grid_w: int
    box: int
    classes: int
    score_sum: Optional[int]


class DflDecoder(PerStrideDecoder):
    """
    Decoder of YOLOv8/YOLO11 heads exported without DFL and decode.

    Per stride a box distribution of ``4*reg_max`` channels, C class scores and optionally a
    one-channel score sum, in any order; thresholds the class scores first and runs DFL on the
    candidate cells only.
    """

    outputs_per_stride = (2, 3)

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 num_classes: Optional[int] = None, strides: Sequence[int] = DEFAULT_STRIDES,
                 layout: Optional[str] = None, apply_sigmoid: Optional[bool] = None,
                 reg_max: int = 16, agnostic_nms: bool = False):
        super().__init__(nms_threshold, max_detections, num_classes, strides, layout,
                         apply_sigmoid, agnostic_nms)
        if not isinstance(reg_max, int) or reg_max < 1:
            raise ConfigError(f'{self.name} reg_max must be a positive integer, got {reg_max!r}')
        self.reg_max = reg_max

    def assign_roles(self, outputs: Sequence[np.ndarray], levels: List[Level]) -> List[DflRoles]:
        box_channels = 4 * self.reg_max
        roles, classes = [], None
        for level in levels:
            channels = {i: self.grid_and_channels(outputs[i].shape)[2] for i in level.indices}
            shapes = [tuple(outputs[i].shape) for i in level.indices]
            boxes = [i for i in level.indices if channels[i] == box_channels]
            if len(boxes) != 1:
                raise OutputLayoutError(
                    f'{self.name}: stride {level.stride} needs one box distribution of '
                    f'4*reg_max = {box_channels} channels, got shapes {shapes}'
                    + ('; with as many classes the two cannot be told apart' if boxes else ''))
            # Class scores first, then a one-channel score sum (for one class the two are equal).
            rest = sorted((i for i in level.indices if i != boxes[0]),
                          key=lambda i: channels[i] == 1)
            score_sum = rest[1] if len(rest) > 1 else None
            if score_sum is not None and channels[score_sum] != 1:
                raise OutputLayoutError(
                    f'{self.name}: stride {level.stride} has two class maps, shapes {shapes} '
                    f'(a third output must be the one-channel score sum)')
            classes = self.check_classes(classes, channels[rest[0]],
                                         f'output {rest[0]} of shape {outputs[rest[0]].shape}')
            roles.append(DflRoles(level.stride, level.grid_w, boxes[0], rest[0], score_sum))
        return roles

    def level_candidates(self, outputs: Sequence[np.ndarray], b: int, level: DflRoles,
                         score_threshold: float,
                         raw_threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        class_cells = self.cells(outputs[level.classes][b])
        if level.score_sum is not None:  # sum >= best class score: a bound to filter on
            cells = np.flatnonzero(self.cells(outputs[level.score_sum][b])[:, 0]
                                   >= score_threshold)
        else:
            cells = np.flatnonzero(class_cells.max(axis=1) > raw_threshold)
        rows = class_cells[cells]
        ids = rows.argmax(axis=1)
        best = rows[np.arange(len(cells)), ids]
        scores = sigmoid(best) if self.apply_sigmoid else best
        keep = (scores > score_threshold) & np.isfinite(best)
        distributions = self.cells(outputs[level.box][b])[cells[keep]]
        finite = np.isfinite(distributions).all(axis=1)
        keep[keep] = finite
        boxes = dfl_boxes(distributions[finite], cells[keep], level.grid_w, level.stride,
                          self.reg_max)
        return boxes, scores[keep], ids[keep]


class AnchorRoles(NamedTuple):
    stride: int
    grid_w: int
    output: int
    anchors: np.ndarray  # (A, 2) w h in input pixels


class AnchorDecoder(PerStrideDecoder):
    """
    Decoder of YOLOv5 heads without decode.

    Per stride ``A*(5+C)`` channels, anchor-major, each anchor's x y w h, objectness and C class
    scores.
    """

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 num_classes: Optional[int] = None, strides: Sequence[int] = DEFAULT_STRIDES,
                 layout: Optional[str] = None, apply_sigmoid: Optional[bool] = None,
                 anchors: Sequence = YOLOV5_ANCHORS, agnostic_nms: bool = False):
        super().__init__(nms_threshold, max_detections, num_classes, strides, layout,
                         apply_sigmoid, agnostic_nms)
        try:
            table = np.asarray(anchors, dtype=np.float64)
            table = table.reshape(len(self.strides), -1, 2)
        except (TypeError, ValueError):
            raise ConfigError(f'{self.name} anchors must be w,h pairs, the same number for each '
                              f'of the {len(self.strides)} strides, got {anchors!r}') from None
        if table.shape[1] < 1 or not np.isfinite(table).all() or (table <= 0).any():
            raise ConfigError(f'{self.name} anchors must be positive w,h pairs for each of the '
                              f'{len(self.strides)} strides, got {anchors!r}')
        self.anchors = table

    def assign_roles(self, outputs: Sequence[np.ndarray],
                     levels: List[Level]) -> List[AnchorRoles]:
        per_cell = self.anchors.shape[1]
        roles, classes = [], None
        for k, level in enumerate(levels):
            i = level.indices[0]
            channels = self.grid_and_channels(outputs[i].shape)[2]
            if channels % per_cell or channels // per_cell < 6:
                raise OutputLayoutError(
                    f'{self.name}: output {i} of shape {outputs[i].shape} has {channels} '
                    f'channels, not {per_cell} anchors x (5 + classes)')
            classes = self.check_classes(classes, channels // per_cell - 5,
                                         f'output {i} of shape {outputs[i].shape}')
            roles.append(AnchorRoles(level.stride, level.grid_w, i, self.anchors[k]))
        return roles

    def level_candidates(self, outputs: Sequence[np.ndarray], b: int, level: AnchorRoles,
                         score_threshold: float,
                         raw_threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        output = outputs[level.output][b]
        per_cell = len(level.anchors)
        if self.layout == 'nhwc':  # [H, W, A*F] -> (A, H*W, F)
            grid = output.reshape(-1, per_cell, output.shape[2] // per_cell).transpose(1, 0, 2)
        else:  # [A*F, H, W] -> (A, H*W, F)
            grid = output.reshape(per_cell, output.shape[0] // per_cell, -1).transpose(0, 2, 1)
        # score = objectness * class score <= objectness: filter on objectness first
        anchor_ids, cells = np.nonzero(grid[:, :, 4] > raw_threshold)
        rows = grid[anchor_ids, cells]
        values = sigmoid(rows) if self.apply_sigmoid else rows.astype(np.float64)
        ids = values[:, 5:].argmax(axis=1)
        scores = values[:, 4] * values[np.arange(len(cells)), 5 + ids]
        keep = (scores > score_threshold) & np.isfinite(rows).all(axis=1)
        values, cells, anchor_ids = values[keep], cells[keep], anchor_ids[keep]
        xy = (values[:, 0:2] * 2 - 0.5
              + np.stack([cells % level.grid_w, cells // level.grid_w], axis=1)) * level.stride
        wh = (values[:, 2:4] * 2) ** 2 * level.anchors[anchor_ids]
        return cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1)), scores[keep], ids[keep]


# --- the zoos' conventions, by name -------------------------------------------------------------

@register_decoder('rdk_yolov8')
class RdkYoloV8Decoder(DflDecoder):
    """
    Decoder of D-Robotics RDK model zoo YOLOv8/YOLO11.

    Per stride class logits [B,H,W,C] and box distribution [B,H,W,64], NHWC, sigmoid on the CPU.
    """

    layout = 'nhwc'
    apply_sigmoid = True


@register_decoder('rknn_yolov8')
class RknnYoloV8Decoder(DflDecoder):
    """
    Decoder of Rockchip rknn_model_zoo YOLOv8/YOLO11.

    Per stride box [B,64,H,W], class scores [B,C,H,W] (sigmoid in the model) and optionally
    score_sum [B,1,H,W], NCHW.
    """

    layout = 'nchw'
    apply_sigmoid = False


@register_decoder('rdk_yolov5')
class RdkYoloV5Decoder(AnchorDecoder):
    """D-Robotics RDK model zoo YOLOv5: per stride [B,H,W,3*(5+C)] logits, NHWC."""

    layout = 'nhwc'
    apply_sigmoid = True


@register_decoder('rknn_yolov5')
class RknnYoloV5Decoder(AnchorDecoder):
    """Rockchip rknn_model_zoo YOLOv5: per stride [B,3*(5+C),H,W], sigmoid in the model, NCHW."""

    layout = 'nchw'
    apply_sigmoid = False
