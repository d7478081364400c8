"""
Detections as ROS messages: vision_msgs/Detection2DArray when installed, JSON otherwise.

The JSON fallback is a ``std_msgs/String`` whose data is one object::

    {"header": {"stamp": {"sec": S, "nanosec": N}, "frame_id": F},
     "width": W, "height": H,
     "detections": [{"class_id": 0, "class_name": "face", "score": 0.93,
                     "box": [x1, y1, x2, y2], "keypoints": [[x, y], ...]}]}

each detection as :meth:`Detection.to_dict` gives it, with what its task adds:
``keypoint_scores``, ``angle`` and ``rotated_box`` (obb), ``mask`` (``area``, ``polygons``).
Boxes are in pixels of the input image. vision_msgs carries the class id (as a string) and score
in ``results``, the box centre, size and (obb) angle in ``bbox``; keypoints and masks have no
field there. Masks go out as an instance-label image (:func:`masks_message`), the classes of a
classification model also as ``vision_msgs/Classification``.
"""

import json
from typing import Any, Callable, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.imaging.annotate import instance_labels
from hobot_npu_infer.ros.image_conversion import array_to_image_msg
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import String

FORMATS = ('auto', 'vision_msgs', 'json')
MASK_TASKS = ('segment', 'semantic')  # the tasks whose detections have masks


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


def _set_center(bbox, cx: float, cy: float, theta: float) -> None:
    center = bbox.center
    if hasattr(center, 'position'):  # vision_msgs >= 4 (Humble, Jazzy)
        center.position.x, center.position.y = cx, cy
    else:  # vision_msgs 3 used geometry_msgs/Pose2D
        center.x, center.y = cx, cy
    center.theta = theta


def _set_hypothesis(hypothesis, det: Detection) -> None:
    hypothesis.class_id = str(det.class_id)
    hypothesis.score = float(det.score)


def to_vision_msgs(header, detections: Sequence[Detection], module=None):
    module = module or vision_msgs_module()
    array = module.Detection2DArray()
    array.header = header
    for det in detections:
        x1, y1, x2, y2 = det.box
        msg = module.Detection2D()
        msg.header = header
        hypothesis = module.ObjectHypothesisWithPose()
        _set_hypothesis(hypothesis.hypothesis, det)
        msg.results.append(hypothesis)
        _set_center(msg.bbox, (x1 + x2) / 2.0, (y1 + y2) / 2.0, float(det.angle or 0.0))
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


def masks_message(header, detections: Sequence[Detection], size: Tuple[int, int]) -> Image:
    """
    Return the instance-label image of the input's ``size``: i + 1 on detection i's mask, else 0.

    mono8, or mono16 (little-endian) past 255 detections; ``i`` indexes the detections message
    of the same stamp.
    """
    labels = instance_labels(detections, size)
    if labels.dtype == np.uint8:
        return array_to_image_msg(labels, 'mono8', header)
    # array_to_image_msg packs bytes: the uint16 labels go in as a mono8 image twice as wide
    msg = array_to_image_msg(labels.astype('<u2').view(np.uint8), 'mono8', header)
    msg.encoding, msg.width = 'mono16', labels.shape[1]
    return msg


def classification(header, detections: Sequence[Detection], module=None):
    """vision_msgs/Classification of a classification model's top classes, best first."""
    module = module or vision_msgs_module()
    msg = module.Classification()
    msg.header = header
    for det in detections:
        hypothesis = module.ObjectHypothesis()
        _set_hypothesis(hypothesis, det)
        msg.results.append(hypothesis)
    return msg


class DetectionTopics:
    """
    One stream of detections on ROS: its detections topic and what its task adds.

    ``<prefix>/masks`` for segment and semantic, ``<prefix>/classes`` for classify (vision_msgs
    format only: the JSON detections already hold the classes). ``create(msg_type, topic,
    qos)`` makes the node's own kind of publisher.
    """

    def __init__(self, create: Callable, fmt: str, task: str, prefix: str,
                 detections_topic: str):
        self.format = fmt
        self.detections = create(message_type(fmt), detections_topic, 10)
        self.masks = create(Image, f'{prefix}/masks', 5) if task in MASK_TASKS else None
        self.classes = create(vision_msgs_module().Classification, f'{prefix}/classes', 10) \
            if task == 'classify' and fmt == 'vision_msgs' else None

    def publish(self, header, detections: Sequence[Detection], size: Tuple[int, int]) -> None:
        """Publish one frame's detections with its header; ``size`` is the input image's."""
        self.detections.publish(to_message(self.format, header, detections, size))
        if self.masks is not None:
            self.masks.publish(masks_message(header, detections, size))
        if self.classes is not None:
            self.classes.publish(classification(header, detections))


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
