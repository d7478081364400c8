"""
Markers for RViz and Foxglove, and what is computed only for listeners.

The MarkerArray's content (real visualization_msgs): a DELETEALL first, a box per detection
(rotated for obb, dashed when predicted), labels with track IDs, keypoints and the COCO
skeleton, colours stable per track ID, pixels to metres. Over real DDS: markers and the debug
image are neither built nor drawn until someone subscribes, and a frame of predictions (no
image) publishes its detections and markers only.
"""

from dataclasses import replace
import math

from hobot_npu_infer.core.detection import Detection, InstanceMask
from hobot_npu_infer.core.imaging import annotate
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, HeadOutput
from hobot_npu_infer.core.streaming.batcher import Frame
from hobot_npu_infer.core.streaming.stream_runner import FrameResult
from hobot_npu_infer.ros import detection_msgs, result_publishers
from hobot_npu_infer.ros.markers import markers_message
from hobot_npu_infer.ros.result_publishers import ResultPublishers
import numpy as np
import pytest
from ros_harness import Listener
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker, MarkerArray

SIZE = (640, 480)


def header(sec=12):
    h = Header(frame_id='camera')
    h.stamp.sec = sec
    return h


def person(x, track_id=None, predicted=False, class_id=0):
    points = tuple((x + 2.0 * i, 10.0 + 5.0 * i) for i in range(17))
    return Detection((x, 0.0, x + 40.0, 100.0), 0.87, class_id, 'person', points,
                     keypoint_scores=(0.9,) * 17, track_id=track_id, predicted=predicted)


def by_ns(array, ns):
    return [m for m in array.markers if m.ns == ns]


def xy(point, pixel_size=0.001):
    return round(point.x / pixel_size, 3), round(point.y / pixel_size, 3)


def test_deleteall_first_then_a_box_and_label_per_detection_and_the_skeleton():
    people = [person(0.0, track_id=5), person(100.0, track_id=6), person(200.0)]
    array = markers_message(header(), people, SIZE)
    assert array.markers[0].action == Marker.DELETEALL
    assert all(m.action == Marker.ADD for m in array.markers[1:])
    assert all(m.header.frame_id == 'camera' and m.header.stamp.sec == 12 for m in array.markers)
    boxes = by_ns(array, 'boxes')
    assert [(m.id, m.type) for m in boxes] == [(0, Marker.LINE_STRIP), (1, Marker.LINE_STRIP),
                                               (2, Marker.LINE_STRIP)]
    assert [xy(p) for p in boxes[1].points] == [(140, 100), (140, 0), (100, 0), (100, 100),
                                                (140, 100)]  # closed: the first corner again
    labels = by_ns(array, 'labels')
    assert [m.text for m in labels] == ['#5 person 0.87', '#6 person 0.87', 'person 0.87']
    assert all(m.type == Marker.TEXT_VIEW_FACING and m.scale.z > 0 for m in labels)
    skeleton = by_ns(array, 'skeleton')
    assert [m.type for m in skeleton] == [Marker.LINE_LIST] * 3
    assert len(skeleton[0].points) == 2 * 19 == len(skeleton[0].colors)  # COCO's 19 limbs
    a, b = annotate.COCO_SKELETON[0]  # left ankle to left knee
    assert [xy(p) for p in skeleton[0].points[:2]] == [people[0].keypoints[a],
                                                       people[0].keypoints[b]]
    dots = by_ns(array, 'keypoints')
    assert [len(m.points) for m in dots] == [17] * 3 and dots[0].type == Marker.POINTS


def test_colours_follow_the_track_id_like_the_debug_image():
    same_track = [person(0.0, track_id=7), person(300.0, track_id=7, class_id=3)]
    first, second = by_ns(markers_message(header(), same_track, SIZE), 'boxes')
    assert first.color == second.color  # one track, one colour, whatever the class
    blue, green, red = annotate.detection_colour(same_track[0])
    assert (first.color.r, first.color.g, first.color.b) == pytest.approx(
        (red / 255, green / 255, blue / 255))
    other = by_ns(markers_message(header(), [person(0.0, track_id=8)], SIZE), 'boxes')[0]
    assert other.color != first.color


def test_a_predicted_box_is_dashed_and_dimmer():
    measured, predicted = by_ns(markers_message(
        header(), [person(0.0, track_id=1), person(100.0, track_id=2, predicted=True)], SIZE),
        'boxes')
    assert predicted.type == Marker.LINE_LIST and len(predicted.points) % 2 == 0
    assert len(predicted.points) > 8  # several dashes per side
    assert predicted.color.a < measured.color.a == 1.0
    xs = [xy(p)[0] for p in predicted.points]
    ys = [xy(p)[1] for p in predicted.points]
    assert (min(xs), max(xs), min(ys), max(ys)) == (100, 140, 0, 100)  # along the box


def test_an_oriented_box_has_its_rotated_corners_and_pixels_scale_to_metres():
    ship = Detection((50.0, 50.0, 110.0, 70.0), 0.8, 1, 'ship', angle=math.pi / 2)
    [box] = by_ns(markers_message(header(), [ship], SIZE, pixel_size=0.01), 'boxes')
    corners = [xy(p, 0.01) for p in box.points[:4]]
    assert sorted(corners) == [(70, 30), (70, 90), (90, 30), (90, 90)]  # upright: 20 by 60
    assert box.points[0].z == 0.0
    assert box.scale.x == pytest.approx(2 * 0.01)  # the debug image's 2 px lines on 640x480


