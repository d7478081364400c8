"""
Where a test or demo camera gets its frames.

A sample photo, an image file, a directory of images, or a video file, each as an endless
(looping) sequence of BGR frames.
"""

import os
from typing import Iterator, List, Optional, Tuple

import cv2
from hobot_npu_infer.core.errors import ImageError
from hobot_npu_infer.core.imaging.image_files import read_image
from hobot_npu_infer.core.imaging.sample_images import load_sample, SAMPLE_NAMES
import numpy as np

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v')


def _fit(frame: np.ndarray, size: Optional[Tuple[int, int]]) -> np.ndarray:
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if size and (frame.shape[1], frame.shape[0]) != tuple(size):
        frame = cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)
    return frame


def list_images(directory: str) -> List[str]:
    paths = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                   if n.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise ImageError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in directory {directory}')
    return paths


def frames(spec: str, size: Optional[Tuple[int, int]] = None, loop: bool = True
           ) -> Iterator[np.ndarray]:
    """Frames of ``spec`` resized to ``size`` (W, H) when given; stills are decoded once."""
    if spec in SAMPLE_NAMES:
        stills = [_fit(load_sample(spec), size)]
    elif os.path.isdir(spec):
        stills = [_fit(read_image(p), size) for p in list_images(spec)]
    elif spec.lower().endswith(VIDEO_EXTENSIONS):
        return _video_frames(spec, size, loop)
    elif os.path.isfile(spec):
        stills = [_fit(read_image(spec), size)]
    else:
        raise ImageError(f'image source {spec!r} is not a sample name '
                         f'({", ".join(SAMPLE_NAMES)}), a file or a directory')
    return _cycle(stills, loop)


def _cycle(stills: List[np.ndarray], loop: bool) -> Iterator[np.ndarray]:
    while True:
        yield from stills
        if not loop:
            return


def _video_frames(path: str, size, loop: bool) -> Iterator[np.ndarray]:
    if not os.path.isfile(path):
        raise ImageError(f'video file not found: {path}')
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ImageError(f'cannot open video {path}')

    def generate():
        try:
            count = 0
            while True:
                ok, frame = capture.read()
                if ok:
                    count += 1
                    yield _fit(frame, size)
                    continue
                if not loop or count == 0:
                    return
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                count = 0
        finally:
            capture.release()
    return generate()
