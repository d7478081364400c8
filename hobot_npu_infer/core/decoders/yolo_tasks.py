"""
What each YOLO task adds to a prediction after its box, score and class.

Ultralytics puts a task's values last in every export, raw (``4 + C + extra`` channels) and
end-to-end (``6 + extra``): mask coefficients (segment), keypoints (pose) or the angle (obb). The
heads here read them, so the raw and the end-to-end layouts share them; a decoder is a layout
class with a head mixed in front of it.
"""

from typing import Sequence

from hobot_npu_infer.core.detection import RawDetections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
import numpy as np


class DetectHead:
    """Boxes, scores and classes only, from the first output."""

    task = 'detect'
    centre_boxes = False  # end-to-end boxes are cx cy w h (obb) rather than x1 y1 x2 y2
    extra_names = ''  # what the extra channels are, for error messages

    def predictions_output(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        return outputs[0]

    def extra_channels(self, outputs: Sequence[np.ndarray]) -> int:
        """Return how many channels follow the class scores (raw) or the class (end-to-end)."""
        return 0

    def attach(self, raw: RawDetections, extras: np.ndarray, outputs: Sequence[np.ndarray],
               b: int) -> RawDetections:
        """Return ``raw`` with the fields read from its rows' extra channels ``extras``."""
        return raw


class SegmentHead(DetectHead):
    """
    M mask coefficients per prediction, and the prototypes ``[B, M, h, w]`` as a second output.

    The outputs may come in either order: the predictions have rank 3, the prototypes rank 4.
    """

    task = 'segment'
    num_outputs = 2
    extra_names = ' + M mask coefficients'

    def split(self, outputs: Sequence[np.ndarray]):
        """Return the predictions and the prototypes, told apart by rank."""
        ranks = [o.ndim for o in outputs[:2]]
        if sorted(ranks) != [3, 4]:
            raise OutputLayoutError(
                f'{self.name} needs predictions [B, ..., N] (rank 3) and mask prototypes '
                f'[B, M, h, w] (rank 4), got shapes {[tuple(o.shape) for o in outputs[:2]]}')
        predictions, protos = outputs[:2] if ranks[0] == 3 else outputs[1::-1]
        if min(protos.shape[1:]) < 1:
            raise OutputLayoutError(f'{self.name} mask prototypes of shape {protos.shape} hold '
                                    f'no mask')
        return predictions, protos

    def predictions_output(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        return self.split(outputs)[0]

    def extra_channels(self, outputs: Sequence[np.ndarray]) -> int:
        return self.split(outputs)[1].shape[1]

    def attach(self, raw: RawDetections, extras: np.ndarray, outputs: Sequence[np.ndarray],
               b: int) -> RawDetections:
        protos = self.split(outputs)[1][b]
        return raw._replace(mask_coefficients=extras.astype(np.float32),
                            protos=protos.astype(np.float32, copy=False))


class PoseHead(DetectHead):
    """K keypoints of D values per prediction: x y, then the visibility score when D is 3."""

    task = 'pose'

    def __init__(self, *args, kpt_shape: Sequence[int] = (17, 3), **options):
        super().__init__(*args, **options)
        shape = list(kpt_shape) if isinstance(kpt_shape, (list, tuple)) else None
        if shape is None or len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, int)
                                                   for v in shape) \
                or shape[0] < 1 or shape[1] not in (2, 3):
            raise ConfigError(f'{self.name} kpt_shape must be [K, D] with K >= 1 keypoints of '
                              f'D = 2 (x y) or 3 (x y visibility) values, got {kpt_shape!r}')
        self.num_keypoints, self.keypoint_values = shape
        self.extra_names = f' + {self.num_keypoints}*{self.keypoint_values} keypoint values'

    def extra_channels(self, outputs: Sequence[np.ndarray]) -> int:
        return self.num_keypoints * self.keypoint_values

    def attach(self, raw: RawDetections, extras: np.ndarray, outputs: Sequence[np.ndarray],
               b: int) -> RawDetections:
        values = extras.reshape(len(extras), self.num_keypoints, self.keypoint_values)
        return raw._replace(
            keypoints=values[:, :, :2].astype(np.float32),
            keypoint_scores=values[:, :, 2].astype(np.float32) if self.keypoint_values == 3
            else None)


class ObbHead(DetectHead):
    """The rotation angle in radians, the last value; boxes are about their centre."""

    task = 'obb'
    centre_boxes = True
    extra_names = ' + angle'

    def extra_channels(self, outputs: Sequence[np.ndarray]) -> int:
        return 1

    def attach(self, raw: RawDetections, extras: np.ndarray, outputs: Sequence[np.ndarray],
               b: int) -> RawDetections:
        return raw._replace(angles=extras[:, 0].astype(np.float32))


def xywhr(raw: RawDetections) -> np.ndarray:
    """Return the rotated boxes of obb detections as (N, 5) cx cy w h angle."""
    boxes = raw.boxes.astype(np.float64)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2],
                           raw.angles[:, None]], axis=1)
