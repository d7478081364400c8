"""
Image classification: the top classes of the whole image, as detections covering it.

Each class is a box over the whole model input, so mapping back to the source gives the whole
image and every output path (messages, JSON, drawing) carries classes like any detection.
"""

from types import MappingProxyType
from typing import Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders.base import (
    expect_rank,
    first,
    MultiClassDecoder,
    register_decoder,
)
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
import numpy as np


@register_decoder('yolo_cls')
class ClassifyDecoder(MultiClassDecoder):
    """
    ``[B, C]`` class probabilities (Ultralytics exports apply softmax in the graph).

    Keeps the ``top_k`` best classes scoring above the threshold, best first; every class is
    kept by default (threshold 0), as Ultralytics' top-5. Images are fed as Ultralytics feeds a
    classifier: the short side scaled to the input, the long side's ends cropped.
    """

    task = 'classify'
    preprocess = MappingProxyType({'resize': 'crop', 'channel_order': 'rgb', 'scale': 1 / 255})
    default_score_threshold = 0.0

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 num_classes: Optional[int] = None, top_k: int = 5, agnostic_nms: bool = False):
        super().__init__(nms_threshold, max_detections, num_classes, agnostic_nms)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f'{self.name} top_k must be a positive integer, got {top_k!r}')
        self.top_k = top_k

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        output = outputs[0]
        expect_rank(output, 2, f'{self.name} output [B, C] of class probabilities')
        if self.num_classes is not None and output.shape[1] != self.num_classes:
            raise OutputLayoutError(f'{self.name} output of shape {output.shape} has '
                                    f'{output.shape[1]} classes, num_classes is '
                                    f'{self.num_classes}')
        probs = output[b].astype(np.float32)
        order = np.argsort(-probs, kind='stable')[:self.top_k]
        order = order[probs[order] > score_threshold]
        w, h = input_size
        boxes = np.tile(np.array([[0, 0, w, h]], np.float32), (len(order), 1))
        return RawDetections(boxes, probs[order], order.astype(np.int64))

    def suppress(self, raw: RawDetections) -> np.ndarray:
        return first(raw, self.max_detections)
