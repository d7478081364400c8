"""
One stream's multi-object tracker: ByteTrack per class, IDs unique across the classes.

The algorithm is Roboflow's ``trackers`` (ByteTrack: a Kalman motion model and two-stage
association, high-score boxes first, then low-score ones to tracks still unmatched). Each class
has its own tracker, so a person is never continued by a bicycle (or, ``per_class`` off, one
tracker takes every class, for models whose classes are states of one object); the trackers'
IDs are mapped to one sequence per stream, starting at 1. Frames carry their time in seconds,
so the motion model steps by the real interval whatever the detector's rate.

Between detector runs, :meth:`ObjectTracker.predict` gives the boxes the motion model expects
at a later time for the objects published on the last run, without changing the tracker: this is
shadow tracking (DeepStream's term), boxes at the camera's rate from a slower detector.
"""

import copy
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.tracking.tracker_config import TrackerConfig
import numpy as np

NOMINAL_FPS = 30.0  # the trackers' unit of time: Kalman noise and buffers are per 1/30 s
ID_DATA = 'index'  # the key under which each box's index rides through the tracker


@dataclass
class TrackingCounts:
    """What a tracker has done, for diagnostics."""

    alive: int = 0  # confirmed tracks not yet expired
    created: int = 0  # IDs handed out so far
    measured: int = 0  # detector runs tracked
    predicted: int = 0  # frames given predicted boxes

    def __add__(self, other: 'TrackingCounts') -> 'TrackingCounts':
        return TrackingCounts(self.alive + other.alive, self.created + other.created,
                              self.measured + other.measured, self.predicted + other.predicted)


