"""
Detections as messages: the JSON fallback (real std_msgs) and vision_msgs.

vision_msgs cannot be installed in the pip environment, so its path runs against a stand-in
module with the message fields of vision_msgs 4 (Humble, Jazzy): see ``vision_msgs_fake``. The
masks topic also runs over real DDS. Tracking's marks (track
IDs, predicted detections) round-trip in both formats, and a frame of predictions publishes no
masks.
"""

from dataclasses import replace
import json
import math
import time
import types

from hobot_npu_infer.core.detection import Detection, InstanceMask
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, HeadOutput
from hobot_npu_infer.core.streaming.batcher import Frame
from hobot_npu_infer.core.streaming.stream_runner import FrameResult
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.head_outputs import HeadOutputs
from hobot_npu_infer.ros.result_publishers import ResultPublishers
import numpy as np
import pytest
from ros_harness import Listener
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from vision_msgs_fake import fake_vision_msgs


FACE = Detection((10.0, 20.0, 50.0, 80.0), 0.9, 0, 'face', ((20.0, 30.0),) * 5)
CAT = Detection((0.0, 0.0, 4.0, 2.0), 0.4, 3, 'cat')


def header():
    h = Header(frame_id='cam')
    h.stamp.sec, h.stamp.nanosec = 12, 345
    return h


def test_vision_msgs_content():
    module = fake_vision_msgs()
    array = detection_msgs.to_vision_msgs(header(), [FACE, CAT], module)
    assert array.header.frame_id == 'cam' and len(array.detections) == 2
    face = array.detections[0]
    assert face.header.stamp.sec == 12 and face.header.stamp.nanosec == 345
    [result] = face.results
    assert result.hypothesis.class_id == '0' and result.hypothesis.score == pytest.approx(0.9)
    assert (face.bbox.center.position.x, face.bbox.center.position.y) == (30.0, 50.0)
    assert (face.bbox.size_x, face.bbox.size_y) == (40.0, 60.0)
    back = detection_msgs.detections_from_message(array, ['face', 'a', 'b', 'cat'])
    assert [d['box'] for d in back] == [[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 4.0, 2.0]]
    assert [d['class_name'] for d in back] == ['face', 'cat']


def test_label_info():
    info = detection_msgs.label_info(header(), ['face', 'person'], fake_vision_msgs())
    assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, 'face'), (1, 'person')]


def test_json_fallback_carries_the_same_content():
    msg = detection_msgs.to_json_msg(header(), [FACE], (640, 480))
    assert isinstance(msg, String)
    payload = json.loads(msg.data)
    assert payload['header'] == {'stamp': {'sec': 12, 'nanosec': 345}, 'frame_id': 'cam'}
    assert (payload['width'], payload['height']) == (640, 480)
    [face] = payload['detections']
    assert face == FACE.to_dict()
    assert detection_msgs.stamp_of(msg) == (12, 345)
    assert detection_msgs.detections_from_message(msg) == [FACE.to_dict()]


def test_format_resolution_without_vision_msgs(monkeypatch):
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: None)
    assert detection_msgs.resolve_format('auto') == 'json'
    assert detection_msgs.resolve_format('json') == 'json'
    with pytest.raises(ConfigError, match='vision_msgs package is not installed'):
        detection_msgs.resolve_format('vision_msgs')
    with pytest.raises(ConfigError, match='detections_format must be one of'):
        detection_msgs.resolve_format('xml')


def test_format_resolution_with_vision_msgs(monkeypatch):
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', fake_vision_msgs)
    assert detection_msgs.resolve_format('auto') == 'vision_msgs'
    assert detection_msgs.message_type('vision_msgs') is not String


# --- what each task adds -----------------------------------------------------------------------

SHIP = Detection((50.0, 50.0, 110.0, 70.0), 0.8, 1, 'ship', angle=math.pi / 6)


def square(x, y, side, class_id=0):
    return Detection((float(x), float(y), float(x + side), float(y + side)), 0.9, class_id,
                     'thing', mask=InstanceMask(x, y, np.ones((side, side), bool)))


def pixels(image_msg, dtype=np.uint8):
    return np.frombuffer(bytes(image_msg.data), dtype).reshape(image_msg.height, -1)


def test_an_oriented_box_carries_its_angle_in_theta():
    array = detection_msgs.to_vision_msgs(header(), [SHIP, CAT], fake_vision_msgs())
    ship, cat = array.detections
    assert ship.bbox.center.theta == pytest.approx(math.pi / 6)
    assert (ship.bbox.center.position.x, ship.bbox.center.position.y) == (80.0, 60.0)
    assert (ship.bbox.size_x, ship.bbox.size_y) == (60.0, 20.0)  # the unrotated box
    assert cat.bbox.center.theta == 0.0


