"""
Images to a model's input tensor: resize or letterbox, channel order, layout, dtype, normalisation.

All pixel work is OpenCV or whole-array numpy. The batch tensor is written in place, one image
slot at a time, so no intermediate canvas is allocated per image.

A model whose input is NV12 (BPU camera models) gets a (B, H*3/2, W) uint8 tensor: each image is
resized to the model size in BGR/RGB (letterboxed on a canvas of its own), then converted into
its slot. Images may also arrive as NV12 themselves (channel order 'nv12', a (H*3/2, W) array):
at exactly the model size their bytes are copied untouched; otherwise, and for every other
model, they are decoded to BGR first.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import cv2
from hobot_npu_infer.core.backends.tensors import LAYOUTS, NV12, TensorSpec
from hobot_npu_infer.core.errors import ConfigError, ImageError
from hobot_npu_infer.core.imaging.geometry import fit, ImageTransform
from hobot_npu_infer.core.imaging.nv12 import bgr_to_nv12, nv12_rows, nv12_to_bgr, pixel_size
import numpy as np

RESIZE_MODES = ('letterbox', 'stretch', 'crop')
CHANNEL_ORDERS = ('rgb', 'bgr')


@dataclass
class PreprocessConfig:
    """What the model expects; ``output = (pixel * scale - mean) / std`` per channel."""

    input_size: Optional[Tuple[int, int]] = None  # (W, H); None: the model's own, else the image's
    resize: str = 'letterbox'
    size_multiple: int = 1  # round the target size up to a multiple (32 for stride-32 models)
    channel_order: str = 'rgb'
    layout: Optional[str] = None  # None: from the model's input spec
    dtype: Optional[str] = None  # None: from the model's input spec
    mean: Tuple[float, ...] = (0.0, 0.0, 0.0)
    std: Tuple[float, ...] = (1.0, 1.0, 1.0)
    scale: float = 1.0
    pad_value: int = 114

    def validate(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f'resize must be one of {RESIZE_MODES}, got {self.resize!r}')
        if self.channel_order not in CHANNEL_ORDERS:
            raise ConfigError(
                f'channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}')
        if self.layout is not None and self.layout not in LAYOUTS:
            raise ConfigError(f'layout must be one of {LAYOUTS}, got {self.layout!r}')
        if self.size_multiple < 1:
            raise ConfigError(f'size_multiple must be >= 1, got {self.size_multiple}')
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            raise ConfigError(
                f'input_size must be two positive integers W,H, got {self.input_size}')
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise ConfigError('mean and std need three values each and std must not be zero')
        if not 0 <= self.pad_value <= 255:
            raise ConfigError(f'pad_value must be within 0..255, got {self.pad_value}')
        if self.dtype is not None:
            try:
                kind = np.dtype(self.dtype).kind
            except TypeError:
                kind = None
            if kind not in ('u', 'i', 'f'):
                raise ConfigError(f'dtype must name a numpy integer or float type such as uint8 '
                                  f'or float32, got {self.dtype!r}')


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass
class PreparedBatch:
    tensor: np.ndarray
    transforms: List[ImageTransform] = field(default_factory=list)
    layout: str = 'NCHW'

    @property
    def input_size(self) -> Tuple[int, int]:
        """(W, H) of the model input this batch was prepared for."""
        if self.layout == 'NHWC':
            return self.tensor.shape[2], self.tensor.shape[1]
        if self.layout == NV12:
            return self.tensor.shape[2], self.tensor.shape[1] * 2 // 3
        return self.tensor.shape[3], self.tensor.shape[2]


def source_size(image: np.ndarray, order: str) -> Tuple[int, int]:
    """(W, H) in pixels of an image array in channel ``order`` ('nv12' arrays are H*3/2 rows)."""
    if order == 'nv12':
        return pixel_size(image)
    return image.shape[1], image.shape[0]


def as_three_channels(image: np.ndarray, order: str) -> Tuple[np.ndarray, str]:
    """Grey and 4-channel images become 3-channel ones; returns the image and its channel order."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR), 'bgr'
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3], order  # a view: the alpha channel is ignored
    if image.ndim == 3 and image.shape[2] == 3:
        return image, order
    raise ImageError(f'image of shape {image.shape} is not grey, 3- or 4-channel')


def resize_for(mode: str, image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """
    Resize ``image`` to ``size`` (W, H) as models fed with ``mode`` were trained on.

    Detectors: OpenCV's bilinear (Ultralytics' letterbox). Classifiers (crop): PIL's
    antialiased bilinear, which torchvision's Resize runs and Ultralytics feeds classifiers
    with; OpenCV's filters move a random-weight classifier's top-5 probabilities by up to 0.2.
    """
    if mode != 'crop':
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    from PIL import Image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.BILINEAR))


