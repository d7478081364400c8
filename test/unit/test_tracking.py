"""
ObjectTracker (ByteTrack from Roboflow's trackers) on detections whose true paths are known.

The boxes are what a detector reports; the assertions are about IDs (kept through a crossing
and a short occlusion, new after the buffer), classes (never mixed), ByteTrack's low-score
stage, and shadow tracking's predicted boxes (on the object's true position, tracker unchanged).
"""

from dataclasses import replace

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.tracking.object_tracker import ObjectTracker
from hobot_npu_infer.core.tracking.tracked_streams import TrackedStreams
from hobot_npu_infer.core.tracking.tracker_config import TrackerConfig
import pytest

FPS = 30.0
W, H = 60, 120  # a person's box


def person(x, y, score=0.9, class_id=0, keypoints=None):
    return Detection((x, y, x + W, y + H), score, class_id, 'person' if class_id == 0 else 'car',
                     keypoints)


def tracker(**options):
    return ObjectTracker(TrackerConfig(**options), score_threshold=0.25)


def ids_by_x(out):
    return {round(d.box[0]): d.track_id for d in out}


def test_ids_survive_two_people_crossing():
    t = tracker()
    before = after = None
    for f in range(60):  # a walks right, b walks left; they overlap around frame 30
        ax, bx = 100 + 8 * f, 580 - 8 * f
        out = t.update([person(ax, 200), person(bx, 210, 0.8)], f / FPS)
        by_x = {round(d.box[0]): d for d in out}
        if f == 20:
            before = by_x[ax].track_id, by_x[bx].track_id
        if f == 59:
            after = by_x[ax].track_id, by_x[bx].track_id
    assert None not in before and before[0] != before[1]
    assert after == before  # each keeps its ID through the crossing


def test_a_short_occlusion_keeps_the_id_and_a_long_absence_gets_a_new_one():
    t = tracker(buffer_s=1.0)
    f = 0
    for f in range(10):
        [seen] = t.update([person(100 + 5 * f, 200)], f / FPS)
    first = seen.track_id
    assert first is not None
    for f in range(10, 22):  # hidden for 12 frames (0.4 s): the detector sees nothing
        assert t.update([], f / FPS) == []
    for f in range(22, 26):
        [seen] = t.update([person(100 + 5 * f, 200)], f / FPS)
    assert seen.track_id == first
    for f in range(26, 26 + 45):  # gone for 1.5 s, longer than the buffer
        t.update([], f / FPS)
    for f in range(71, 75):
        [seen] = t.update([person(100 + 5 * f, 200)], f / FPS)
    assert seen.track_id not in (None, first)
    assert t.counts.created == 2


def test_classes_are_tracked_apart_with_ids_unique_across_them():
    t = tracker()
    for f in range(5):
        out = t.update([person(100, 100, class_id=0), person(100, 100, class_id=1)], f / FPS)
    assert sorted(d.class_id for d in out) == [0, 1]
    ids = [d.track_id for d in out]
    assert None not in ids and len(set(ids)) == 2


def test_low_scores_keep_a_track_alive_unpublished_and_start_none():
    t = tracker(low_threshold=0.1)
    for f in range(5):
        [seen] = t.update([person(100 + 4 * f, 100)], f / FPS)
    tracked = seen.track_id
    # the score sags under the score threshold (a person half hidden): ByteTrack's second stage
    # keeps the track on that box, which is not published, and no 0.15 box starts a track
    assert t.update([person(120, 100, score=0.15), person(400, 300, score=0.15)], 5 / FPS) == []
    for f in range(6, 9):  # hidden longer than the first stage alone would keep its track
        t.update([person(100 + 4 * f, 100, score=0.15)], f / FPS)
    [back] = t.update([person(136, 100)], 9 / FPS)
    assert back.track_id == tracked and t.counts.created == 1


