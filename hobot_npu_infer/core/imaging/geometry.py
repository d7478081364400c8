"""The exact mapping between an original image and the model input it was resized into."""

from dataclasses import dataclass
from typing import Tuple

from hobot_npu_infer.core.errors import ConfigError
import numpy as np


@dataclass(frozen=True)
class ImageTransform:
    """Model-input pixel = source pixel * scale + pad, per axis (OpenCV's resize convention)."""

    source_size: Tuple[int, int]  # (width, height) of the original image
    scale_x: float
    scale_y: float
    pad_x: int = 0
    pad_y: int = 0

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) x1 y1 x2 y2 boxes back to the original image, clipped to it."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_y) / self.scale_y
        w, h = self.source_size
        np.clip(out[:, 0::2], 0, w, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, h, out=out[:, 1::2])
        return out

    def points_to_source(self, points: np.ndarray) -> np.ndarray:
        """
        Map (..., 2) x y points back to the original image.

        Not clipped: landmarks may be out.
        """
        out = np.empty_like(points, dtype=np.float32)
        out[..., 0] = (points[..., 0] - self.pad_x) / self.scale_x
        out[..., 1] = (points[..., 1] - self.pad_y) / self.scale_y
        return out


def fit(source_size: Tuple[int, int], target_size: Tuple[int, int], mode: str) -> ImageTransform:
    """
    Where an image of ``source_size`` lands inside ``target_size``.

    ``stretch`` scales each axis to fill; ``letterbox`` keeps the aspect ratio and centres the
    image between pad bands; ``crop`` scales the short side to fit and cuts the long side's
    ends off (a negative pad), as classifiers are fed (torchvision's Resize then CenterCrop).
    Scales are the resized pixel size over the source size, exactly what ``cv2.resize`` maps
    with, so mapping back has no rounding error.
    """
    w, h = source_size
    tw, th = target_size
    if mode == 'stretch':
        return ImageTransform(source_size, tw / w, th / h)
    if mode == 'crop':
        s = max(tw / w, th / h)
        nw, nh = (tw, max(th, int(h * s))) if tw / w >= th / h else (max(tw, int(w * s)), th)
        return ImageTransform(source_size, nw / w, nh / h, -int(round((nw - tw) / 2)),
                              -int(round((nh - th) / 2)))
    s = min(tw / w, th / h)
    nw, nh = min(tw, max(1, round(w * s))), min(th, max(1, round(h * s)))
    return ImageTransform(source_size, nw / w, nh / h, (tw - nw) // 2, (th - nh) // 2)


def parse_size(text: str) -> Tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ConfigError(f'size must look like 640x480, got {text!r}') from None
    if w < 1 or h < 1:
        raise ConfigError(f'size must be positive, got {text!r}')
    return w, h
