"""
TrackerConfig: which tracker runs on each input's detections, and its thresholds.

The names follow Ultralytics' ``bytetrack.yaml`` (track_high_thresh, track_low_thresh,
new_track_thresh, track_buffer), the settings a YOLO user already knows; the buffer is in
seconds rather than frames, since a head's rate may differ from the camera's.
"""

from dataclasses import dataclass

from hobot_npu_infer.core.errors import ConfigError

TRACKERS = ('none', 'bytetrack')


@dataclass
class TrackerConfig:
    """
    ByteTrack's settings, and whether to predict boxes on frames the detector skips.

    ``high_threshold`` 0 stands for the detector's score threshold: boxes at or above it are
    associated first; boxes between ``low_threshold`` and it only extend tracks (ByteTrack's
    second stage). What is published is what reaches the score threshold.
    """

    tracker: str = 'bytetrack'
    high_threshold: float = 0.0
    low_threshold: float = 0.1
    new_track_threshold: float = 0.0  # 0: the high threshold + 0.1 (ByteTrack's det_thresh)
    match_iou: float = 0.1  # the least IoU between a track's predicted box and its detection
    buffer_s: float = 1.0  # how long a lost track keeps its ID for the object's return
    min_hits: int = 2  # detector runs in a row before a new track gets an ID
    per_class: bool = True  # a tracker per class; False: one for all (a track may change class)
    shadow: bool = True  # predicted boxes on frames the detector skips

    @property
    def enabled(self) -> bool:
        return self.tracker != 'none'

    def validate(self) -> None:
        """Raise ConfigError naming the first parameter out of range."""
        if self.tracker not in TRACKERS:
            raise ConfigError(f'tracker must be one of {", ".join(TRACKERS)}, '
                              f'got {self.tracker!r}')
        for name, value in (('high_threshold', self.high_threshold),
                            ('low_threshold', self.low_threshold),
                            ('new_threshold', self.new_track_threshold),
                            ('match_iou', self.match_iou)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f'track_{name} must be within [0, 1], got {value}')
        if self.high_threshold and self.low_threshold > self.high_threshold:
            raise ConfigError(f'track_low_threshold ({self.low_threshold}) is above '
                              f'track_high_threshold ({self.high_threshold})')
        if self.buffer_s < 0:
            raise ConfigError(f'track_buffer_s must be >= 0, got {self.buffer_s}')
        if self.min_hits < 1:
            raise ConfigError(f'track_min_hits must be >= 1, got {self.min_hits}')
