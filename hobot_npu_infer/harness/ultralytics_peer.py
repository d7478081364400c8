r"""
The peer of the benchmarks: Ultralytics' predictor in an rclpy callback, as yolo_ros runs it.

Most Python ROS users run YOLO this way, one node per camera: a subscription to one
sensor_msgs/Image topic, the message turned into a numpy array as cv_bridge does (a view of its
bytes; rgb8 converted to BGR), ``YOLO(model, task='detect').predict(image, ...)`` on each
message inside the callback, spun by rclpy's SingleThreadedExecutor. Its boxes go out on
``<topic>/detections`` as std_msgs/String JSON with the image's header, in the shape of
infer_node's ``detections_format: json`` (ros/detection_msgs.py, to_json_msg), so one listener
measures both. The subscription has infer_node's camera QoS (best effort, keep last 1).

It runs in the Ultralytics environment (``make ultralytics``), not in .venv: it imports only the
standard library, rclpy, the message packages, numpy, OpenCV and Ultralytics, never the rest of
hobot_npu_infer. Ultralytics runs offline (``YOLO_OFFLINE=1``; its settings in a folder of
their own, ``YOLO_CONFIG_DIR``, a temporary one unless given): no download, no telemetry.
bench/peer_bench.py starts it with that environment's Python, the folder holding
hobot_npu_infer on its PYTHONPATH::

    python -m hobot_npu_infer.harness.ultralytics_peer --model FILE --topic TOPIC \
        [--ros-args -r __node:=NAME]

Every option is also a ROS parameter (``--ros-args -p topic:=/cam0/image_raw``), which wins.
SIGINT and SIGTERM end it with exit code 0; a model file that does not exist exits 2.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import threading

DEFAULTS = {'topic': 'image_raw', 'model': '', 'imgsz': 640, 'conf': 0.25, 'iou': 0.7,
            'device': 'cpu'}
CHANNELS = {'bgr8': 3, 'rgb8': 3, 'bgra8': 4, 'rgba8': 4, 'mono8': 1}
STOP = threading.Event()


def parse_arguments(argv):
    """Return the options given before ``--ros-args``; argparse prints --help and errors."""
    own = argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv
    parser = argparse.ArgumentParser(
        prog='ultralytics_peer', description=__doc__.split('\n\n')[0],
        epilog='Each option is also a ROS parameter, which wins: --ros-args -p topic:=/cam/image '
               '-p model:=best.onnx [--params-file FILE] [-r __node:=NAME].')
    parser.add_argument('--topic', default=DEFAULTS['topic'], help='sensor_msgs/Image topic')
    parser.add_argument('--model', default=DEFAULTS['model'], help='model file (ONNX, .pt)')
    parser.add_argument('--imgsz', type=int, default=DEFAULTS['imgsz'], help="predict's imgsz")
    parser.add_argument('--conf', type=float, default=DEFAULTS['conf'], help="predict's conf")
    parser.add_argument('--iou', type=float, default=DEFAULTS['iou'], help="predict's iou")
    parser.add_argument('--device', default=DEFAULTS['device'], help="predict's device")
    return parser.parse_args(own)


def image_to_bgr(msg):
    """
    Return the message's pixels as an (H, W, 3) BGR array, as cv_bridge's imgmsg_to_cv2.

    A view of the message's bytes with its row step (no copy) for bgr8; a converted copy
    for the other encodings.
    """
    import cv2
    import numpy as np
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        raise ValueError(f'encoding {msg.encoding!r} is not one of {sorted(CHANNELS)}')
    pixels = np.ndarray((msg.height, msg.width, channels), np.uint8, buffer=msg.data,
                        strides=(msg.step, channels, 1))
    if msg.encoding == 'rgb8':
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if msg.encoding in ('bgra8', 'rgba8'):
        code = cv2.COLOR_BGRA2BGR if msg.encoding == 'bgra8' else cv2.COLOR_RGBA2BGR
        return cv2.cvtColor(pixels, code)
    if msg.encoding == 'mono8':
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return pixels


def detections_json(header, result, size):
    """Return infer_node's JSON detections of one Ultralytics result (detection_msgs.py)."""
    boxes = result.boxes
    names = result.names
    detections = []
    for box, score, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist()):
        class_id = int(cls)
        detections.append({'class_id': class_id,
                           'class_name': names.get(class_id, str(class_id)),
                           'score': round(score, 5), 'box': [round(v, 2) for v in box],
                           'keypoints': []})
    return json.dumps({'header': {'stamp': {'sec': header.stamp.sec,
                                            'nanosec': header.stamp.nanosec},
                                  'frame_id': header.frame_id},
                       'width': size[0], 'height': size[1], 'detections': detections})


def make_node(options):
    """Return the peer node: its parameters, model, subscription and publisher."""
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    class UltralyticsPeer(Node):

        def __init__(self):
            super().__init__('ultralytics_peer')
            for name, default in vars(options).items():
                self.declare_parameter(name, default)
            value = {name: self.get_parameter(name).value for name in DEFAULTS}
            if not os.path.isfile(value['model']):
                raise FileNotFoundError(f"model file {value['model']!r} not found")
            from ultralytics import YOLO
            self.predict_args = {'imgsz': value['imgsz'], 'conf': value['conf'],
                                 'iou': value['iou'], 'device': value['device'],
                                 'verbose': False}
            self.yolo = YOLO(value['model'], task='detect')
            self.frames = 0
            topic = value['topic']
            # infer_node's camera QoS (ros/qos.py image_qos): best effort, keep last 1
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                             reliability=ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.VOLATILE)
            self.publisher = self.create_publisher(String, f'{topic}/detections', 10)
            self.subscription = self.create_subscription(Image, topic, self.on_image, qos)
            self.get_logger().info(f"Ultralytics {value['model']} on {topic} -> "
                                   f'{topic}/detections ({self.predict_args})')

        def on_image(self, msg):
            try:
                image = image_to_bgr(msg)
            except ValueError as exc:
                self.get_logger().error(str(exc), throttle_duration_sec=5.0)
                return
            result = self.yolo.predict(image, **self.predict_args)[0]
            self.publisher.publish(String(data=detections_json(msg.header, result,
                                                               (msg.width, msg.height))))
            self.frames += 1

    return UltralyticsPeer()


def offline_ultralytics():
    """Keep Ultralytics from the network and the user's settings; before it is imported."""
    os.environ['YOLO_OFFLINE'] = '1'  # no download, no check for updates, no telemetry
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    if not os.environ.get('YOLO_CONFIG_DIR'):
        os.environ['YOLO_CONFIG_DIR'] = tempfile.mkdtemp(prefix='ultralytics-peer-')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    options = parse_arguments(argv)
    offline_ultralytics()
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    def stop(signum, frame):
        STOP.set()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=['ultralytics_peer'] + argv, signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor()
    node = None
    try:
        node = make_node(options)
        executor.add_node(node)
        while not STOP.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        node.get_logger().info(f'stopped after {node.frames} frames')
    except (FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except ExternalShutdownException:
        pass
    finally:
        executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == '__main__':
    sys.exit(main())
