"""
Detections as ROS messages: vision_msgs/Detection2DArray when installed, JSON otherwise.

The JSON fallback is a ``std_msgs/String`` whose data is one object::

    {"header": {"stamp": {"sec": S, "nanosec": N}, "frame_id": F},
     "width": W, "height": H,
     "detections": [{"class_id": 0, "class_name": "face", "score": 0.93,
                     "box": [x1, y1, x2, y2], "keypoints": [[x, y], ...]}]}

each detection as :meth:`Detection.to_dict` gives it, with what its task adds:
``keypoint_scores``, ``angle`` and ``rotated_box`` (obb), ``mask`` (``area``, ``polygons``),
and with tracking ``track_id`` and ``"predicted": true``; a frame of predictions (shadow
tracking) also holds ``measured_header``, the header of the frame they were measured on.
Boxes are in pixels of the input image. vision_msgs carries the class id (as a string) and score
in ``results``, the box centre, size and (obb) angle in ``bbox``, the track ID (as a string, ''
untracked) in ``id``. A predicted Detection2D has the header of the frame where the detector
last saw the object, its array the current frame's: a Detection2D whose ``header.stamp``
differs from its array's is a prediction. Keypoints go out on a topic of their own
(:mod:`keypoint_msgs`), masks as an instance-label image (:func:`masks_message`), a semantic
model's classes as a class-id image (:func:`class_map_message`), the classes of a
classification model also as ``vision_msgs/Classification``, every stream's detections as
markers (:mod:`markers`) while someone listens, and on TROS boards as ai_msgs/PerceptionTargets
(:mod:`perception_targets`) beside the detections.
"""

import json
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.imaging.annotate import instance_labels
from hobot_npu_infer.core.telemetry.rolling_stats import RateMeter
from hobot_npu_infer.ros.image_conversion import array_to_image_msg
from hobot_npu_infer.ros.keypoint_msgs import to_keypoints_message
from hobot_npu_infer.ros.markers import DEFAULT_PIXEL_SIZE, markers_message
from hobot_npu_infer.ros.perception_targets import (
    ai_msgs_module,
    PERCEPTION_TARGETS,
    PerceptionTargetsOutput,
    to_perception_targets,
)
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

FPS_WINDOW_S = 2.0  # PerceptionTargets' fps: the stream's output rate over this window
FORMATS = ('auto', 'vision_msgs', 'json', PERCEPTION_TARGETS)


def vision_msgs_module() -> Optional[Any]:
    try:
        import vision_msgs.msg
        return vision_msgs.msg
    except ImportError:
        return None


def resolve_format(requested: str) -> str:
    """Return the format of the detections topic: 'vision_msgs' or 'json'."""
    if requested not in FORMATS:
        raise ConfigError(f'detections_format must be one of {FORMATS}, got {requested!r}')
    available = vision_msgs_module() is not None
    if requested == 'vision_msgs' and not available:
        raise ConfigError('detections_format is vision_msgs but the vision_msgs package is not '
                          'installed (install ros-<distro>-vision-msgs, or use auto or json)')
    if requested in ('auto', PERCEPTION_TARGETS):
        return 'vision_msgs' if available else 'json'
    return requested


def publishes_perception_targets(requested: str) -> bool:
    """
    Say whether ai_msgs/PerceptionTargets go out beside the detections.

    Asked for by name, or by ``auto`` on a TROS board (where ai_msgs is installed).
    """
    available = ai_msgs_module() is not None
    if requested == PERCEPTION_TARGETS and not available:
        raise ConfigError('detections_format is perception_targets but the ai_msgs package is '
                          'not installed (a TROS package: source /opt/tros/<distro>/setup.bash)')
    return available and requested in ('auto', PERCEPTION_TARGETS)


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


def to_vision_msgs(header, detections: Sequence[Detection], module=None,
                   measured_header=None):
    """
    Return the Detection2DArray of one frame's detections, with ``header``.

    Each Detection2D's ``id`` is its track ID ('' untracked). On a frame of predictions,
    ``measured_header`` is the header of the frame they were measured on: a predicted
    detection's Detection2D gets it as its header, which marks it.
    """
    module = module or vision_msgs_module()
    array = module.Detection2DArray()
    array.header = header
    for det in detections:
        x1, y1, x2, y2 = det.box
        msg = module.Detection2D()
        msg.header = measured_header if det.predicted and measured_header is not None \
            else header
        msg.id = '' if det.track_id is None else str(det.track_id)
        hypothesis = module.ObjectHypothesisWithPose()
        _set_hypothesis(hypothesis.hypothesis, det)
        msg.results.append(hypothesis)
        _set_center(msg.bbox, (x1 + x2) / 2.0, (y1 + y2) / 2.0, float(det.angle or 0.0))
        msg.bbox.size_x, msg.bbox.size_y = float(x2 - x1), float(y2 - y1)
        array.detections.append(msg)
    return array