class Preprocessor:
    """Prepares batches of images for one model input."""

    def __init__(self, config: PreprocessConfig, spec: TensorSpec):
        config.validate()
        self.config = config
        self.layout = config.layout or spec.layout or 'NCHW'
        self.dtype = np.dtype(config.dtype) if config.dtype else np.dtype(spec.dtype)
        if spec.layout == NV12 and (config.layout or self.dtype != np.uint8):
            raise ConfigError(f'model input {spec.name} takes NV12 images: its layout and dtype '
                              f'are fixed (uint8), not {config.layout or self.dtype.name}')
        self.model_size = spec.image_size  # (W, H), None where dynamic
        mean = np.asarray(config.mean, np.float32)
        std = np.asarray(config.std, np.float32)
        gain = np.float32(config.scale) / std
        offset = -mean / std
        self._normalise = not (np.all(gain == 1) and np.all(offset == 0))
        shape = (3, 1, 1) if self.layout == 'NCHW' else (1, 1, 3)
        self._gain = gain.reshape(shape)
        self._offset = offset.reshape(shape)
        if self._normalise and self.dtype.kind != 'f':
            raise ConfigError(f'normalisation needs a float model input, not {self.dtype.name}')

    def target_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """(W, H) the model runs at: configured, else the model's fixed size, else the image's."""
        m = self.config.size_multiple
        if self.config.input_size is not None:
            w, h = self.config.input_size
        else:
            mw, mh = self.model_size
            w, h = mw or image_size[0], mh or image_size[1]
        return round_up(int(w), m), round_up(int(h), m)

    def prepare(self, images: Sequence[np.ndarray],
                channel_orders: Union[str, Sequence[str]] = 'bgr',
                batch_size: Optional[int] = None) -> PreparedBatch:
        """
        Prepare ``images`` as one batch, padded with zero slots to ``batch_size``.

        The images are HxWxC uint8, or (H*3/2)xW in order 'nv12'.
        """
        if not images:
            raise ImageError('no images to prepare')
        orders = [channel_orders] * len(images) if isinstance(channel_orders, str) \
            else list(channel_orders)
        if len(orders) != len(images):
            raise ImageError(f'{len(images)} images but {len(orders)} channel orders')
        first = images[0]
        if first.ndim < 2 or first.shape[0] == 0 or first.shape[1] == 0:
            raise ImageError(f'image of shape {first.shape} has no pixels')
        tw, th = self.target_size(source_size(first, orders[0]))
        n = max(batch_size or len(images), len(images))
        if self.layout == NV12:
            if tw % 2 or th % 2:
                raise ConfigError(f'an NV12 model input needs an even size, got {tw}x{th}')
            shape = (n, nv12_rows(th), tw)
        else:
            shape = (n, 3, th, tw) if self.layout == 'NCHW' else (n, th, tw, 3)
        tensor = np.empty(shape, self.dtype)  # every real slot is fully written by _fill
        tensor[len(images):] = 0
        transforms = [self._fill(tensor[i], image, order, (tw, th))
                      for i, (image, order) in enumerate(zip(images, orders))]
        return PreparedBatch(tensor, transforms, self.layout)

    def _fill(self, slot: np.ndarray, image: np.ndarray, order: str,
              target: Tuple[int, int]) -> ImageTransform:
        if image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ImageError(f'image of shape {image.shape} has no pixels')
        if image.dtype != np.uint8:
            raise ImageError(f'image dtype {image.dtype} is not uint8')
        if order == 'nv12':
            if self.layout == NV12 and image.shape == slot.shape:
                np.copyto(slot, image)  # already what the model takes: the bytes pass untouched
                return fit(target, target, self.config.resize)
            image, order = nv12_to_bgr(image), 'bgr'
        image, order = as_three_channels(image, order)
        h, w = image.shape[:2]
        transform = fit((w, h), target, self.config.resize)
        nw, nh = round(w * transform.scale_x), round(h * transform.scale_y)
        if (nw, nh) != (w, h):
            image = resize_for(self.config.resize, image, (nw, nh))
        x0, y0 = transform.pad_x, transform.pad_y
        if x0 < 0 or y0 < 0:  # crop: the middle of the resized image fills the target
            image = image[-y0:-y0 + target[1], -x0:-x0 + target[0]]
            (nw, nh), x0, y0 = target, 0, 0
        if self.layout == NV12:
            if (nw, nh) != target:
                canvas = np.full((target[1], target[0], 3), self.config.pad_value, np.uint8)
                canvas[y0:y0 + nh, x0:x0 + nw] = image
                image = canvas
            bgr_to_nv12(image, order, out=slot)
            return transform
        if order != self.config.channel_order:
            image = image[:, :, ::-1]
        hwc = slot if self.layout == 'NHWC' else slot.transpose(1, 2, 0)
        if (nw, nh) != target:
            hwc[...] = self.config.pad_value
        np.copyto(hwc[y0:y0 + nh, x0:x0 + nw], image, casting='unsafe')
        if self._normalise:
            slot *= self._gain
            slot += self._offset
        return transform
