"""CenterFace: stride-4 heatmap, log-scale box size, centre offset and 5 landmarks per cell."""

from types import MappingProxyType
from typing import Sequence, Tuple

from hobot_npu_infer.core.decoders.base import Decoder, expect_rank, register_decoder
from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import OutputLayoutError
import numpy as np

STRIDE = 4


@register_decoder('centerface')
class CenterFaceDecoder(Decoder):
    """
    Decoder of CenterFace face detection outputs.

    Outputs in order: heatmap [B,1,h,w], scale [B,2,h,w], offset [B,2,h,w] and, optionally,
    landmarks [B,10,h,w] (a packed model's face head may leave them to a slower head).
    """

    preprocess = MappingProxyType({'resize': 'stretch', 'size_multiple': 32,
                                   'channel_order': 'rgb'})
    default_nms_threshold = 0.3
    num_keypoints = 5
    num_outputs = 3

    def candidates(self, outputs: Sequence[np.ndarray], b: int, input_size: Tuple[int, int],
                   score_threshold: float) -> RawDetections:
        heatmap, scale, offset = outputs[:3]
        landmarks = outputs[3] if len(outputs) > 3 else None
        for array, name, channels in zip(outputs[:4], ('heatmap', 'scale', 'offset', 'landmarks'),
                                         (1, 2, 2, 10)):
            expect_rank(array, 4, f'centerface {name}')
            if array.shape[1] != channels or array.shape[0] != heatmap.shape[0] \
                    or array.shape[2:] != heatmap.shape[2:]:
                raise OutputLayoutError(
                    f'centerface {name} must be [B, {channels}, h, w] like the heatmap '
                    f'{heatmap.shape}, got shape {array.shape}')
        ys, xs = np.nonzero(heatmap[b, 0] > score_threshold)
        if ys.size == 0:
            return RawDetections.empty(self.num_keypoints if landmarks is not None else 0)
        w_in, h_in = input_size
        box_h = np.exp(scale[b, 0, ys, xs]) * STRIDE
        box_w = np.exp(scale[b, 1, ys, xs]) * STRIDE
        x0 = (xs + offset[b, 1, ys, xs] + 0.5) * STRIDE - box_w / 2  # unclipped top left
        y0 = (ys + offset[b, 0, ys, xs] + 0.5) * STRIDE - box_h / 2
        # Clip each edge on its own: clipping x1 first and adding the width would shift boxes
        # that cross the left or top border instead of cutting them.
        x1, x2 = np.clip(x0, 0, w_in), np.clip(x0 + box_w, 0, w_in)
        y1, y2 = np.clip(y0, 0, h_in), np.clip(y0 + box_h, 0, h_in)
        keypoints = None
        if landmarks is not None:
            lm = landmarks[b][:, ys, xs].T.reshape(-1, 5, 2)  # (N, 5, [dy, dx])
            keypoints = np.stack([lm[:, :, 1] * box_w[:, None] + x0[:, None],
                                  lm[:, :, 0] * box_h[:, None] + y0[:, None]],
                                 axis=2).astype(np.float32)
        boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
        return RawDetections(boxes, heatmap[b, 0, ys, xs].astype(np.float32),
                             np.zeros(ys.size, np.int64), keypoints)
