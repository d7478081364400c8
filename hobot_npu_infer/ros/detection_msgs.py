"""
Detections as ROS messages: vision_msgs/Detection2DArray when installed, JSON otherwise.

The JSON fallback is a ``std_msgs/String`` whose data is one object::

    {"header": {"stamp": {"sec": S, "nanosec": N}, "frame_id": F},
     "width": W, "height": H,
     "detections": [{"class_id": 0, "class_name": "face", "score": 0.93,
                     "box": [x1, y1, x2, y2], "keypoints": [[x, y], ...]}]}

Boxes are in pixels of the input image. vision_msgs carries the class id (as a string) and score
in ``results`` and the box centre and size in ``bbox``; keypoints have no field there.
"""

import json
from typing import Any, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from std_msgs.msg import String

FORMATS = ('auto', 'vision_msgs', 'json')


def vision_msgs_module() -> Optional[Any]:
    try:
        import vision_msgs.msg
        return vision_msgs.msg
    except ImportError:
        return None


def resolve_format(requested: str) -> str:
    """Return the format actually used: 'vision_msgs' or 'json'."""
    if requested not in FORMATS:
        raise ConfigError(f'detections_format must be one of {FORMATS}, got {requested!r}')
    available = vision_msgs_module() is not None
    if requested == 'vision_msgs' and not available:
        raise ConfigError('detections_format is vision_msgs but the vision_msgs package is not '
                          'installed (install ros-<distro>-vision-msgs, or use auto or json)')
    if requested == 'auto':
        return 'vision_msgs' if available else 'json'
    return requested


def message_type(fmt: str):
    return vision_msgs_module().Detection2DArray if fmt == 'vision_msgs' else String


def _set_center(bbox, cx: float, cy: float) -> None:
    center = bbox.center
    if hasattr(center, 'position'):  # vision_msgs >= 4 (Humble, Jazzy)
        center.position.x, center.position.y = cx, cy
    else:  # vision_msgs 3 used geometry_msgs/Pose2D
        center.x, center.y = cx, cy


def to_vision_msgs(header, detections: Sequence[Detection], module=None):
    module = module or vision_msgs_module()
    array = module.Detection2DArray()
    array.header = header
    for det in detections:
        x1, y1, x2, y2 = det.box
        msg = module.Detection2D()
        msg.header = header
        hypothesis = module.ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = str(det.class_id)
        hypothesis.hypothesis.score = float(det.score)
        msg.results.append(hypothesis)
        _set_center(msg.bbox, (x1 + x2) / 2.0, (y1 + y2) / 2.0)
        msg.bbox.size_x, msg.bbox.size_y = float(x2 - x1), float(y2 - y1)
        array.detections.append(msg)
    return array


def to_json_msg(header, detections: Sequence[Detection], size: Tuple[int, int]) -> String:
    return String(data=json.dumps({
        'header': {'stamp': {'sec': header.stamp.sec, 'nanosec': header.stamp.nanosec},
                   'frame_id': header.frame_id},
        'width': size[0], 'height': size[1],
        'detections': [d.to_dict() for d in detections]}))


def to_message(fmt: str, header, detections: Sequence[Detection], size: Tuple[int, int]):
    if fmt == 'vision_msgs':
        return to_vision_msgs(header, detections)
    return to_json_msg(header, detections, size)


def label_info(header, class_names: Sequence[str], module=None):
    """vision_msgs/LabelInfo for the model's classes."""
    module = module or vision_msgs_module()
    info = module.LabelInfo()
    info.header = header
    for class_id, name in enumerate(class_names):
        vc = module.VisionClass()
        vc.class_id = class_id
        vc.class_name = name
        info.class_map.append(vc)
    return info


def detections_from_message(msg, class_names: Sequence[str] = ()) -> List[dict]:
    """Either message format back to detection dicts (boxes, scores, class ids): for tools."""
    if isinstance(msg, String):
        return json.loads(msg.data)['detections']
    out = []
    for det in msg.detections:
        center = det.bbox.center
        cx, cy = (center.position.x, center.position.y) if hasattr(center, 'position') \
            else (center.x, center.y)
        w, h = det.bbox.size_x, det.bbox.size_y
        best = max(det.results, key=lambda r: r.hypothesis.score)
        class_id = int(best.hypothesis.class_id)
        out.append({'class_id': class_id, 'score': best.hypothesis.score,
                    'class_name': class_names[class_id] if class_id < len(class_names)
                    else str(class_id),
                    'box': [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 'keypoints': []})
    return out


def stamp_of(msg) -> Tuple[int, int]:
    """(sec, nanosec) of the image the detections belong to, in either format."""
    if isinstance(msg, String):
        stamp = json.loads(msg.data)['header']['stamp']
        return stamp['sec'], stamp['nanosec']
    return msg.header.stamp.sec, msg.header.stamp.nanosec
