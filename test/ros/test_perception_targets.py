"""
Detections as ai_msgs/PerceptionTargets, and how detections_format chooses them.

The message classes are the real ones, built from the public definitions
(test/tros_fixtures.py): a message serialises as on a board.
"""

from builtin_interfaces.msg import Time
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, HeadOutput
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.detection_msgs import DetectionTopics
from hobot_npu_infer.ros.head_outputs import HeadOutputs
from hobot_npu_infer.ros.perception_targets import (
    ai_msgs_module,
    PerceptionTargetsOutput,
    to_perception_targets,
)
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

STAMP_NS = 1_700_000_000_250_000_000
NOW_NS = STAMP_NS + 50_000_000  # published 50 ms after the camera's stamp
HEADER = Header(stamp=Time(sec=STAMP_NS // 10 ** 9, nanosec=STAMP_NS % 10 ** 9), frame_id='cam')
STAGES = {'queue_wait': 0.4, 'preprocess': 1.5, 'inference': 20.25, 'postprocess': 0.75}


def ns(time) -> int:
    return time.sec * 10 ** 9 + time.nanosec


def test_without_ai_msgs_nothing_is_published_and_auto_is_as_before():
    assert ai_msgs_module() is None  # this process, outside tros_messages: not a board
    assert detection_msgs.resolve_format('auto') in ('vision_msgs', 'json')
    assert detection_msgs.publishes_perception_targets('auto') is False
    with pytest.raises(ConfigError, match='^detections_format is perception_targets but the '
                                          'ai_msgs package is not installed'):
        detection_msgs.publishes_perception_targets('perception_targets')


@pytest.fixture
def ai_msgs(tros_messages):
    return tros_messages[1]


def convert(ai_msgs, detections, **kwargs):
    return to_perception_targets(HEADER, detections, 'yolov8', STAGES, NOW_NS, module=ai_msgs,
                                 **kwargs)


def test_every_detection_is_a_target_with_its_box_score_class_and_track_id(ai_msgs):
    dets = [Detection((10.4, 20.6, 110.2, 220.9), 0.875, 0, 'person', track_id=7),
            Detection((-3.0, 5.0, 50.0, 60.0), 0.5, 2, 'car')]
    msg = convert(ai_msgs, dets, fps=15)
    assert isinstance(msg, ai_msgs.PerceptionTargets)
    assert msg.header == HEADER and msg.fps == 15
    assert [t.type for t in msg.targets] == ['person', 'car']
    assert [t.track_id for t in msg.targets] == [7, 0]  # 0: untracked, as dnn_node leaves it
    [roi] = msg.targets[0].rois
    assert roi.type == 'person' and roi.confidence == 0.875  # the web view labels by Roi type
    assert (roi.rect.x_offset, roi.rect.y_offset, roi.rect.width, roi.rect.height) == \
        (10, 21, 100, 200)
    clipped = msg.targets[1].rois[0].rect  # RegionOfInterest is unsigned: clipped at 0
    assert (clipped.x_offset, clipped.width) == (0, 50)
    assert msg.disappeared_targets == []


def test_keypoints_are_points_with_their_scores_and_crop_outputs_are_kept(ai_msgs):
    pose = Detection((0, 0, 10, 10), 0.9, 0, 'person', keypoints=((1.5, 2.5), (3.0, 4.0)),
                     keypoint_scores=(0.75, 0.25),
                     attributes={'crop_class_id': 3, 'crop_class_name': 'helmet',
                                 'crop_score': 0.5})
    [target] = convert(ai_msgs, [pose]).targets
    [points] = target.points
    assert points.type == 'body_kps'
    assert [(p.x, p.y) for p in points.point] == [(1.5, 2.5), (3.0, 4.0)]
    assert list(points.confidence) == [0.75, 0.25]
    [attribute] = target.attributes
    assert (attribute.type, attribute.value, attribute.confidence) == ('helmet', 3.0, 0.5)
    face = Detection((0, 0, 10, 10), 0.9, 0, 'face', keypoints=((1.0, 2.0),),
                     attributes={'embedding': [0.5, -0.25]})
    [target] = convert(ai_msgs, [face], keypoints_type='face_kps').targets
    assert target.points[0].type == 'face_kps' and list(target.points[0].confidence) == [1.0]
    [capture] = target.captures
    assert list(capture.features) == [0.5, -0.25] and capture.header == HEADER


def test_perfs_are_the_frames_stages_as_dnn_node_names_them(ai_msgs):
    perfs = convert(ai_msgs, []).perfs
    assert [p.type for p in perfs] == ['yolov8_preprocess', 'yolov8_predict_infer',
                                       'yolov8_postprocess', 'yolov8_pipeline']
    assert [p.time_ms_duration for p in perfs] == pytest.approx([1.5, 20.25, 0.75, 50.0])
    pre, infer, post, pipeline = perfs
    assert ns(post.stamp_end) == NOW_NS  # back to back, the last ending now
    assert ns(infer.stamp_end) == ns(post.stamp_start)
    assert ns(pre.stamp_end) == ns(infer.stamp_start)
    assert ns(infer.stamp_end) - ns(infer.stamp_start) == 20_250_000
    assert (ns(pipeline.stamp_start), ns(pipeline.stamp_end)) == (STAMP_NS, NOW_NS)


def test_a_message_serialises_and_reads_back_whole(ai_msgs):
    det = Detection((4, 8, 36, 72), 0.75, 0, 'person', track_id=2 ** 40,
                    keypoints=((5.5, 9.5),), keypoint_scores=(0.5,))
    msg = convert(ai_msgs, [det], fps=30)
    raw = serialize_message(msg)
    assert raw[:4] == b'\x00\x01\x00\x00'  # XCDR1 little-endian, as on a board
    assert deserialize_message(raw, ai_msgs.PerceptionTargets) == msg


@pytest.mark.parametrize('requested, vision, ai, topic, targets', [
    ('auto', False, False, 'json', False),
    ('auto', True, False, 'vision_msgs', False),
    ('auto', False, True, 'json', True),  # a TROS board without vision_msgs
    ('auto', True, True, 'vision_msgs', True),
    ('perception_targets', True, True, 'vision_msgs', True),
    ('perception_targets', False, True, 'json', True),
    ('json', True, True, 'json', False),
])
def test_perception_targets_go_beside_the_detections_when_ai_msgs_is_there(
        monkeypatch, requested, vision, ai, topic, targets):
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: object() if vision else None)
    monkeypatch.setattr(detection_msgs, 'ai_msgs_module', lambda: object() if ai else None)
    assert detection_msgs.resolve_format(requested) == topic
    assert detection_msgs.publishes_perception_targets(requested) is targets


class Recorded:
    """Stands in for a publisher: keeps what is published."""

    def __init__(self, msg_type, topic):
        self.msg_type, self.topic, self.sent = msg_type, topic, []

    def publish(self, msg):
        self.sent.append(msg)

    def get_subscription_count(self):
        return 0


def recording():
    """Return a ``create(msg_type, topic, qos)`` of Recorded publishers, and them by topic."""
    created = {}

    def create(msg_type, topic, qos):
        created[topic] = Recorded(msg_type, topic)
        return created[topic]
    return create, created


def test_a_stream_publishes_targets_beside_its_detections_with_its_frames_stages(ai_msgs):
    create, created = recording()
    output = PerceptionTargetsOutput('yolov8n-pose', lambda: NOW_NS)
    topics = DetectionTopics(create, 'json', 'pose', '/cam', '/cam/detections',
                             perception_targets=output)
    pose = Detection((0, 0, 10, 10), 0.5, 0, 'person', keypoints=((1.0, 2.0),))
    topics.publish(HEADER, [pose], (64, 48), stage_ms=STAGES)
    [msg] = created['/cam/perception_targets'].sent
    assert created['/cam/perception_targets'].msg_type is ai_msgs.PerceptionTargets
    assert len(created['/cam/detections'].sent) == 1  # beside, not instead of
    assert msg.header == HEADER and msg.targets[0].points[0].type == 'body_kps'
    assert [p.type for p in msg.perfs][0] == 'yolov8n-pose_preprocess' and msg.fps >= 0


def test_each_head_of_a_packed_model_has_its_targets_and_perfs(ai_msgs):
    create, created = recording()
    heads = [HeadConfig('faces', decoder='centerface'), HeadConfig('raw')]
    outputs = HeadOutputs(create, ['/cam'], heads, 'json', {'raw': 1}, 10.0,
                          perception_targets=PerceptionTargetsOutput('trunk', lambda: NOW_NS))
    assert '/cam/raw/perception_targets' not in created  # raw tensors: no detections
    face = Detection((0, 0, 10, 10), 0.5, 0, 'face')
    outputs.publish('/cam', HEADER, (64, 48), [HeadOutput('faces', [face], [], 3.0, 1.0)])
    [msg] = created['/cam/faces/perception_targets'].sent
    assert [(p.type, p.time_ms_duration) for p in msg.perfs] == [
        ('trunk_faces_predict_infer', 3.0), ('trunk_faces_postprocess', 1.0),
        ('trunk_faces_pipeline', 50.0)]
