"""
End-to-end YOLO outputs: the model picked its detections itself, so there is no NMS.

YOLOv10, YOLO26 exported with ``nms=False`` and any Ultralytics export with ``nms=True`` give
``[B, N, 6 + extra]``: x1 y1 x2 y2 score class, then the task's values (see ``yolo_tasks``); obb
gives cx cy w h score class angle. As Ultralytics does, detections scoring above the threshold
are kept in the model's order, the first ``max_detections`` of them.
"""

from typing import Sequence, Tuple

from hobot_npu_infer.core.decoders.base import (
    cxcywh_to_xyxy,
    expect_rank,
    first,
    MultiClassDecoder,
    register_decoder,
    YOLO_PREPROCESS,
)
from hobot_npu_infer.core.decoders.yolo_tasks import DetectHead, ObbHead, PoseHead, SegmentHead
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import OutputLayoutError
import numpy as np


@register_decoder('yolo_end2end')
class YoloEnd2EndDecoder(DetectHead, MultiClassDecoder):
    """``[B, N, 6]``: x1 y1 x2 y2 score class per detection, already suppressed."""

    preprocess = YOLO_PREPROCESS
    default_score_threshold = 0.25

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        output = self.predictions_output(outputs)
        channels = 6 + self.extra_channels(outputs)
        expect_rank(output, 3, f'{self.name} output')
        if output.shape[2] != channels:
            box = 'cx cy w h' if self.centre_boxes else 'x1 y1 x2 y2'
            raise OutputLayoutError(
                f'{self.name} output of shape {output.shape} must be [B, N, {channels}]: '
                f'{box} score class{self.extra_names}')
        pred = output[b]
        pred = pred[(pred[:, 4] > score_threshold) & np.isfinite(pred[:, 5])]
        class_ids = np.rint(pred[:, 5]).astype(np.int64)
        if self.num_classes is not None and len(class_ids) \
                and not 0 <= class_ids.min() <= class_ids.max() < self.num_classes:
            raise OutputLayoutError(
                f'{self.name} output of shape {output.shape} has class ids '
                f'{class_ids.min()}..{class_ids.max()}, num_classes is {self.num_classes}')
        boxes = cxcywh_to_xyxy(pred[:, :4]) if self.centre_boxes else pred[:, :4]
        raw = RawDetections(boxes.astype(np.float32), pred[:, 4].astype(np.float32), class_ids)
        return self.attach(raw, pred[:, 6:], outputs, b)

    def suppress(self, raw: RawDetections) -> np.ndarray:
        return first(raw, self.max_detections)


@register_decoder('yolo_end2end_seg')
class YoloEnd2EndSegDecoder(SegmentHead, YoloEnd2EndDecoder):
    """``[B, N, 6+M]`` and prototypes ``[B, M, h, w]``: M mask coefficients after the class."""


@register_decoder('yolo_end2end_pose')
class YoloEnd2EndPoseDecoder(PoseHead, YoloEnd2EndDecoder):
    """``[B, N, 6+K*D]``: K keypoints (x y, visibility when D is 3) after the class."""


@register_decoder('yolo_end2end_obb')
class YoloEnd2EndObbDecoder(ObbHead, YoloEnd2EndDecoder):
    """``[B, N, 7]``: cx cy w h score class angle (radians)."""
