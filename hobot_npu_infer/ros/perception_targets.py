"""
Detections as ai_msgs/PerceptionTargets, the message TROS consumers read.

hobot_websocket's browser view, tracking, fusion and the dnn_node examples read it. One Target
per detection: its type is the class name, ``track_id`` the tracker's ID (0 while untracked, as
dnn_node leaves it), one Roi with the box and the score (its type the class name too: the web
view labels a box by it), one Point set with the keypoints (their scores as its confidences), a
crop stage's class as an Attribute or its embedding as a Capture's features; and ``perfs``: the
frame's stage timings, named as dnn_node names them (``<model>_preprocess`` ...). ai_msgs exists
only on TROS boards: it is imported when present.
"""

from dataclasses import dataclass
import importlib
from typing import Any, Callable, Dict, Optional, Sequence

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32
from hobot_npu_infer.core.detection import Detection

PERCEPTION_TARGETS = 'perception_targets'  # the detections_format value, and the topic's name
# our stages, last first, and dnn_node's perf name suffix for each (dnn_node_example's parser)
PERF_STAGES = (('postprocess', 'postprocess'), ('inference', 'predict_infer'),
               ('preprocess', 'preprocess'))


@dataclass(frozen=True)
class PerceptionTargetsOutput:
    """What a stream needs to publish PerceptionTargets: its perfs' name and the node's clock."""

    perf_name: str  # the model's name (a packed model's head: <model>_<head>)
    now_ns: Callable[[], int]


def ai_msgs_module() -> Optional[Any]:
    """Return ``ai_msgs.msg`` when it is installed (a TROS board), else None."""
    try:
        return importlib.import_module('ai_msgs.msg')
    except ImportError:
        return None


def _time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _perf(module, name: str, start_ns: int, end_ns: int):
    perf = module.Perf()
    perf.type = name
    perf.stamp_start, perf.stamp_end = _time(start_ns), _time(end_ns)
    perf.time_ms_duration = (end_ns - start_ns) / 1e6
    return perf


def _perfs(module, name: str, stage_ms: Dict[str, float], stamp, now_ns: int) -> list:
    """
    One Perf per measured stage, and the pipeline's: from the frame's stamp to ``now_ns``.

    The stages are laid back to back, the last ending at ``now_ns``: their durations are the
    measured ones, their start and end times the latest they can have been.
    """
    perfs, end_ns = [], now_ns
    for stage, suffix in PERF_STAGES:
        if stage in stage_ms:
            start_ns = end_ns - int(stage_ms[stage] * 1e6)
            perfs.append(_perf(module, f'{name}_{suffix}', start_ns, end_ns))
            end_ns = start_ns
    perfs.reverse()
    stamp_ns = stamp.sec * 1_000_000_000 + stamp.nanosec
    if 0 < stamp_ns <= now_ns:
        perfs.append(_perf(module, f'{name}_pipeline', stamp_ns, now_ns))
    return perfs


def _add_crop_output(module, target, header, attributes: Dict[str, Any]) -> None:
    """
    Add a crop stage's output: a class as an Attribute (type: its name, value: its id).

    An embedding goes in a Capture's ``features``, where TROS puts a target's feature vector.
    """
    if 'crop_class_id' in attributes:
        attribute = module.Attribute()
        attribute.type = str(attributes['crop_class_name'])
        attribute.value = float(attributes['crop_class_id'])
        attribute.confidence = float(attributes['crop_score'])
        target.attributes.append(attribute)
    if 'embedding' in attributes:
        capture = module.Capture()
        capture.header = header
        capture.features = [float(v) for v in attributes['embedding']]
        target.captures.append(capture)


def to_perception_targets(header, detections: Sequence[Detection], perf_name: str,
                          stage_ms: Dict[str, float], now_ns: int, fps: int = -1,
                          keypoints_type: str = 'body_kps', module=None):
    """
    Return the PerceptionTargets of one frame's detections, with the frame's ``header``.

    ``stage_ms`` holds the frame's stage durations (empty for a frame of predictions), ``fps``
    the stream's output rate (-1: not known), ``now_ns`` the node's clock; ``keypoints_type``
    is the Points' type (body_kps, face_kps, hand_kps: how hobot_websocket draws them).
    """
    module = module or ai_msgs_module()
    msg = module.PerceptionTargets()
    msg.header = header
    msg.fps = max(-1, min(int(fps), 32767))  # int16
    msg.perfs = _perfs(module, perf_name, stage_ms, header.stamp, now_ns)
    for det in detections:
        target = module.Target()
        target.type = det.class_name
        target.track_id = 0 if det.track_id is None else int(det.track_id)
        roi = module.Roi()
        roi.type = det.class_name  # hobot_websocket labels a box by its Roi's type
        x1, y1, x2, y2 = (max(0.0, float(v)) for v in det.box)
        roi.rect.x_offset, roi.rect.y_offset = int(round(x1)), int(round(y1))
        roi.rect.width, roi.rect.height = int(round(x2 - x1)), int(round(y2 - y1))
        roi.confidence = float(det.score)
        target.rois.append(roi)
        if det.keypoints:
            points = module.Point()
            points.type = keypoints_type
            points.point = [Point32(x=float(x), y=float(y)) for x, y in det.keypoints]
            points.confidence = [float(c) for c in det.keypoint_scores] \
                if det.keypoint_scores else [1.0] * len(det.keypoints)
            target.points.append(points)
        _add_crop_output(module, target, header, det.attributes or {})
        msg.targets.append(target)
    return msg
