"""
A hostile camera: frames that should cost a node nothing, published at a steady rate.

The fairness test and ``soak_bench --hostile`` put it beside a healthy camera: 8K raw frames,
an 8000x8000 JPEG, a decompression bomb (a few MB declaring 20000x20000) and frames stamped
far in the future or at zero. Each kind is built once and published from a thread of its own.
"""

import array
from dataclasses import dataclass
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import cv2
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.ros.image_conversion import array_to_compressed_msg, array_to_image_msg
from hobot_npu_infer.ros.qos import image_qos
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

FUTURE_S = 3600.0  # how far ahead the future-stamped frames are
READY = 'publishing'  # what the process prints once its frames are built and going out


@dataclass(frozen=True)
class HostileKind:
    """One kind of hostile frame: on which input, how often, and what the node counts it as."""

    name: str
    compressed: bool  # a CompressedImage input, else an Image input
    rate_hz: float
    counted_as: str  # the diagnostics key that counts it on the node's input


KINDS = {
    '8k_raw': HostileKind('8k_raw', False, 12.0, 'conversion_errors.too_large'),
    'jpeg_8000': HostileKind('jpeg_8000', True, 2.0, 'conversion_errors.too_large'),
    'jpeg_bomb': HostileKind('jpeg_bomb', True, 0.5, 'conversion_errors.too_large'),
    'stamp_future': HostileKind('stamp_future', False, 5.0, 'clock_skew'),
    'stamp_zero': HostileKind('stamp_zero', False, 5.0, 'clock_skew'),
}


def bomb_jpeg(width: int = 20000, height: int = 20000, size: int = 6 << 20) -> bytes:
    """Return ``size`` bytes of JPEG whose frame header declares ``width`` x ``height``."""
    ok, data = cv2.imencode('.jpg', np.full((64, 64, 3), 128, np.uint8))
    data = data.tobytes()
    sof = data.index(b'\xff\xc0')
    data = data[:sof + 5] + height.to_bytes(2, 'big') + width.to_bytes(2, 'big') + \
        data[sof + 9:]
    return data[:-2] + bytes(max(0, size - len(data))) + data[-2:]  # padding before the EOI


def build(kind: str):
    """Return the message (its stamp set when published) of hostile ``kind``."""
    if kind == '8k_raw':
        return array_to_image_msg(np.full((4320, 7680, 3), 90, np.uint8), 'bgr8')
    if kind == 'jpeg_8000':
        image = cv2.resize(load_sample('astronaut'), (8000, 8000), interpolation=cv2.INTER_LINEAR)
        return array_to_compressed_msg(image, 'jpeg', quality=90)
    if kind == 'jpeg_bomb':
        msg = CompressedImage(format='jpeg')
        msg.data = array.array('B', bomb_jpeg())
        return msg
    if kind in ('stamp_future', 'stamp_zero'):
        return array_to_image_msg(load_sample('astronaut'), 'bgr8')
    raise ValueError(f'no hostile kind {kind!r}; kinds: {", ".join(KINDS)}')


class HostileCamera:
    """
    Publishes each hostile kind on its topic from ``node``, until ``stop``.

    ``topics`` maps a kind to the topic it goes on; ``published`` counts each kind's frames.
    """

    def __init__(self, node, topics: Dict[str, str], now: Callable[[], int],
                 rates: Optional[Dict[str, float]] = None):
        self._node = node
        self._now = now  # the clock the stamps are made from, in nanoseconds
        self._stop = threading.Event()
        self.published: Dict[str, int] = dict.fromkeys(topics, 0)
        self._streams: List[Tuple[str, object, object, float]] = []
        for kind, topic in topics.items():
            spec = KINDS[kind]
            publisher = node.create_publisher(CompressedImage if spec.compressed else Image,
                                              topic, image_qos('best_effort', 1))
            rate = (rates or {}).get(kind, spec.rate_hz)
            self._streams.append((kind, publisher, build(kind), rate))
        self._threads = [threading.Thread(target=self._publish, args=stream, daemon=True,
                                          name=f'hostile-{stream[0]}')
                         for stream in self._streams]

    def start(self) -> 'HostileCamera':
        for thread in self._threads:
            thread.start()
        return self

    def _stamp(self, kind: str, msg) -> None:
        now = self._now()
        stamp = {'stamp_future': now + int(FUTURE_S * 1e9), 'stamp_zero': 0}.get(kind, now)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)

    def _publish(self, kind: str, publisher, msg, rate_hz: float) -> None:
        period = 1.0 / rate_hz
        due = time.monotonic()
        while not self._stop.is_set():
            self._stamp(kind, msg)
            publisher.publish(msg)
            self.published[kind] += 1
            due += period
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for _, publisher, _, _ in self._streams:
            self._node.destroy_publisher(publisher)
        self._streams = []


class HostileProcess:
    """The hostile camera in a process of its own (on loopback DDS), publishing ``topics``."""

    def __init__(self, topics: Dict[str, str]):
        from hobot_npu_infer.harness.ros_env import child_environment
        streams = [f'{kind}={topic}' for kind, topic in topics.items()]
        self.proc = subprocess.Popen(
            [sys.executable, '-m', __name__, *streams],
            env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        # its frames take seconds to build: the flood starts when it says so
        self.started = self.proc.stdout.readline().strip() == READY

    def stop(self) -> Tuple[int, str]:
        """Interrupt it; return its exit code and what it printed (frames per kind)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out.strip()


def main(argv: Optional[List[str]] = None) -> int:
    """Publish hostile kinds until interrupted: ``KIND=TOPIC ...``, in a process of its own."""
    import argparse
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from hobot_npu_infer.ros.stop_signals import catch_stop_signals, STOP

    parser = argparse.ArgumentParser(prog='python -m hobot_npu_infer.harness.hostile_camera',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('streams', nargs='+', metavar='KIND=TOPIC',
                        help=f'kinds: {", ".join(KINDS)}')
    args = parser.parse_args(argv)
    topics = dict(stream.split('=', 1) for stream in args.streams)
    catch_stop_signals()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('hostile_camera')
    camera = HostileCamera(node, topics, lambda: node.get_clock().now().nanoseconds).start()
    print(READY, flush=True)
    STOP.wait()
    camera.stop()
    print(' '.join(f'{kind}={n}' for kind, n in camera.published.items()), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
