"""
Detections as messages: the JSON fallback (real std_msgs) and vision_msgs.

vision_msgs cannot be installed in the pip environment, so its path runs against a stand-in
module with the message fields of vision_msgs 4 (Humble, Jazzy): Detection2DArray,
Detection2D, ObjectHypothesisWithPose, BoundingBox2D with a Pose2D centre, LabelInfo,
VisionClass.
"""

import json
import types

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.ros import detection_msgs
import pytest
from std_msgs.msg import Header, String


def fake_vision_msgs():
    def message(name, **fields):
        def init(self):
            for key, factory in fields.items():
                setattr(self, key, factory())
        return type(name, (), {'__init__': init})

    point = message('Point2D', x=float, y=float)
    pose = message('Pose2D', position=point, theta=float)
    bbox = message('BoundingBox2D', center=pose, size_x=float, size_y=float)
    hypothesis = message('ObjectHypothesis', class_id=str, score=float)
    with_pose = message('ObjectHypothesisWithPose', hypothesis=hypothesis, pose=object)
    detection = message('Detection2D', header=Header, results=list, bbox=bbox, id=str)
    array = message('Detection2DArray', header=Header, detections=list)
    vision_class = message('VisionClass', class_id=int, class_name=str)
    label_info = message('LabelInfo', header=Header, class_map=list, threshold=float)
    return types.SimpleNamespace(Detection2DArray=array, Detection2D=detection,
                                 ObjectHypothesisWithPose=with_pose, LabelInfo=label_info,
                                 VisionClass=vision_class)


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
