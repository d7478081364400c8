"""
YOLO heads already decoded to boxes by the exporter.

YOLOv8 (anchor-free) and YOLOv5 (objectness).
"""

from typing import Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders.base import (
    cxcywh_to_xyxy,
    Decoder,
    expect_rank,
    register_decoder,
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


class _DecodedYolo(Decoder):
    """
    One output of predictions, each cx cy w h, ``fields - 4`` more values, then C class scores.

    Both exports differ only there and in how a class score is made, so the rest is shared.
    """

    fields = 4  # channels before the class scores
    channels_first = True  # the exporter's layout, for a square output

    def __init__(self, nms_threshold: float = 0.45, max_detections: int = 300,
                 num_classes: Optional[int] = None):
        super().__init__(nms_threshold, max_detections)
        self.channels = None if num_classes is None else self.fields + num_classes

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        pred = _predictions(outputs[0], b, self.channels, self.fields + 1, self.channels_first,
                            f'{self.name} output')
        pred, class_scores = self.class_scores(pred, score_threshold)
        class_ids = np.argmax(class_scores, axis=1)
        scores = class_scores[np.arange(pred.shape[0]), class_ids]
        keep = scores > score_threshold
        return RawDetections(cxcywh_to_xyxy(pred[keep, :4]), scores[keep].astype(np.float32),
                             class_ids[keep].astype(np.int64))

    def class_scores(self, pred: np.ndarray,
                     score_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        """Return the predictions worth scoring, and the class scores of each of them."""
        return pred, pred[:, 4:]


@register_decoder('yolov8')
class YoloV8Decoder(_DecodedYolo):
    """``[B, 4+C, N]``: cx cy w h then C class scores per anchor point, no objectness."""


@register_decoder('yolov5')
class YoloV5Decoder(_DecodedYolo):
    """``[B, N, 5+C]``: cx cy w h, objectness, then C class probabilities; score = obj * class."""

    fields = 5
    channels_first = False

    def class_scores(self, pred: np.ndarray,
                     score_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        pred = pred[pred[:, 4] > score_threshold]  # objectness bounds the final score
        return pred, pred[:, 5:] * pred[:, 4:5]