def test_the_json_form_carries_what_every_task_adds():
    person = Detection((0.0, 0.0, 10.0, 10.0), 0.7, 0, 'person', ((1.0, 2.0), (3.0, 4.0)),
                       keypoint_scores=(0.9, 0.2))
    detections = [person, SHIP, square(2, 3, 4)]
    payload = json.loads(detection_msgs.to_json_msg(header(), detections, (64, 48)).data)
    assert payload['detections'] == [d.to_dict() for d in detections]
    pose, obb, seg = payload['detections']
    assert pose['keypoint_scores'] == [0.9, 0.2]
    assert obb['angle'] == pytest.approx(math.pi / 6)
    assert seg['mask']['area'] == 16 and seg['mask']['polygons']


def test_masks_are_an_instance_label_image_of_the_input_size():
    first, second = square(0, 0, 20), square(10, 10, 20, class_id=3)
    msg = detection_msgs.masks_message(header(), [first, second], (64, 48))
    assert (msg.width, msg.height, msg.encoding, msg.step) == (64, 48, 'mono8', 64)
    assert (msg.header.frame_id, msg.header.stamp.sec) == ('cam', 12)
    labels = pixels(msg)
    assert (labels[5, 5], labels[15, 15], labels[25, 25], labels[40, 60]) == (1, 1, 2, 0)
    assert np.count_nonzero(labels == 1) == 400  # the earlier detection keeps the overlap


def test_more_than_255_detections_give_a_mono16_label_image():
    dots = [square(i % 100, i // 100, 1) for i in range(300)]
    msg = detection_msgs.masks_message(header(), dots, (100, 4))
    assert (msg.width, msg.height, msg.encoding, msg.step, msg.is_bigendian) == \
        (100, 4, 'mono16', 200, 0)
    labels = pixels(msg, np.dtype('<u2'))
    assert labels.shape == (4, 100)
    assert (labels[:3].reshape(-1) == np.arange(1, 301)).all() and not labels[3].any()


def test_classification_holds_the_top_classes_best_first():
    top = ((0.8, 7, 'tabby'), (0.15, 2, 'lynx'))
    whole = [Detection((0.0, 0.0, 64.0, 48.0), s, c, n) for s, c, n in top]
    msg = detection_msgs.classification(header(), whole, fake_vision_msgs())
    assert msg.header.frame_id == 'cam'
    assert [(r.class_id, r.score) for r in msg.results] == [('7', 0.8), ('2', 0.15)]


class Recorder:
    """Publishers that keep what they are given, by topic; ``subscribers`` listen to each."""

    def __init__(self, subscribers=0):
        self.topics = {}
        self.subscribers = subscribers

    def create(self, msg_type, topic, qos):
        sent = self.topics.setdefault(topic, (msg_type, []))[1]
        return types.SimpleNamespace(publish=sent.append,
                                     get_subscription_count=lambda: self.subscribers)

    def sent(self, topic):
        return self.topics[topic][1]


@pytest.mark.parametrize('task, fmt, extra', [
    ('detect', 'json', None), ('pose', 'vision_msgs', 'keypoints'), ('pose', 'json', None),
    ('obb', 'vision_msgs', None), ('segment', 'json', 'masks'),
    ('semantic', 'vision_msgs', 'class_map'), ('classify', 'vision_msgs', 'classes'),
    ('classify', 'json', None)])
def test_each_task_publishes_its_detections_and_what_it_adds(monkeypatch, task, fmt, extra):
    module = fake_vision_msgs()
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: module)
    recorder = Recorder()
    topics = detection_msgs.DetectionTopics(recorder.create, fmt, task, '/cam', '/cam/found')
    detections = [square(0, 0, 8)]
    topics.publish(header(), detections, (32, 16))
    expected = {'/cam/found', '/cam/markers'} | ({f'/cam/{extra}'} if extra else set())
    assert set(recorder.topics) == expected
    msg_type, [found] = recorder.topics['/cam/found']
    assert isinstance(found, String if fmt == 'json' else module.Detection2DArray)
    assert recorder.sent('/cam/markers') == []  # nobody listens: not even built
    if extra in ('masks', 'class_map'):
        msg_type, [msg] = recorder.topics[f'/cam/{extra}']
        assert msg_type is Image and (msg.width, msg.height) == (32, 16)
    if extra == 'classes':
        msg_type, [msg] = recorder.topics['/cam/classes']
        assert isinstance(msg, msg_type) and msg.results[0].class_id == '0'
    if extra == 'keypoints':
        msg_type, [msg] = recorder.topics['/cam/keypoints']
        assert msg_type is module.Detection2DArray and msg.detections == []  # none here


def test_a_detect_model_with_keypoints_publishes_them_and_markers_only_to_listeners(
        monkeypatch):
    module = fake_vision_msgs()
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: module)
    recorder = Recorder(subscribers=1)
    topics = detection_msgs.DetectionTopics(recorder.create, 'vision_msgs', 'detect', '/cam',
                                            '/cam/detections', num_keypoints=5,
                                            markers_pixel_size=0.01)
    topics.publish(header(), [FACE], (640, 480))
    [keypoints] = recorder.sent('/cam/keypoints')
    assert [k.results[0].hypothesis.class_id for k in keypoints.detections] == [
        'left_eye', 'right_eye', 'nose', 'left_mouth', 'right_mouth']
    [markers] = recorder.sent('/cam/markers')
    assert markers.markers[0].action == markers.markers[0].DELETEALL
    box = markers.markers[1]
    assert (box.ns, box.header.frame_id) == ('boxes', 'cam')
    assert (box.points[2].x, box.points[2].y) == pytest.approx((0.1, 0.2))  # (10, 20) px
    no_markers = detection_msgs.DetectionTopics(recorder.create, 'json', 'detect', '/other',
                                                '/other/detections', markers=False)
    assert no_markers.markers is None and '/other/markers' not in recorder.topics