def test_untracked_detections_still_go_out_until_their_track_is_confirmed():
    t = tracker(min_hits=3, new_track_threshold=0.5)
    [first] = t.update([person(100, 100)], 0.0)
    assert first.track_id is None and first.score == pytest.approx(0.9)
    t.update([person(102, 100)], 1 / FPS)
    [third] = t.update([person(104, 100)], 2 / FPS)
    assert third.track_id == 1


def test_predicted_boxes_lie_on_the_true_path_between_detector_runs():
    """Detector at a third of the camera rate: the boxes between lie within 2 px of the truth."""
    t = tracker()
    errors = []
    for f in range(60):
        x, y = 50 + 6 * f, 80 + 2 * f  # 180 px/s right, 60 px/s down
        if f % 3 == 0:
            t.update([person(x, y, keypoints=((x + 30, y + 10),))], f / FPS)
            continue
        predictions = t.predict(f / FPS)
        if f < 3:  # the track is confirmed on the detector's second run
            assert predictions == []
            continue
        [predicted] = predictions
        assert predicted.predicted and predicted.track_id == 1
        assert predicted.score == pytest.approx(0.9)
        errors.append(max(abs(a - b) for a, b in zip(predicted.box, (x, y, x + W, y + H))))
        kx, ky = predicted.keypoints[0]
        assert (kx - predicted.box[0], ky - predicted.box[1]) == pytest.approx((30, 10))
    assert max(errors) <= 2.0, errors


def test_predicting_does_not_change_the_tracker():
    plain, shadowed = tracker(), tracker()
    for f in range(0, 30, 3):
        box = person(100 + 10 * f, 100)
        a = plain.update([box], f / FPS)
        shadowed.predict((f - 1) / FPS)
        shadowed.predict((f - 2) / FPS)
        b = shadowed.update([box], f / FPS)
        assert a == b


def test_nothing_is_predicted_before_a_run_or_after_the_buffer():
    t = tracker(buffer_s=0.5)
    assert t.predict(0.0) == []
    for f in range(4):
        t.update([person(100, 100)], f / FPS)
    assert len(t.predict(4 / FPS)) == 1
    assert t.predict(3 / FPS + 0.6) == []  # the detector has been silent longer than the buffer


def test_streams_track_each_input_and_box_task_apart():
    streams = TrackedStreams(TrackerConfig(), 0.25, {'faces': 'detect', 'scene': 'semantic'})
    assert streams.streams == ['faces']
    det = person(10, 10)
    for f in range(3):
        a = streams.update('cam_a', 'faces', [det], f / FPS)
        b = streams.update('cam_b', 'faces', [replace(det, score=0.8)], f / FPS)
        assert streams.update('cam_a', 'scene', [det], f / FPS) == [det]  # not tracked
    assert a[0].track_id == 1 and b[0].track_id == 1  # IDs count per input
    assert streams.values('cam_a') == {'tracks_alive': '1', 'track_ids_created': '1',
                                       'outputs_measured': '3', 'outputs_predicted': '0'}
    assert streams.predict('cam_a', 'faces', 3 / FPS)[0].predicted
    assert streams.counts('cam_a').predicted == 1
    off = TrackedStreams(TrackerConfig(shadow=False), 0.25, {'': 'detect'})
    off.update('cam', '', [det], 0.0)
    assert off.predict('cam', '', 1 / FPS) is None


@pytest.mark.parametrize('options, named', [
    ({'tracker': 'sort'}, 'tracker'), ({'low_threshold': 1.5}, 'track_low_threshold'),
    ({'high_threshold': 0.3, 'low_threshold': 0.4}, 'track_low_threshold'),
    ({'buffer_s': -1}, 'track_buffer_s'), ({'min_hits': 0}, 'track_min_hits')])
def test_a_bad_setting_names_its_parameter(options, named):
    with pytest.raises(ConfigError, match=named):
        TrackerConfig(**options).validate()
