"""
NV12, the image format of cameras and of BPU camera models, to and from BGR/RGB.

An NV12 image of H x W pixels is one (H*3/2, W) uint8 array: the Y plane (H rows), then H/2 rows
of interleaved U, V samples, one pair per 2x2 pixels. Colours follow OpenCV's I420/NV12 codes
(BT.601, limited range), so the conversion is exactly OpenCV's I420 re-interleaved.
"""

from typing import Optional, Tuple

import cv2
from hobot_npu_infer.core.errors import ImageError
import numpy as np

_TO_I420 = {'bgr': cv2.COLOR_BGR2YUV_I420, 'rgb': cv2.COLOR_RGB2YUV_I420}


def nv12_rows(height: int) -> int:
    """Rows of the (rows, W) array that holds an NV12 image ``height`` pixels high."""
    return height * 3 // 2


def pixel_size(nv12: np.ndarray) -> Tuple[int, int]:
    """(W, H) in pixels of an NV12 array, checked: 2-D, even width and even height."""
    if nv12.ndim != 2 or nv12.size == 0 or nv12.shape[0] % 3 or nv12.shape[1] % 2:
        raise ImageError(f'NV12 array of shape {nv12.shape} is not (H*3/2, W) with an even, '
                         f'non-zero width and height')
    return nv12.shape[1], nv12.shape[0] * 2 // 3


def bgr_to_nv12(image: np.ndarray, order: str = 'bgr',
                out: Optional[np.ndarray] = None) -> np.ndarray:
    """
    Convert a HxWx3 uint8 image in channel ``order`` ('bgr' or 'rgb'; even H and W) to NV12.

    Written into ``out`` when given (any (H*3/2, W) uint8 view, such as one slot of a batch
    tensor), else into a new array; returns it.
    """
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        raise ImageError(f'NV12 needs an even width and height, got {width}x{height}')
    i420 = cv2.cvtColor(image, _TO_I420[order])  # Y rows, then the U plane, then the V plane
    if out is None:
        out = np.empty((nv12_rows(height), width), np.uint8)
    out[:height] = i420[:height]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    out[height:, 0::2] = chroma[0]
    out[height:, 1::2] = chroma[1]
    return out


def nv12_to_bgr(nv12: np.ndarray) -> np.ndarray:
    """Convert an NV12 array (rows may be a strided view) to a new HxWx3 BGR image."""
    pixel_size(nv12)
    return cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)