# --- tracking: track IDs and predictions --------------------------------------------------------

def stamped(sec):
    h = Header(frame_id='cam')
    h.stamp.sec = sec
    return h


TRACKED = Detection((10.0, 20.0, 50.0, 80.0), 0.9, 0, 'face', track_id=7)
PREDICTED = Detection((60.0, 20.0, 90.0, 70.0), 0.8, 0, 'face', track_id=12, predicted=True)


def test_track_ids_and_predictions_round_trip_through_vision_msgs():
    module = fake_vision_msgs()
    untracked = Detection((0.0, 0.0, 4.0, 2.0), 0.4, 3, 'cat')
    array = detection_msgs.to_vision_msgs(stamped(20), [TRACKED, PREDICTED, untracked], module,
                                          measured_header=stamped(19))
    tracked, predicted, cat = array.detections
    assert (tracked.id, predicted.id, cat.id) == ('7', '12', '')
    # the convention: a Detection2D stamped apart from its array is a prediction, stamped
    # where the detector last saw the object
    assert array.header.stamp.sec == tracked.header.stamp.sec == cat.header.stamp.sec == 20
    assert predicted.header.stamp.sec == 19
    back = detection_msgs.detections_from_message(array, ['face', 'a', 'b', 'cat'])
    assert [(d.get('track_id'), d.get('predicted', False)) for d in back] == [
        (7, False), (12, True), (None, False)]
    assert back[1]['box'] == [60.0, 20.0, 90.0, 70.0]


def test_without_a_measured_header_nothing_is_marked_predicted():
    array = detection_msgs.to_vision_msgs(stamped(20), [PREDICTED], fake_vision_msgs())
    assert 'predicted' not in detection_msgs.detections_from_message(array)[0]


def test_track_ids_and_predictions_round_trip_through_json():
    msg = detection_msgs.to_json_msg(stamped(20), [TRACKED, PREDICTED], (640, 480),
                                     measured_header=stamped(19))
    payload = json.loads(msg.data)
    assert payload['measured_header'] == {'stamp': {'sec': 19, 'nanosec': 0}, 'frame_id': 'cam'}
    tracked, predicted = detection_msgs.detections_from_message(msg)
    assert tracked == TRACKED.to_dict() and tracked['track_id'] == 7
    assert 'predicted' not in tracked
    assert (predicted['track_id'], predicted['predicted']) == (12, True)
    measured = json.loads(detection_msgs.to_json_msg(stamped(20), [TRACKED], (8, 8)).data)
    assert 'measured_header' not in measured


@pytest.mark.parametrize('task, fmt', [('segment', 'json'), ('semantic', 'vision_msgs'),
                                       ('classify', 'vision_msgs')])
def test_a_frame_of_predictions_publishes_detections_without_masks(monkeypatch, task, fmt):
    module = fake_vision_msgs()
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: module)
    recorder = Recorder()
    topics = detection_msgs.DetectionTopics(recorder.create, fmt, task, '/cam', '/cam/found')
    guess = Detection((0.0, 0.0, 8.0, 8.0), 0.9, 0, 'thing', track_id=1, predicted=True)
    topics.publish(stamped(20), [guess], (32, 16), measured_header=stamped(19))
    [found] = recorder.sent('/cam/found')
    assert detection_msgs.detections_from_message(found)[0]['predicted'] is True
    assert all(not sent for topic, (_, sent) in recorder.topics.items() if topic != '/cam/found')


