"""
Keypoints on the wire: one Detection2D per keypoint, read back by the docs' worked example.

The reader is the Python block of docs/node.md ("Keypoints") itself, run here against the
messages the node builds (vision_msgs is a stand-in: it cannot be installed in the pip
environment), so the page cannot drift from the encoding.
"""

import re
import sys
import types

from conftest import REPO
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.keypoint_msgs import (
    COCO_KEYPOINTS,
    FACE_LANDMARKS,
    keypoint_names,
    to_keypoints_message,
)
import pytest
from std_msgs.msg import Header
from vision_msgs_fake import fake_vision_msgs


@pytest.fixture
def vision_msgs(monkeypatch):
    """Return the stand-in module, importable as vision_msgs.msg as the docs' example needs."""
    module = fake_vision_msgs()
    package = types.ModuleType('vision_msgs')
    msg = types.ModuleType('vision_msgs.msg')
    msg.__dict__.update(vars(module))
    package.msg = msg
    monkeypatch.setitem(sys.modules, 'vision_msgs', package)
    monkeypatch.setitem(sys.modules, 'vision_msgs.msg', msg)
    monkeypatch.setattr(detection_msgs, 'vision_msgs_module', lambda: module)
    return module


@pytest.fixture
def example(vision_msgs):
    """Run the worked example of docs/node.md; return its functions and classes by name."""
    with open(f'{REPO}/docs/node.md') as f:
        blocks = re.findall(r'^```python\n(.*?)^```', f.read(), re.M | re.S)
    [code] = [block for block in blocks if 'def group_keypoints' in block]
    namespace = {'__name__': 'docs_example'}
    exec(compile(code, 'docs/node.md', 'exec'), namespace)  # noqa: S102 (our own docs)
    return namespace


def header(sec):
    h = Header(frame_id='camera')
    h.stamp.sec = sec
    return h


def person(x, track_id=None, predicted=False):
    points = tuple((x + i, 10.0 + 2 * i) for i in range(17))
    scores = tuple(0.9 if i % 3 else 0.2 for i in range(17))
    return Detection((x, 0.0, x + 40.0, 100.0), 0.8, 0, 'person', points, keypoint_scores=scores,
                     track_id=track_id, predicted=predicted)


def messages(detections, task='pose', measured=None):
    """Return one frame's detections and keypoints messages, as DetectionTopics builds them."""
    array = detection_msgs.to_vision_msgs(header(5), detections, measured_header=measured)
    return array, to_keypoints_message(header(5), detections, array, task,
                                       detection_msgs.vision_msgs_module())


def test_the_worked_example_groups_each_persons_keypoints(example):
    people = [person(0.0, track_id=3), person(100.0, track_id=4, predicted=True), person(200.0)]
    detections, keypoints = messages(people, measured=header(4))
    assert keypoints.header.stamp.sec == detections.header.stamp.sec == 5
    assert len(keypoints.detections) == 3 * 17
    grouped = example['group_keypoints'](detections, keypoints)
    assert [(track_id, predicted) for track_id, predicted, _ in grouped] == [
        ('3', False), ('4', True), ('', False)]
    for det, (_, _, points) in zip(people, grouped):
        assert list(points) == list(COCO_KEYPOINTS)
        assert [points[name][:2] for name in COCO_KEYPOINTS] == list(det.keypoints)
        assert [points[name][2] for name in COCO_KEYPOINTS] == \
            pytest.approx(det.keypoint_scores)


def test_each_keypoint_is_a_0x0_detection_with_its_parents_id_and_header(vision_msgs):
    detections, keypoints = messages([person(0.0, track_id=3),
                                      person(100.0, track_id=4, predicted=True)],
                                     measured=header(4))
    first, last = keypoints.detections[0], keypoints.detections[-1]
    assert (first.bbox.size_x, first.bbox.size_y) == (0.0, 0.0)
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (0.0, 10.0)
    assert first.results[0].hypothesis.class_id == 'nose' and first.id == '3'
    assert (last.results[0].hypothesis.class_id, last.id) == ('right_ankle', '4')
    assert (first.header.stamp.sec, last.header.stamp.sec) == (5, 4)  # the prediction's mark


def test_the_worked_example_prints_a_frames_keypoints_once_both_came(example, capsys):
    faces = [Detection((10.0, 20.0, 50.0, 80.0), 0.93, 0, 'face',
                       ((20.0, 40.0), (40.0, 40.0), (30.0, 50.0), (22.0, 65.0), (38.0, 65.0)),
                       track_id=9)]
    detections, keypoints = messages(faces, task='detect')
    printer = types.SimpleNamespace(waiting={})
    arrived = example['KeypointPrinter'].arrived
    arrived(printer, 'keypoints', keypoints)
    assert capsys.readouterr().out == ''  # waits for the detections of the same stamp
    arrived(printer, 'detections', detections)
    assert capsys.readouterr().out == (
        "#9 {'left_eye': (20, 40), 'right_eye': (40, 40), 'nose': (30, 50), "
        "'left_mouth': (22, 65), 'right_mouth': (38, 65)}\n")
    assert printer.waiting == {}


def test_a_face_detectors_landmarks_carry_its_score_without_scores_of_their_own(vision_msgs):
    face = Detection((0.0, 0.0, 10.0, 10.0), 0.75, 0, 'face', ((1.0, 1.0),) * 5)
    _, keypoints = messages([face], task='detect')
    assert [k.results[0].hypothesis.score for k in keypoints.detections] == [0.75] * 5


def test_a_detection_without_keypoints_gets_placeholders_so_the_index_rule_holds(example):
    bare = Detection((0.0, 0.0, 10.0, 20.0), 0.5, 0, 'person')
    detections, keypoints = messages([bare, person(100.0, track_id=2)])
    assert len(keypoints.detections) == 2 * 17
    (_, _, empty), (_, _, full) = example['group_keypoints'](detections, keypoints)
    assert set(empty.values()) == {(5.0, 10.0, 0.0)}  # the box centre, score 0
    assert full['nose'][:2] == (100.0, 10.0)


def test_no_keypoints_give_an_empty_message(vision_msgs):
    detections, keypoints = messages([Detection((0.0, 0.0, 1.0, 1.0), 0.5, 0, 'x')])
    assert keypoints.detections == [] and keypoints.header.stamp.sec == 5


def test_keypoint_names():
    assert keypoint_names('pose', 17) == COCO_KEYPOINTS
    assert keypoint_names('detect', 5) == FACE_LANDMARKS
    assert keypoint_names('pose', 5) == ('kpt_0', 'kpt_1', 'kpt_2', 'kpt_3', 'kpt_4')
    assert len(COCO_KEYPOINTS) == 17 and len(set(COCO_KEYPOINTS)) == 17