def test_low_confidence_keypoints_and_their_limbs_are_left_out():
    det = person(0.0)
    scores = list(det.keypoint_scores)
    scores[0] = 0.1  # the nose: with it, the limbs nose-left eye and nose-right eye
    det = Detection(det.box, det.score, 0, 'person', det.keypoints,
                    keypoint_scores=tuple(scores))
    array = markers_message(header(), [det], SIZE)
    [dots], [skeleton] = by_ns(array, 'keypoints'), by_ns(array, 'skeleton')
    assert len(dots.points) == 16 and len(skeleton.points) == 2 * 17


def test_the_classes_of_a_whole_image_are_labels_without_boxes():
    classes = ((0.8, 3, 'tabby'), (0.1, 5, 'lynx'))
    top = [Detection((0.0, 0.0, 640.0, 480.0), s, c, n) for s, c, n in classes]
    array = markers_message(header(), top, SIZE)
    assert by_ns(array, 'boxes') == []
    assert [m.text for m in by_ns(array, 'labels')] == ['tabby 0.80', 'lynx 0.10']


# --- over DDS: computed only for listeners ------------------------------------------------------

def counting(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper that counts its calls; return the counts."""
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, wrapper)
    return calls


def segmented(x, track_id):
    return Detection((float(x), 4.0, x + 10.0, 14.0), 0.9, 0, 'thing', track_id=track_id,
                     mask=InstanceMask(x, 4, np.ones((10, 10), bool)))


def test_markers_and_debug_image_only_for_listeners_and_shadow_frames_over_dds(monkeypatch):
    built = counting(monkeypatch, detection_msgs, 'markers_message')
    drawn = counting(monkeypatch, result_publishers, 'draw_detections')
    source = '/cam/image_raw'
    with Listener('markers_sender') as sender, Listener('markers_listener') as listener:
        # a packed model's segmenting head: shadow tracking fills the frames it skips
        results = ResultPublishers(sender.node, False, 'json', [source], [f'{source}/detections'],
                                   True, None, [HeadConfig('parts', decoder='yolov8_seg')], {},
                                   {'parts': 'segment'}, 10.0, markers_pixel_size=0.01)
        topics = results.heads.detections[(source, 'parts')]
        image = np.zeros((48, 64, 3), np.uint8)
        prefix = f'{source}/parts'

        def frame(sec, detections, shadow=False):
            meta = header(sec)
            output = HeadOutput('parts', detections, [], 0.0, 0.0,
                                measured_meta=header(sec - 1) if shadow else None)
            return FrameResult(Frame(source, None, meta=meta), None if shadow else image, 'bgr',
                               detections, heads=[output], image_size=(64, 48))

        listener.subscribe(String, f'{prefix}/detections')
        listener.subscribe(Image, f'{prefix}/masks')
        assert listener.wait_for(lambda: topics.detections.get_subscription_count() > 0 and
                                 topics.masks.get_subscription_count() > 0, timeout=30)
        results.publish(frame(1, [segmented(4, 1)]))
        assert listener.wait_for(lambda: listener.received(f'{prefix}/detections'), timeout=30)
        assert (built, drawn) == ([], [])  # nobody listens to the markers or the debug image

        listener.subscribe(MarkerArray, f'{prefix}/markers')
        listener.subscribe(Image, f'{source}/debug_image')
        debug = results.debug_images[source]
        assert listener.wait_for(lambda: topics.markers.get_subscription_count() > 0 and
                                 debug.get_subscription_count() > 0, timeout=30)
        results.publish(frame(2, [segmented(4, 1), segmented(30, 2)]))
        # a frame of predictions: no image, no masks, no debug image; detections and markers
        guess = replace(segmented(6, 1), predicted=True, mask=None)  # as the tracker predicts
        results.publish(frame(3, [guess], shadow=True))
        assert listener.wait_for(lambda: len(listener.received(f'{prefix}/markers')) == 2 and
                                 len(listener.received(f'{prefix}/detections')) == 3 and
                                 listener.received(f'{source}/debug_image'), timeout=30)
        assert (len(built), len(drawn)) == (2, 1)
        measured, predicted = listener.received(f'{prefix}/markers')
        assert measured.markers[0].action == Marker.DELETEALL
        assert len([m for m in measured.markers if m.ns == 'boxes']) == 2
        assert [m.text for m in measured.markers if m.ns == 'labels'] == [
            '#1 thing 0.90', '#2 thing 0.90']
        [box] = [m for m in predicted.markers if m.ns == 'boxes']
        assert box.type == Marker.LINE_LIST and box.header.stamp.sec == 3
        assert xy(box.points[0], 0.01)[0] == pytest.approx(16.0)  # (6 + 10, 4): 1 px = 0.01 m

        [debug_image] = listener.received(f'{source}/debug_image')
        assert (debug_image.header.stamp.sec, debug_image.width) == (2, 64)
        assert [m.header.stamp.sec for m in listener.received(f'{prefix}/masks')] == [1, 2]
        *_, shadow = listener.received(f'{prefix}/detections')
        payload = detection_msgs.detections_from_message(shadow)
        assert detection_msgs.stamp_of(shadow) == (3, 0)
        assert [(d['track_id'], d['predicted']) for d in payload] == [(1, True)]
        assert 'mask' not in payload[0]
        results.destroy()
