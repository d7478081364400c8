"""
image_source: publishes real images as a camera would, on one or more topics.

Sources are sample photo names (astronaut, coffee, ...), image files, directories of images or
video files; topic ``i`` shows source ``i`` (sources are reused when there are fewer). Each
message is stamped when published and carries its topic's frame_id.
"""

from typing import List

from hobot_npu_infer.core.imaging.geometry import parse_size
from hobot_npu_infer.core.imaging.image_sequences import frames
from hobot_npu_infer.ros.image_conversion import (
    array_to_compressed_msg,
    array_to_image_msg,
    SUPPORTED_ENCODINGS,
)
from hobot_npu_infer.ros.node_main import node_usage, run_node
from hobot_npu_infer.ros.param_specs import (
    boolean,
    declare,
    first_problem,
    guard_changes,
    integer,
    InvalidParameter,
    number,
    one_of,
    size_text,
    string,
    strings,
)
from hobot_npu_infer.ros.qos import image_qos, RELIABILITY
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

COMPRESSED = ('jpeg', 'png')

PARAMETERS = [
    strings('images', ['astronaut'], 'sample names, image files, directories or videos'),
    strings('topics', ['image_raw'], 'image topics; topic i shows images[i % len(images)]'),
    strings('frame_ids', [], 'frame_id per topic (default: camera, or camera_<i> for several)'),
    number('rate_hz', 10.0, 'publishing rate per topic', 0.1, 1000.0),
    string('size', '', 'resize frames to WxH (empty: as they are)', check=size_text),
    string('encoding', 'bgr8', 'Image encoding, or jpeg/png for CompressedImage',
           check=one_of(SUPPORTED_ENCODINGS + COMPRESSED)),
    string('qos_reliability', 'best_effort', 'best_effort or reliable',
           check=one_of(tuple(RELIABILITY))),
    integer('qos_depth', 1, 'publisher queue depth', 1, 100),
    boolean('loop', True, 'start again at the end of a directory or video'),
    integer('max_frames', 0, 'stop publishing after this many frames per topic (0: never)',
            0, 1_000_000_000),
]


class ImageSource(Node):

    def __init__(self, **kwargs):
        super().__init__('image_source', allow_undeclared_parameters=True, **kwargs)
        p = declare(self, PARAMETERS)
        specs = {spec.name: spec for spec in PARAMETERS}
        guard_changes(self, lambda changes: first_problem(specs, changes), lambda changes: None)
        topics: List[str] = p['topics']
        if not topics or not p['images']:
            raise InvalidParameter('images and topics must each name at least one entry')
        frame_ids = p['frame_ids'] or (['camera'] if len(topics) == 1 else
                                       [f'camera_{i}' for i in range(len(topics))])
        if len(frame_ids) != len(topics):
            raise InvalidParameter(
                f'frame_ids has {len(frame_ids)} names for {len(topics)} topics')
        size = parse_size(p['size']) if p['size'] else None
        self.encoding = p['encoding']
        self.compressed = self.encoding in COMPRESSED
        qos = image_qos(p['qos_reliability'], p['qos_depth'])
        msg_type = CompressedImage if self.compressed else Image
        self.streams = []
        for i, topic in enumerate(topics):
            sequence = frames(p['images'][i % len(p['images'])], size, p['loop'])
            self.streams.append((self.create_publisher(msg_type, topic, qos), sequence,
                                 frame_ids[i], {}))
        self.max_frames = p['max_frames']
        self.published = 0
        self.timer = self.create_timer(1.0 / p['rate_hz'], self._tick,
                                       callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f'publishing {", ".join(p["images"])} on {", ".join(topics)} at '
                               f'{p["rate_hz"]:g} Hz as {self.encoding}')

    def _message(self, frame, cache: dict):
        """Still images repeat: the message is built once per distinct frame object."""
        key = id(frame)
        if cache.get('key') != key:
            cache['key'] = key
            cache['frame'] = frame  # keeps id(frame) unique while cached
            cache['msg'] = array_to_compressed_msg(frame, self.encoding) if self.compressed \
                else array_to_image_msg(frame, self.encoding)
        return cache['msg']

    def _tick(self) -> None:
        if self.max_frames and self.published >= self.max_frames:
            self.timer.cancel()
            return
        for publisher, sequence, frame_id, cache in self.streams:
            frame = next(sequence, None)
            if frame is None:
                continue
            msg = self._message(frame, cache)
            msg.header.frame_id = frame_id
            msg.header.stamp = self.get_clock().now().to_msg()
            publisher.publish(msg)
        self.published += 1


def main(args=None):
    raise SystemExit(run_node(ImageSource, args, threads=1, usage=node_usage(
        'image_source', 'Publishes real images as a camera would, on one or more topics.',
        PARAMETERS)))


if __name__ == '__main__':
    main()
