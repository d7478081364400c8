"""
TrackedStreams: the trackers of one node, one per input and stream of boxes, and their counts.

A stream is the model's detections (named '') or one detection head's of a packed model; the
tasks with boxes are tracked (detect, segment, pose, obb), not classify or semantic. Trackers
are made on a stream's first detections.
"""

import threading
from typing import Dict, List, Optional, Tuple

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.tracking.object_tracker import ObjectTracker, TrackingCounts
from hobot_npu_infer.core.tracking.tracker_config import TrackerConfig

TRACKED_TASKS = ('detect', 'segment', 'pose', 'obb')


class TrackedStreams:
    """
    One :class:`ObjectTracker` per (input, stream) of the streams whose task has boxes.

    ``tasks`` maps each stream ('' for a single model, else a head's name) to its task.
    """

    def __init__(self, config: TrackerConfig, score_threshold: float, tasks: Dict[str, str]):
        self.config = config
        self.streams = [name for name, task in tasks.items() if task in TRACKED_TASKS]
        self._score_threshold = score_threshold
        self._trackers: Dict[Tuple[str, str], ObjectTracker] = {}
        self._lock = threading.Lock()

    @property
    def score_threshold(self) -> float:
        return self._score_threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        with self._lock:
            self._score_threshold = value
            for tracker in self._trackers.values():
                tracker.score_threshold = value

    def update(self, source: str, stream: str, detections: List[Detection],
               t: float) -> List[Detection]:
        """Track a detector run's ``detections`` of ``source`` at ``t`` (seconds)."""
        if stream not in self.streams:
            return detections
        with self._lock:
            tracker = self._trackers.get((source, stream))
            if tracker is None:
                tracker = self._trackers[(source, stream)] = ObjectTracker(
                    self.config, self._score_threshold)
            return tracker.update(detections, t)

    def predict(self, source: str, stream: str, t: float) -> Optional[List[Detection]]:
        """Return the predicted boxes at ``t``; None when shadow tracking is off or unstarted."""
        if not self.config.shadow:
            return None
        with self._lock:
            tracker = self._trackers.get((source, stream))
            return None if tracker is None else tracker.predict(t)

    def counts(self, source: str) -> TrackingCounts:
        """Return the counts of ``source``'s trackers, summed over its streams."""
        with self._lock:
            total = TrackingCounts()
            for (tracked_source, _), tracker in self._trackers.items():
                if tracked_source == source:
                    total = total + tracker.counts
            return total

    def values(self, source: str) -> Dict[str, str]:
        """Return ``source``'s counts as diagnostic key-values."""
        counts = self.counts(source)
        return {'tracks_alive': str(counts.alive), 'track_ids_created': str(counts.created),
                'outputs_measured': str(counts.measured),
                'outputs_predicted': str(counts.predicted)}
