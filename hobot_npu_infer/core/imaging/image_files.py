"""Reading image files with an error that names the file and the problem."""

import os

import cv2
from hobot_npu_infer.core.errors import ImageError
import numpy as np


def read_image(path: str) -> np.ndarray:
    """Read the image at ``path`` as BGR uint8 (grey files stay single-channel)."""
    try:
        data = np.fromfile(path, np.uint8)
    except FileNotFoundError:
        raise ImageError(f'image file not found: {path}') from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise ImageError(f'cannot read image {path}: {exc.strerror or exc}') from None
    if data.size == 0:
        raise ImageError(f'image file is empty (0 bytes): {path}')
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f'cannot decode image {path}: not a readable image file '
                         f'({os.path.getsize(path)} bytes)')
    if image.size == 0:
        raise ImageError(f'image has no pixels: {path}')
    if image.dtype != np.uint8:  # 16-bit PNG and the like
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return image


def write_image(path: str, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(os.path.splitext(path)[1] or '.png', image)
    if not ok:
        raise ImageError(f'cannot encode image for {path}')
    encoded.tofile(path)
