"""
SSD-style post-processed outputs: boxes, classes and scores already decoded.

Coordinates are 0..1.
"""

from typing import Optional, Sequence, Tuple

from hobot_npu_infer.core.decoders.base import Decoder, expect_rank, register_decoder
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
import numpy as np

ROLES = ('boxes', 'classes', 'scores', 'num_detections')
BOX_ORDERS = ('yxyx', 'xyxy')


@register_decoder('ssd')
class SsdDecoder(Decoder):
    """
    Decoder of SSD outputs, taken by role.

    The default order (boxes, classes, scores[, num_detections]) and the ``yxyx`` box order are
    TensorFlow's detection post-process, as in most SSD exports.
    """

    def __init__(self, nms_threshold: Optional[float] = None, max_detections: int = 300,
                 output_roles: Sequence[str] = ROLES[:3], box_order: str = 'yxyx',
                 class_offset: int = 0, agnostic_nms: bool = False):
        super().__init__(nms_threshold, max_detections, agnostic_nms)
        roles = list(output_roles)
        if sorted(set(roles)) != sorted(roles) or not set(ROLES[:3]) <= set(roles) \
                or not set(roles) <= set(ROLES):
            raise ConfigError(f'ssd output_roles must name boxes, classes and scores once each '
                              f'(num_detections optional), got {roles}')
        if box_order not in BOX_ORDERS:
            raise ConfigError(f'ssd box_order must be one of {BOX_ORDERS}, got {box_order!r}')
        self.index = {role: i for i, role in enumerate(roles)}
        self.num_outputs = len(roles)
        self.box_order = box_order
        self.class_offset = class_offset

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        boxes = outputs[self.index['boxes']]
        expect_rank(boxes, 3, 'ssd boxes')
        if boxes.shape[2] != 4:
            raise OutputLayoutError(f'ssd boxes must be [B, N, 4], got shape {boxes.shape}')
        boxes = boxes[b].astype(np.float32)
        scores = outputs[self.index['scores']][b].reshape(-1).astype(np.float32)
        classes = outputs[self.index['classes']][b].reshape(-1)
        if len(scores) != len(boxes) or len(classes) != len(boxes):
            raise OutputLayoutError(f'ssd scores and classes need one value per box: '
                                    f'{len(boxes)} boxes, {len(scores)} scores, '
                                    f'{len(classes)} classes')
        n = len(boxes)
        if 'num_detections' in self.index:
            n = min(n, int(np.asarray(outputs[self.index['num_detections']]).reshape(-1)[b]))
        boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
        if self.box_order == 'yxyx':
            boxes = boxes[:, [1, 0, 3, 2]]
        w, h = input_size
        boxes = boxes * np.array([w, h, w, h], np.float32)
        keep = scores > score_threshold
        class_ids = np.rint(classes[keep]).astype(np.int64) - self.class_offset
        return RawDetections(boxes[keep], scores[keep], class_ids)