def _header_dict(header) -> dict:
    return {'stamp': {'sec': header.stamp.sec, 'nanosec': header.stamp.nanosec},
            'frame_id': header.frame_id}


def to_json_msg(header, detections: Sequence[Detection], size: Tuple[int, int],
                measured_header=None) -> String:
    """Return the JSON form; a frame of predictions also names the header they were measured on."""
    payload = {'header': _header_dict(header), 'width': size[0], 'height': size[1],
               'detections': [d.to_dict() for d in detections]}
    if measured_header is not None:
        payload['measured_header'] = _header_dict(measured_header)
    return String(data=json.dumps(payload))


def to_message(fmt: str, header, detections: Sequence[Detection], size: Tuple[int, int],
               measured_header=None):
    if fmt == 'vision_msgs':
        return to_vision_msgs(header, detections, measured_header=measured_header)
    return to_json_msg(header, detections, size, measured_header)


def _mono_image(pixels: np.ndarray, header) -> Image:
    """Return a uint8 (mono8) or uint16 (mono16, little-endian) array as an Image."""
    if pixels.dtype == np.uint8:
        return array_to_image_msg(pixels, 'mono8', header)
    # array_to_image_msg packs bytes: uint16 pixels go in as a mono8 image twice as wide
    msg = array_to_image_msg(pixels.astype('<u2').view(np.uint8), 'mono8', header)
    msg.encoding, msg.width = 'mono16', pixels.shape[1]
    return msg


def masks_message(header, detections: Sequence[Detection], size: Tuple[int, int]) -> Image:
    """
    Return the instance-label image of the input's ``size``: i + 1 on detection i's mask, else 0.

    mono8, or mono16 (little-endian) past 255 detections; ``i`` indexes the detections message
    of the same stamp.
    """
    return _mono_image(instance_labels(detections, size), header)


