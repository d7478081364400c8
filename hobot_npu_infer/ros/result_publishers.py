"""
Where an infer node's results go: its publishers, created and destroyed together.

Per input: the detections and what the model's task adds, keypoints, masks, a class map or
classes, PerceptionTargets on a TROS board, and markers (for a packed model, topics per head),
and optionally a debug image with the detections drawn; the class names once on
``label_info`` (vision_msgs only). Markers and the debug image are computed only while someone
subscribes to them. A frame of predictions
(shadow tracking: no image) publishes its detections, keypoints and markers, no masks and no
debug image. The managed node's outputs are lifecycle publishers, enabled only while it is
active.
"""

from typing import Callable, Dict, List, Optional, Sequence

import cv2
from hobot_npu_infer.core.imaging.annotate import draw_detections
from hobot_npu_infer.core.imaging.nv12 import nv12_to_bgr
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig
from hobot_npu_infer.core.streaming.stream_runner import FrameResult
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.detection_msgs import DetectionTopics
from hobot_npu_infer.ros.head_outputs import HeadOutputs
from hobot_npu_infer.ros.image_conversion import array_to_image_msg
from hobot_npu_infer.ros.markers import DEFAULT_PIXEL_SIZE
from hobot_npu_infer.ros.perception_targets import PerceptionTargetsOutput
from hobot_npu_infer.ros.qos import LATCHED
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header


class ResultPublishers:
    """
    The publishers of one loaded model's results, and how a result is published.

    ``task`` is the model's (None for a packed model), ``head_tasks`` each decoding head's;
    ``num_keypoints`` the model decoder's (``Decoder.num_keypoints``: a detect model with
    keypoints, CenterFace, gets a keypoints topic too), ``head_keypoints`` each decoding head's.
    ``markers`` adds ``<prefix>/markers`` per stream, 1 image pixel = ``markers_pixel_size``
    metres; ``perception_targets`` adds ai_msgs/PerceptionTargets per stream.
    """

    def __init__(self, node: Node, managed: bool, fmt: str, sources: Sequence[str],
                 outputs: Sequence[str], debug_image: bool, task: Optional[str],
                 heads: List[HeadConfig], outputs_per_head: Dict[str, int],
                 head_tasks: Dict[str, str], window_s: float, num_keypoints: int = 0,
                 head_keypoints: Optional[Dict[str, int]] = None, markers: bool = True,
                 markers_pixel_size: float = DEFAULT_PIXEL_SIZE,
                 perception_targets: Optional[PerceptionTargetsOutput] = None):
        self.node = node
        self.managed = managed
        self._created: list = []
        self.detections: Dict[str, DetectionTopics] = {}
        self.debug_images: Dict[str, object] = {}
        for source, out in zip(sources, outputs):
            if not heads:  # a packed model's heads publish on topics of their own
                self.detections[source] = DetectionTopics(
                    self._create, fmt, task, source, out, num_keypoints, markers,
                    markers_pixel_size, perception_targets)
            if debug_image:
                self.debug_images[source] = self._create(Image, f'{source}/debug_image', 5)
        self.heads: Optional[HeadOutputs] = HeadOutputs(
            self._create, sources, heads, fmt, outputs_per_head, window_s, head_tasks,
            head_keypoints, markers, markers_pixel_size, perception_targets) if heads else None
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
        """
        Publish one frame's detections (or head outputs) and debug image, with its header.

        A frame of predictions (shadow tracking) has no image, and no debug image.
        """
        source, header, size = result.frame.source, result.frame.meta, result.image_size
        if result.heads is not None:
            self.heads.publish(source, header, size, result.heads)
        else:
            self.detections[source].publish(header, result.detections, size,
                                            stage_ms=result.stage_ms)
        debug = self.debug_images.get(source)
        if debug is not None and result.image is not None and debug.get_subscription_count():
            bgr = nv12_to_bgr(result.image) if result.channel_order == 'nv12' else result.image \
                if result.channel_order == 'bgr' or result.image.ndim == 2 \
                else cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
            debug.publish(
                array_to_image_msg(draw_detections(bgr, result.detections), 'bgr8', header))

    def destroy(self) -> None:
        """Destroy every publisher this object created."""
        for publisher in self._created:
            if self.managed:
                self.node.destroy_lifecycle_publisher(publisher)
            else:
                self.node.destroy_publisher(publisher)
        self._created = []
