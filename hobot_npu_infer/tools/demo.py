"""
The demo: two cameras of real photos, CenterFace on both and the live diagnostics table.

At the end, a summary per topic and one annotated image.

``make demo [DEMO_SECONDS=20]`` or ``python -m hobot_npu_infer.tools.demo --seconds 20``. Uses
config/default.yaml, the launch file's parameters, with two camera topics.
"""

import argparse
import os
import sys
import time
from typing import Dict, List, Optional

from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import InferError
from hobot_npu_infer.core.imaging.annotate import draw_detections
from hobot_npu_infer.core.imaging.image_files import write_image
from hobot_npu_infer.core.telemetry.rolling_stats import summarize
from hobot_npu_infer.harness.config_files import config_file
from hobot_npu_infer.harness.ros_env import loopback_environment
from hobot_npu_infer.ros.diagnostics import snapshot_of
from hobot_npu_infer.tools.cli import command_parser, console_script
import numpy as np

TOPICS = ['/camera_0/image_raw', '/camera_1/image_raw']
PHOTOS = ['astronaut', 'coffee']


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = command_parser('hobot_npu_infer.tools.demo', __doc__)
    parser.add_argument('--seconds', type=float, default=20.0, help='how long to run (20)')
    parser.add_argument('--out', default='out/demo', help='logs and the annotated image')
    parser.add_argument('--rate', type=float, default=10.0, help='camera rate in Hz (10)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0:
        raise InferError('--seconds and --rate must be positive')
    loopback_environment()  # before rclpy starts, inherited by every child process
    from diagnostic_msgs.msg import DiagnosticArray
    from hobot_npu_infer.harness.listener import Listener
    from hobot_npu_infer.harness.processes import RosProcess
    from hobot_npu_infer.ros import detection_msgs
    from sensor_msgs.msg import Image

    os.makedirs(args.out, exist_ok=True)
    config = config_file('default.yaml')
    fmt = detection_msgs.resolve_format('auto')
    print(f'demo: {", ".join(PHOTOS)} on {", ".join(TOPICS)} at {args.rate:g} Hz, CenterFace, '
          f'{args.seconds:g} s; ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]}, DDS on loopback; '
          f'detections as {fmt}', flush=True)
    listener = Listener('demo_listener')
    outputs = [f'{t}/detections' for t in TOPICS]
    for topic in outputs:
        listener.subscribe(detection_msgs.message_type(fmt), topic)
    listener.subscribe(Image, TOPICS[0], qos=_sensor_qos(), keep=30)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
    processes = [
        RosProcess('infer_node', {'inputs': TOPICS}, params_file=config,
                   log_path=os.path.join(args.out, 'infer_node.log')),
        RosProcess('image_source', {'images': PHOTOS, 'topics': TOPICS, 'rate_hz': args.rate},
                   params_file=config, log_path=os.path.join(args.out, 'image_source.log')),
        RosProcess('diag_monitor', args=['--period', '2'], stdout=sys.stdout),
    ]
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.seconds:
            time.sleep(0.2)
            dead = [p for p in processes[:2] if not p.running()]
            if dead:
                raise InferError(f'a demo node stopped early; see its log: {dead[0].log_path}')
    finally:
        codes = [p.stop() for p in reversed(processes)]
        diagnostics = listener.received('/diagnostics')
        detections = {t: listener.received_with_times(t) for t in outputs}
        images = listener.received(TOPICS[0])
        listener.close()
    print()
    print(summary(detections, diagnostics))
    path = annotate(images, [m for _, m in detections[outputs[0]]], args.out)
    if path:
        print(f'annotated image: {path}')
    if any(codes):
        print(f'warning: exit codes of the nodes: {codes}', file=sys.stderr)
    return 0


def _sensor_qos():
    from hobot_npu_infer.ros.qos import image_qos
    return image_qos('best_effort', 5)


def summary(detections: Dict[str, list], diagnostics) -> str:
    """One row per topic; latency is arrival here minus the camera's stamp (DDS included)."""
    from hobot_npu_infer.ros.detection_msgs import detections_from_message, stamp_of
    lines = ['topic | frames in | detections out | received here | faces found | e2e p50 ms | '
             'e2e p99 ms', '--- | --- | --- | --- | --- | --- | ---']
    inputs = snapshot_of(diagnostics).input_rows()
    for output, records in detections.items():
        source = output[:-len('/detections')]
        counts = [getattr(inputs.get(source), key, None) for key in ('frames_in', 'frames_out')]
        frames_in, frames_out = ('?' if n is None else n for n in counts)
        faces = sum(len(detections_from_message(m)) for _, m in records)
        ages = []
        for arrived, msg in records:
            sec, nanosec = stamp_of(msg)
            ages.append((arrived - sec - nanosec * 1e-9) * 1e3)
        stats = summarize(ages)
        lines.append(f'{source} | {frames_in} | {frames_out} | {len(records)} | {faces} | '
                     f'{stats.p50:.1f} | {stats.p99:.1f}')
    return '\n'.join(lines)


def annotate(images, detection_msgs_received, out_dir: str) -> Optional[str]:
    """Draw and save the newest camera image that has detections with the same stamp."""
    from hobot_npu_infer.ros.detection_msgs import detections_from_message, stamp_of
    from hobot_npu_infer.ros.image_conversion import image_to_array
    by_stamp = {stamp_of(m): m for m in detection_msgs_received}
    for image_msg in reversed(images):
        key = (image_msg.header.stamp.sec, image_msg.header.stamp.nanosec)
        if key in by_stamp:
            array, order = image_to_array(image_msg)
            bgr = np.ascontiguousarray(array[:, :, ::-1] if order == 'rgb' else array)
            found = [Detection(tuple(d['box']), d['score'], d['class_id'], d['class_name'],
                               tuple(map(tuple, d['keypoints'])) or None)
                     for d in detections_from_message(by_stamp[key])]
            path = os.path.join(out_dir, 'demo_annotated.png')
            write_image(path, draw_detections(bgr, found))
            return path
    return None


cli = console_script(main)


if __name__ == '__main__':
    cli()
