"""CenterFace: stride-4 heatmap, log-scale box size, centre offset and 5 landmarks per cell."""

from typing import Sequence, Tuple

import numpy as np

from ..detection import RawDetections
from .base import Decoder, expect_rank, register_decoder

STRIDE = 4


@register_decoder('centerface')
class CenterFaceDecoder(Decoder):
    """Outputs in order: heatmap [B,1,h,w], scale [B,2,h,w], offset [B,2,h,w], landmarks [B,10,h,w]."""

    num_keypoints = 5
    num_outputs = 4

    def __init__(self, nms_threshold: float = 0.3, max_detections: int = 300):
        super().__init__(nms_threshold, max_detections)

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        heatmap, scale, offset, landmarks = outputs[:4]
        for array, name in zip(outputs[:4], ('heatmap', 'scale', 'offset', 'landmarks')):
            expect_rank(array, 4, f'centerface {name}')
        ys, xs = np.nonzero(heatmap[b, 0] > score_threshold)
        if ys.size == 0:
            return RawDetections.empty(self.num_keypoints)
        w_in, h_in = input_size
        box_h = np.exp(scale[b, 0, ys, xs]) * STRIDE
        box_w = np.exp(scale[b, 1, ys, xs]) * STRIDE
        x1 = np.clip((xs + offset[b, 1, ys, xs] + 0.5) * STRIDE - box_w / 2, 0, w_in)
        y1 = np.clip((ys + offset[b, 0, ys, xs] + 0.5) * STRIDE - box_h / 2, 0, h_in)
        x2 = np.minimum(x1 + box_w, w_in)
        y2 = np.minimum(y1 + box_h, h_in)
        lm = landmarks[b][:, ys, xs].T.reshape(-1, 5, 2)  # (N, 5, [dy, dx])
        keypoints = np.stack([lm[:, :, 1] * box_w[:, None] + x1[:, None],
                              lm[:, :, 0] * box_h[:, None] + y1[:, None]], axis=2)
        boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
        return RawDetections(boxes, heatmap[b, 0, ys, xs].astype(np.float32),
                             np.zeros(ys.size, np.int64), keypoints.astype(np.float32))