class ObjectTracker:
    """
    ByteTrack over one stream of detections (one input, one detection head).

    ``update`` runs on the detector's frames, ``predict`` on the others; ``score_threshold``
    is the detector's (what is published untracked), which ``high_threshold`` 0 stands for.
    """

    def __init__(self, config: TrackerConfig, score_threshold: float):
        import supervision  # noqa: F401 (imported here: only a tracking node pays for it)
        from trackers import ByteTrackTracker
        self._tracker_class = ByteTrackTracker
        self.config = config
        self.score_threshold = score_threshold
        self._trackers: Dict[int, object] = {}  # class id -> its ByteTrackTracker
        self._ids: Dict[Tuple[int, int], int] = {}  # (class id, the tracker's id) -> ours
        self._next_id = 1
        self._last_time: Optional[float] = None
        self._seen: Dict[Tuple[int, int], Detection] = {}  # matched on the last run, by track
        self._counts = TrackingCounts()

    @property
    def high_threshold(self) -> float:
        return self.config.high_threshold or self.score_threshold

    @property
    def new_track_threshold(self) -> float:
        """Return the least score that starts a track: given, else ByteTrack's high + 0.1."""
        return self.config.new_track_threshold or min(self.high_threshold + 0.1, 1.0)

    def _tracker(self, class_id: int):
        tracker = self._trackers.get(class_id)
        if tracker is None:
            tracker = self._trackers[class_id] = self._tracker_class(
                lost_track_buffer=round(self.config.buffer_s * NOMINAL_FPS),
                frame_rate=NOMINAL_FPS,
                track_activation_threshold=self.new_track_threshold,
                minimum_consecutive_frames=self.config.min_hits,
                minimum_iou_threshold=self.config.match_iou,
                high_conf_det_threshold=self.high_threshold)
        # score_threshold, which they may stand for, can change at runtime
        tracker.high_conf_det_threshold = self.high_threshold
        tracker.track_activation_threshold = self.new_track_threshold
        return tracker

    def _time(self, t: float) -> float:
        """``t``, or just after the last time: the trackers need strictly increasing times."""
        if self._last_time is not None and t <= self._last_time:
            t = self._last_time + 1e-6
        self._last_time = t
        return t

    def update(self, detections: Sequence[Detection], t: float) -> List[Detection]:
        """
        Track the detector's boxes of the frame taken at ``t`` (seconds).

        Returns the detections at or above the score threshold, in their order, those of
        confirmed tracks with their ``track_id``. Boxes from the low threshold up take part in
        the association (ByteTrack's second stage keeps a partly hidden object's track and ID
        through the frames its score sags) but are not published.
        """
        import supervision as sv
        t = self._time(t)
        by_class: Dict[int, List[int]] = {}  # tracker (a class, or 0 for all) -> box indices
        for i, det in enumerate(detections):
            if det.score >= self.config.low_threshold:
                by_class.setdefault(det.class_id if self.config.per_class else 0, []).append(i)
        tracked: Dict[int, Tuple[int, int]] = {}  # box index -> (class id, the tracker's id)
        seen: Dict[Tuple[int, int], Detection] = {}
        for class_id in sorted(set(by_class) | set(self._trackers)):
            index = by_class.get(class_id, [])
            boxes = np.array([detections[i].box for i in index], np.float32).reshape(-1, 4)
            scores = np.array([detections[i].score for i in index], np.float32)
            tracker = self._tracker(class_id)
            result = tracker.update(sv.Detections(xyxy=boxes, confidence=scores,
                                                  data={ID_DATA: np.array(index, int)}),
                                    timestamp=t)
            if len(result):
                for i, local in zip(result.data[ID_DATA], result.tracker_id):
                    if local >= 0:
                        tracked[int(i)] = (class_id, int(local))
            alive = {tracklet.tracker_id for tracklet in tracker.tracks}
            for key in [k for k in self._ids if k[0] == class_id and k[1] not in alive]:
                del self._ids[key]
        out = []
        for i, det in enumerate(detections):
            if det.score < self.score_threshold:
                continue
            if i in tracked:
                det = replace(det, track_id=self._our_id(tracked[i]))
                seen[tracked[i]] = det
            out.append(det)
        self._seen = seen
        self._counts.measured += 1
        return out

    def _our_id(self, key: Tuple[int, int]) -> int:
        if key not in self._ids:
            self._ids[key] = self._next_id
            self._next_id += 1
            self._counts.created += 1
        return self._ids[key]

    def predict(self, t: float) -> List[Detection]:
        """
        Return the boxes expected at ``t`` for the tracks published on the last detector run.

        Each keeps its track's class, score and ID and is marked ``predicted``; keypoints move
        with the box (the same place relative to it), masks are left out. The tracker itself
        is not changed.
        """
        from trackers.utils.predict_timing import PredictTiming
        if self._last_time is None or t - self._last_time > self.config.buffer_s:
            return []  # the detector has not run for longer than a lost track lives
        elapsed = max(t - self._last_time, 0.0)
        timing = PredictTiming(frame_step=elapsed * NOMINAL_FPS, elapsed_seconds=elapsed,
                               frame_rate=NOMINAL_FPS)
        out = []
        for class_id, tracker in self._trackers.items():
            for tracklet in tracker.tracks:
                det = self._seen.get((class_id, tracklet.tracker_id))
                if det is None or tracklet.time_since_update:
                    continue
                box = copy.deepcopy(tracklet).predict(timing) if elapsed > 0 \
                    else tracklet.get_state_bbox()
                out.append(moved(det, tuple(float(v) for v in box)))
        self._counts.predicted += 1
        return sorted(out, key=lambda d: -d.score)

    @property
    def counts(self) -> TrackingCounts:
        """Return what this tracker has done, and its confirmed tracks not yet expired."""
        alive = sum(1 for tracker in self._trackers.values()
                    for tracklet in tracker.tracks if tracklet.tracker_id >= 0)
        return replace(self._counts, alive=alive)


def moved(det: Detection, box: Tuple[float, float, float, float]) -> Detection:
    """``det`` at ``box``, predicted: keypoints keep their place relative to the box."""
    keypoints = det.keypoints
    if keypoints:
        x1, y1, x2, y2 = det.box
        sx = (box[2] - box[0]) / (x2 - x1) if x2 > x1 else 1.0
        sy = (box[3] - box[1]) / (y2 - y1) if y2 > y1 else 1.0
        keypoints = tuple((box[0] + (x - x1) * sx, box[1] + (y - y1) * sy)
                          for x, y in keypoints)
    return replace(det, box=box, keypoints=keypoints, mask=None, predicted=True)