def class_map_message(header, detections: Sequence[Detection], size: Tuple[int, int]) -> Image:
    """
    Return a semantic model's class-id image of the input's ``size``: the class id per pixel.

    Each detection is a class with its pixels as mask. mono8 while every class id is below 255,
    else mono16 (little-endian); a pixel of no class (none found there, or its class below the
    score threshold) holds the encoding's largest value, 255 or 65535.
    """
    width, height = size
    dtype = np.uint8 if all(det.class_id < 255 for det in detections) else np.uint16
    classes = np.full((height, width), np.iinfo(dtype).max, dtype)
    for det in reversed(detections):  # the better scoring class keeps a shared pixel
        if det.mask is not None:
            det.mask.paste(classes, det.class_id)
    return _mono_image(classes, header)


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

    ``<prefix>/masks`` for segment, ``<prefix>/class_map`` for semantic, ``<prefix>/classes``
    for classify (vision_msgs format only: the JSON detections already hold the classes),
    ``<prefix>/keypoints`` for pose and for a decoder with ``num_keypoints`` (CenterFace's
    landmarks; vision_msgs format only: the JSON detections already hold the keypoints), and
    ``<prefix>/markers`` unless ``markers`` is False, built only while it has subscribers, 1
    image pixel = ``markers_pixel_size`` metres; with ``perception_targets``, the detections
    as ai_msgs/PerceptionTargets on ``<prefix>/perception_targets`` too, for TROS consumers.
    ``create(msg_type, topic, qos)`` makes the node's own kind of publisher.
    """

    def __init__(self, create: Callable, fmt: str, task: str, prefix: str,
                 detections_topic: str, num_keypoints: int = 0, markers: bool = True,
                 markers_pixel_size: float = DEFAULT_PIXEL_SIZE,
                 perception_targets: Optional[PerceptionTargetsOutput] = None):
        self.format = fmt
        self.task = task
        self.markers_pixel_size = markers_pixel_size
        vision = fmt == 'vision_msgs'
        self.detections = create(message_type(fmt), detections_topic, 10)
        self.masks = create(Image, f'{prefix}/masks', 5) if task == 'segment' else None
        self.class_map = create(Image, f'{prefix}/class_map', 5) if task == 'semantic' else None
        self.classes = create(vision_msgs_module().Classification, f'{prefix}/classes', 10) \
            if task == 'classify' and vision else None
        self.keypoints = create(message_type(fmt), f'{prefix}/keypoints', 10) \
            if vision and (task == 'pose' or num_keypoints > 0) else None
        self.markers = create(MarkerArray, f'{prefix}/markers', 5) if markers else None
        self.perception_targets = perception_targets
        self.targets = None
        if perception_targets is not None:
            self.ai_msgs = ai_msgs_module()
            self.targets = create(self.ai_msgs.PerceptionTargets,
                                  f'{prefix}/{PERCEPTION_TARGETS}', 10)
            self.rate = RateMeter(FPS_WINDOW_S)  # PerceptionTargets' fps
            self.keypoints_type = 'body_kps' if task == 'pose' else 'face_kps'

    def publish(self, header, detections: Sequence[Detection], size: Tuple[int, int],
                measured_header=None, stage_ms: Optional[Dict[str, float]] = None) -> None:
        """
        Publish one frame's detections with its header; ``size`` is the input image's.

        ``measured_header`` is given on a frame of predictions (shadow tracking): the header of
        the frame they were measured on. Such a frame has no masks, class map or classes.
        ``stage_ms``: the frame's stage durations, for PerceptionTargets' perfs.
        """
        if self.targets is not None:
            self.rate.tick()
            output = self.perception_targets
            self.targets.publish(to_perception_targets(
                header, detections, output.perf_name, stage_ms or {}, output.now_ns(),
                round(self.rate.rate_hz()), self.keypoints_type, self.ai_msgs))
        if self.format == 'vision_msgs':
            module = vision_msgs_module()
            array = to_vision_msgs(header, detections, module, measured_header)
            self.detections.publish(array)
            if self.keypoints is not None:
                self.keypoints.publish(
                    to_keypoints_message(header, detections, array, self.task, module))
        else:
            self.detections.publish(to_json_msg(header, detections, size, measured_header))
        if measured_header is None:
            if self.masks is not None:
                self.masks.publish(masks_message(header, detections, size))
            if self.class_map is not None:
                self.class_map.publish(class_map_message(header, detections, size))
            if self.classes is not None:
                self.classes.publish(classification(header, detections))
        if self.markers is not None and self.markers.get_subscription_count() > 0:
            self.markers.publish(
                markers_message(header, detections, size, self.markers_pixel_size))


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
    """
    Either message format back to detection dicts (boxes, scores, class ids): for tools.

    With ``track_id`` and ``"predicted": True`` where set, as :meth:`Detection.to_dict`.
    """
    if isinstance(msg, String):
        return json.loads(msg.data)['detections']
    out = []
    array_stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
    for det in msg.detections:
        center = det.bbox.center
        cx, cy = (center.position.x, center.position.y) if hasattr(center, 'position') \
            else (center.x, center.y)
        w, h = det.bbox.size_x, det.bbox.size_y
        best = max(det.results, key=lambda r: r.hypothesis.score)
        class_id = int(best.hypothesis.class_id)
        found = {'class_id': class_id, 'score': best.hypothesis.score,
                 'class_name': class_names[class_id] if class_id < len(class_names)
                 else str(class_id),
                 'box': [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 'keypoints': []}
        if det.id:
            found['track_id'] = int(det.id) if det.id.isdigit() else det.id
        if (det.header.stamp.sec, det.header.stamp.nanosec) != array_stamp:
            found['predicted'] = True
        out.append(found)
    return out


def stamp_of(msg) -> Tuple[int, int]:
    """(sec, nanosec) of the image the detections belong to, in either format."""
    if isinstance(msg, String):
        stamp = json.loads(msg.data)['header']['stamp']
        return stamp['sec'], stamp['nanosec']
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def ages_ms(records: Iterable[Tuple[float, Any]]) -> List[float]:
    """Return the age in ms of each (arrival time.time(), detections message): from its stamp."""
    return [(arrived - sec - nanosec * 1e-9) * 1e3 for arrived, msg in records
            for sec, nanosec in [stamp_of(msg)]]
