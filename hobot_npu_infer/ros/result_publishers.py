"""
Where an infer node's results go: its publishers, created and destroyed together.

Per input: the detections and what the model's task adds, masks or classes (for a packed model,
topics per head), and optionally a debug image with the detections drawn; the class names once
on ``label_info`` (vision_msgs only). The managed node's outputs are lifecycle publishers,
enabled only while it is active.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
from hobot_npu_infer.core.imaging.annotate import draw_detections
from hobot_npu_infer.core.imaging.nv12 import nv12_to_bgr, pixel_size
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig
from hobot_npu_infer.core.streaming.stream_runner import FrameResult
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.detection_msgs import DetectionTopics
from hobot_npu_infer.ros.head_outputs import HeadOutputs
from hobot_npu_infer.ros.image_conversion import array_to_image_msg
from hobot_npu_infer.ros.qos import LATCHED
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header


class ResultPublishers:
    """
    The publishers of one loaded model's results, and how a result is published.

    ``task`` is the model's (None for a packed model), ``head_tasks`` each decoding head's.
    """

    def __init__(self, node: Node, managed: bool, fmt: str, sources: Sequence[str],
                 outputs: Sequence[str], debug_image: bool, task: Optional[str],
                 heads: List[HeadConfig], outputs_per_head: Dict[str, int],
                 head_tasks: Dict[str, str], window_s: float):
        self.node = node
        self.managed = managed
        self._created: list = []
        self.detections: Dict[str, DetectionTopics] = {}
        self.debug_images: Dict[str, object] = {}
        for source, out in zip(sources, outputs):
            if not heads:  # a packed model's heads publish on topics of their own
                self.detections[source] = DetectionTopics(self._create, fmt, task, source, out)
            if debug_image:
                self.debug_images[source] = self._create(Image, f'{source}/debug_image', 5)
        self.heads: Optional[HeadOutputs] = HeadOutputs(
            self._create, sources, heads, fmt, outputs_per_head, window_s,
            head_tasks) if heads else None
        self.label_info = self._create(detection_msgs.vision_msgs_module().LabelInfo,
                                       'label_info', LATCHED) if fmt == 'vision_msgs' else None

    def _create(self, msg_type, topic: str, qos):
        create: Callable = self.node.create_lifecycle_publisher if self.managed \
            else self.node.create_publisher
        publisher = create(msg_type, topic, qos)
        self._created.append(publisher)
        return publisher

    def publish_class_names(self, header: Header, class_names: Sequence[str]) -> None:
        """Publish the class names on ``label_info``, once per start (it is latched)."""
        if self.label_info is not None:
            self.label_info.publish(detection_msgs.label_info(header, class_names))

    def publish(self, result: FrameResult) -> None:
        """Publish one frame's detections (or head outputs) and debug image, with its header."""
        source, header = result.frame.source, result.frame.meta
        nv12 = result.channel_order == 'nv12'
        size: Tuple[int, int] = pixel_size(result.image) if nv12 \
            else result.image.shape[1::-1]
        if result.heads is not None:
            self.heads.publish(source, header, size, result.heads)
        else:
            self.detections[source].publish(header, result.detections, size)
        if source in self.debug_images:
            bgr = nv12_to_bgr(result.image) if nv12 else result.image \
                if result.channel_order == 'bgr' or result.image.ndim == 2 \
                else cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
            self.debug_images[source].publish(
                array_to_image_msg(draw_detections(bgr, result.detections), 'bgr8', header))

    def destroy(self) -> None:
        """Destroy every publisher this object created."""
        for publisher in self._created:
            if self.managed:
                self.node.destroy_lifecycle_publisher(publisher)
            else:
                self.node.destroy_publisher(publisher)
        self._created = []
