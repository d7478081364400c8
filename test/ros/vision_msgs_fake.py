"""
A stand-in for vision_msgs, which cannot be installed in the pip environment.

The message classes of vision_msgs 4 (Humble, Jazzy) with their fields and default values:
Detection2DArray, Detection2D (``id``: the track ID), ObjectHypothesisWithPose,
ObjectHypothesis, BoundingBox2D with a Pose2D centre (Point2D ``position`` and ``theta``),
LabelInfo, VisionClass, Classification. Headers are real std_msgs ones.
"""

import types

from std_msgs.msg import Header


def fake_vision_msgs():
    """Return the stand-in of ``vision_msgs.msg``: a namespace of its message classes."""
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
    classification = message('Classification', header=Header, results=list)
    return types.SimpleNamespace(Detection2DArray=array, Detection2D=detection,
                                 ObjectHypothesisWithPose=with_pose, LabelInfo=label_info,
                                 VisionClass=vision_class, Classification=classification,
                                 ObjectHypothesis=hypothesis)
