"""Real photographs shipped with scikit-image, by name, as BGR arrays."""

from typing import List

import cv2
from hobot_npu_infer.core.errors import ImageError
import numpy as np

SAMPLE_NAMES = ('astronaut', 'camera', 'coffee', 'chelsea', 'rocket', 'cat')


def sample_names() -> List[str]:
    return list(SAMPLE_NAMES)


def load_sample(name: str) -> np.ndarray:
    if name not in SAMPLE_NAMES:
        raise ImageError(f'unknown sample image {name!r}; available: {", ".join(SAMPLE_NAMES)}')
    try:
        import skimage.data
    except ImportError:
        raise ImageError('sample images need scikit-image (pip install scikit-image)') from None
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)


def load_image_or_sample(spec: str) -> np.ndarray:
    """Load a sample photo by name, else an image file by path."""
    if spec in SAMPLE_NAMES:
        return load_sample(spec)
    from hobot_npu_infer.core.imaging.image_files import read_image
    return read_image(spec)
