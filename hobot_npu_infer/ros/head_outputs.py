"""
A packed model's heads on ROS: per input and head, a topic and statistics.

A head with a decoder publishes ``<input>/<head>/detections`` (the node's detections format),
``<input>/<head>/markers`` and, by its task, ``<input>/<head>/keypoints``, ``masks``,
``class_map`` or ``classes`` (see :class:`~hobot_npu_infer.ros.detection_msgs.DetectionTopics`;
on a frame of predictions, no masks, class map or classes); a head without one publishes its
raw outputs, output ``i`` as ``std_msgs/Float32MultiArray`` on ``<input>/<head>/tensor_<i>``
(dimensions in ``layout.dim``; this message type has no header, so the frame's stamp is not
carried). Each input and head has a diagnostics status
``<node>: head <head> on <input>`` (see :mod:`status_names`).
"""

import array
import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.multi_head.multi_head_pipeline import (
    HeadConfig,
    HeadOutput,
    MultiHeadPipeline,
)
from hobot_npu_infer.core.telemetry.health_reports import (
    HEAD_STAGES,
    Level,
    StatusReport,
    summary_values,
)
from hobot_npu_infer.core.telemetry.rolling_stats import LatencyWindow
from hobot_npu_infer.core.telemetry.status_names import head_status
from hobot_npu_infer.ros.detection_msgs import DetectionTopics
from hobot_npu_infer.ros.markers import DEFAULT_PIXEL_SIZE
from hobot_npu_infer.ros.perception_targets import PerceptionTargetsOutput
import numpy as np
from std_msgs.msg import Float32MultiArray, MultiArrayDimension


def tensor_message(tensor: np.ndarray) -> Float32MultiArray:
    msg = Float32MultiArray()
    values = np.ascontiguousarray(tensor, np.float32)
    stride = values.size
    for i, size in enumerate(values.shape):
        msg.layout.dim.append(MultiArrayDimension(label=f'dim{i}', size=size, stride=stride))
        stride //= max(size, 1)
    data = array.array('f')
    data.frombytes(values.tobytes())
    msg.data = data  # an array.array: no per-element checks (see image_conversion)
    return msg


class HeadOutputs:
    """
    Per input and head: its publishers and latency windows, and its diagnostic status.

    ``create_publisher(msg_type, topic, qos)`` is the node's own kind (lifecycle or not);
    ``tasks`` names each decoding head's task (detect when not named), ``keypoints`` its
    decoder's number of keypoints (0 when not named); ``markers``, ``markers_pixel_size`` and
    ``perception_targets`` as :class:`~hobot_npu_infer.ros.detection_msgs.DetectionTopics`
    takes them (a head's perfs are named ``<model>_<head>_...``).
    """

    def __init__(self, create_publisher: Callable, sources: Sequence[str],
                 heads: List[HeadConfig], fmt: str, outputs_per_head: Dict[str, int],
                 window_s: float, tasks: Optional[Dict[str, str]] = None,
                 keypoints: Optional[Dict[str, int]] = None, markers: bool = True,
                 markers_pixel_size: float = DEFAULT_PIXEL_SIZE,
                 perception_targets: Optional[PerceptionTargetsOutput] = None):
        self.detections: Dict[Tuple[str, str], DetectionTopics] = {}
        self.tensors: Dict[Tuple[str, str], list] = {}
        self.latency: Dict[Tuple[str, str], Dict[str, LatencyWindow]] = {}
        tasks, keypoints = tasks or {}, keypoints or {}
        for source in sources:
            for head in heads:
                key, prefix = (source, head.name), f'{source}/{head.name}'
                if head.decoder:
                    self.detections[key] = DetectionTopics(
                        create_publisher, fmt, tasks.get(head.name, 'detect'), prefix,
                        f'{prefix}/detections', keypoints.get(head.name, 0), markers,
                        markers_pixel_size, perception_targets and dataclasses.replace(
                            perception_targets,
                            perf_name=f'{perception_targets.perf_name}_{head.name}'))
                else:
                    self.tensors[key] = [
                        create_publisher(Float32MultiArray, f'{prefix}/tensor_{i}', 10)
                        for i in range(outputs_per_head[head.name])]
                self.latency[key] = {stage: LatencyWindow(window_s) for stage in HEAD_STAGES}

    def publish(self, source: str, header, size: Tuple[int, int],
                outputs: List[HeadOutput]) -> None:
        """
        Publish one frame's head outputs, with its header; ``size`` is the input image's.

        An output with a ``measured_meta`` holds the tracker's predictions for a head that did
        not run on this frame (shadow tracking): they are marked as measured on that frame, and
        add nothing to the head's latency statistics.
        """
        for output in outputs:
            key = (source, output.head)
            if output.detections is not None:
                self.detections[key].publish(
                    header, output.detections, size, output.measured_meta,
                    {'inference': output.inference_ms, 'postprocess': output.postprocess_ms})
            else:
                for publisher, tensor in zip(self.tensors[key], output.tensors):
                    publisher.publish(tensor_message(tensor))
            if output.measured_meta is not None:
                continue
            now = time.monotonic()
            self.latency[key]['inference'].add(output.inference_ms, now)
            self.latency[key]['postprocess'].add(output.postprocess_ms, now)

    def reports(self, node_name: str, pipeline: MultiHeadPipeline) -> List[StatusReport]:
        reports = []
        now = time.monotonic()
        for (source, head), windows in self.latency.items():
            stats = pipeline.scheduler(source).stats(now)[head]
            values = {'target_hz': f'{stats.target_hz:.2f}',
                      'achieved_hz': f'{stats.achieved_hz:.2f}', 'runs': str(stats.runs),
                      'skipped_frames': str(stats.skipped), 'enabled': str(stats.enabled).lower()}
            for stage, window in windows.items():
                values.update(summary_values(stage, window.summary(now)))
            message = (f'target {stats.target_hz:.1f} Hz, achieved {stats.achieved_hz:.1f} Hz'
                       if stats.enabled else 'disabled')
            reports.append(StatusReport(head_status(node_name, head, source), Level.OK, message,
                                        values))
        return reports
