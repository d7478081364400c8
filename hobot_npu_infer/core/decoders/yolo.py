"""
YOLO heads already decoded to boxes by the exporter, before NMS.

YOLOv8 (anchor-free: YOLOv8, YOLO11, YOLOv5u, YOLO26 without end-to-end) for every task, and
YOLOv5 (objectness). The task's own values follow the class scores (see ``yolo_tasks``).
"""

from typing import Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders.base import (
    cxcywh_to_xyxy,
    expect_rank,
    MultiClassDecoder,
    register_decoder,
    YOLO_PREPROCESS,
)
from hobot_npu_infer.core.decoders.nms import rotated_nms
from hobot_npu_infer.core.decoders.yolo_tasks import (
    DetectHead,
    ObbHead,
    PoseHead,
    SegmentHead,
    xywhr,
)
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import OutputLayoutError
import numpy as np


def _predictions(output: np.ndarray, b: int, channels: Optional[int], min_channels: int,
                 channels_first: bool, what: str) -> np.ndarray:
    """Image ``b``'s predictions as (N, channels); ``channels_first`` is the exporter's layout."""
    expect_rank(output, 3, what)
    pred = output[b]
    if channels is not None:
        if pred.shape[0] == channels and (channels_first or pred.shape[1] != channels):
            pred = pred.T
        elif pred.shape[1] != channels:
            raise OutputLayoutError(f'{what} of shape {output.shape} has no axis of {channels} '
                                    f'channels')
    elif channels_first:
        pred = pred.T
    if pred.shape[1] < min_channels:
        raise OutputLayoutError(f'{what} of shape {output.shape} has fewer than {min_channels} '
                                f'channels per prediction')
    return pred


class _DecodedYolo(DetectHead, MultiClassDecoder):
    """
    One output of predictions, each cx cy w h, ``fields - 4`` more values, C class scores, extras.

    Both exports differ only there and in how a class score is made, so the rest is shared; the
    task head names the extras.
    """

    fields = 4  # channels before the class scores
    channels_first = True  # the exporter's layout, for a square output
    preprocess = YOLO_PREPROCESS
    default_score_threshold = 0.25
    default_nms_threshold = 0.7  # Ultralytics' iou

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        extra = self.extra_channels(outputs)
        channels = None if self.num_classes is None else self.fields + self.num_classes + extra
        pred = _predictions(self.predictions_output(outputs), b, channels,
                            self.fields + 1 + extra, self.channels_first,
                            f'{self.name} output (cx cy w h{" obj" * (self.fields - 4)} + C '
                            f'classes{self.extra_names})')
        end = pred.shape[1] - extra
        pred, class_scores = self.class_scores(pred, end, score_threshold)
        scores = class_scores.max(axis=1)
        keep = scores > score_threshold  # the best class only of these: few, on a strided view
        class_ids = np.argmax(class_scores[keep], axis=1)
        raw = RawDetections(cxcywh_to_xyxy(pred[keep, :4]), scores[keep].astype(np.float32),
                            class_ids.astype(np.int64))
        return self.attach(raw, pred[keep, end:], outputs, b)

    def class_scores(self, pred: np.ndarray, end: int,
                     score_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        """Return the predictions worth scoring, and the class scores (channels to ``end``)."""
        return pred, pred[:, 4:end]


@register_decoder('yolov8')
class YoloV8Decoder(_DecodedYolo):
    """``[B, 4+C, N]``: cx cy w h then C class scores per anchor point, no objectness."""


@register_decoder('yolov5')
class YoloV5Decoder(_DecodedYolo):
    """``[B, N, 5+C]``: cx cy w h, objectness, then C class probabilities; score = obj * class."""

    fields = 5
    channels_first = False
    default_nms_threshold = 0.45  # the YOLOv5 repository's iou_thres

    def class_scores(self, pred: np.ndarray, end: int,
                     score_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        pred = pred[pred[:, 4] > score_threshold]  # objectness bounds the final score
        return pred, pred[:, 5:end] * pred[:, 4:5]


@register_decoder('yolov8_seg')
class YoloV8SegDecoder(SegmentHead, YoloV8Decoder):
    """``[B, 4+C+M, N]`` and prototypes ``[B, M, h, w]``: M mask coefficients after the classes."""


@register_decoder('yolov8_pose')
class YoloV8PoseDecoder(PoseHead, YoloV8Decoder):
    """``[B, 4+C+K*D, N]``: K keypoints (x y, visibility when D is 3) after the classes."""


@register_decoder('yolov8_obb')
class YoloV8ObbDecoder(ObbHead, YoloV8Decoder):
    """``[B, 4+C+1, N]``: the angle in radians after the classes; rotated NMS."""

    def nms(self, raw: RawDetections) -> np.ndarray:
        return rotated_nms(xywhr(raw), raw.scores, self.nms_classes(raw), self.nms_threshold,
                           self.max_detections)