def test_a_packed_models_predicted_head_is_marked_and_adds_no_latency(monkeypatch):
    module = fake_vision_msgs()
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: module)
    recorder = Recorder()
    heads = [HeadConfig('faces', decoder='centerface'), HeadConfig('parts', decoder='yolov8_seg'),
             HeadConfig('raw')]
    outputs = HeadOutputs(recorder.create, ['/cam'], heads, 'vision_msgs', {'raw': 1}, 10.0,
                          {'parts': 'segment'}, {'faces': 5})
    assert {'/cam/faces/keypoints', '/cam/parts/masks', '/cam/raw/tensor_0'} <= \
        set(recorder.topics)
    ran = HeadOutput('faces', [TRACKED], [], 4.0, 1.0)
    guessed = HeadOutput('parts', [replace(square(0, 0, 8), track_id=3, predicted=True)], [],
                         0.0, 0.0, measured_meta=stamped(19))
    outputs.publish('/cam', stamped(20), (32, 16), [ran, guessed])
    [faces] = recorder.sent('/cam/faces/detections')
    [parts] = recorder.sent('/cam/parts/detections')
    [face] = detection_msgs.detections_from_message(faces)
    assert face['track_id'] == 7 and 'predicted' not in face
    [part] = detection_msgs.detections_from_message(parts)
    assert (part['track_id'], part['predicted']) == (3, True)
    assert recorder.sent('/cam/parts/masks') == []  # a prediction has no mask
    assert len(recorder.sent('/cam/faces/keypoints')) == 1
    now = time.monotonic()
    assert outputs.latency[('/cam', 'faces')]['inference'].summary(now).count == 1
    assert outputs.latency[('/cam', 'parts')]['inference'].summary(now).count == 0


# --- semantic: the class map --------------------------------------------------------------------

def region(x, y, w, h, class_id, score=0.9):
    return Detection((float(x), float(y), float(x + w), float(y + h)), score, class_id,
                     f'c{class_id}', mask=InstanceMask(x, y, np.ones((h, w), bool)))


def test_the_class_map_holds_class_ids_and_255_where_no_class_is():
    msg = detection_msgs.class_map_message(header(), [region(0, 0, 10, 8, 3),
                                                      region(10, 0, 6, 8, 0)], (20, 10))
    assert (msg.width, msg.height, msg.encoding, msg.step) == (20, 10, 'mono8', 20)
    assert (msg.header.frame_id, msg.header.stamp.sec) == ('cam', 12)
    classes = pixels(msg)
    assert (classes[:8, :10] == 3).all() and (classes[:8, 10:16] == 0).all()
    assert (classes[8:] == 255).all() and (classes[:, 16:] == 255).all()


def test_class_ids_past_254_give_a_mono16_class_map_with_65535_for_no_class():
    msg = detection_msgs.class_map_message(header(), [region(0, 0, 4, 2, 300)], (8, 2))
    assert (msg.encoding, msg.step, msg.width) == ('mono16', 16, 8)
    classes = pixels(msg, np.dtype('<u2'))
    assert (classes[:, :4] == 300).all() and (classes[:, 4:] == 65535).all()


def test_masks_topic_over_dds():
    """A segmenting model's masks reach a subscriber with the frame's header, size and labels."""
    with Listener('masks_sender') as sender, Listener('masks_listener') as listener:
        listener.subscribe(Image, '/cam/image_raw/masks')
        listener.subscribe(String, '/cam/image_raw/detections')
        results = ResultPublishers(sender.node, False, 'json', ['/cam/image_raw'],
                                   ['/cam/image_raw/detections'], False, 'segment', [], {}, {},
                                   10.0)
        publisher = results.detections['/cam/image_raw'].masks
        assert listener.wait_for(lambda: publisher.get_subscription_count() > 0, timeout=30)
        frame = Frame('/cam/image_raw', None, meta=header())
        image = np.zeros((48, 64, 3), np.uint8)
        results.publish(FrameResult(frame, image, 'bgr', [square(4, 4, 10), square(30, 20, 6)]))
        assert listener.wait_for(lambda: listener.received('/cam/image_raw/masks') and
                                 listener.received('/cam/image_raw/detections'), timeout=30)
        [masks] = listener.received('/cam/image_raw/masks')
        [found] = listener.received('/cam/image_raw/detections')
        assert (masks.header.stamp.sec, masks.header.stamp.nanosec) == \
            detection_msgs.stamp_of(found) == (12, 345)
        assert (masks.width, masks.height, masks.encoding) == (64, 48, 'mono8')
        labels = pixels(masks)
        areas = [d['mask']['area'] for d in detection_msgs.detections_from_message(found)]
        assert [np.count_nonzero(labels == i + 1) for i in range(2)] == areas == [100, 36]
        results.destroy()
