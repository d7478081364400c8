"""An input's messages taken on its own thread through rcl, over real DDS in this process."""

import queue
import threading
import time

from hobot_npu_infer.ros import rcl_take
from hobot_npu_infer.ros.input_reader import InputReader, TakenByReaders
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

QOS = QoSProfile(depth=4, reliability=ReliabilityPolicy.RELIABLE)


def image(height: int, width: int, fill: int) -> Image:
    msg = Image(height=height, width=width, encoding='mono8', step=width)
    msg.header.frame_id = f'frame {fill}'
    msg.data = bytes([fill % 256]) * (height * width)
    return msg


@pytest.fixture
def ros():
    """Yield (node, publisher to /reader_test, spin_once): a node of its own context."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('input_reader_test', context=context)
    publisher = node.create_publisher(Image, '/reader_test', QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, publisher, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def read_into(node, group, received, **kwargs) -> InputReader:
    return InputReader(node, Image, '/reader_test', QOS, group, received.put, **kwargs)


def wait_matched(publisher) -> None:
    deadline = time.monotonic() + 10
    while publisher.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert publisher.get_subscription_count() >= 1


def test_the_reader_hands_over_each_message_serialized_and_the_executor_takes_none(ros):
    node, publisher, executor = ros
    received = queue.Queue()
    group = TakenByReaders()
    reader = read_into(node, group, received)
    assert not executor.can_execute(reader.subscription)  # not in the executor's wait set
    wait_matched(publisher)
    sent = [image(4, 6, n) for n in range(20)]
    got = []
    for msg in sent:  # the executor spinning meanwhile: were it to take one, it would be lost
        publisher.publish(msg)
        executor.spin_once(timeout_sec=0.02)
        got.append(received.get(timeout=10))
    assert [deserialize_message(bytes(raw), Image) for raw in got] == sent
    assert all(isinstance(raw, np.ndarray) and raw.dtype == np.uint8 for raw in got)
    reader.close()
    assert reader.subscription not in list(node.subscriptions)


def test_other_threads_run_while_a_large_message_is_taken(ros):
    """The take through rcl drops the GIL: a Python thread counts meanwhile."""
    assert rcl_take.available()
    node, publisher, _ = ros
    counts = []
    stop = threading.Event()

    def count():
        n = 0
        while not stop.is_set():
            n += 1
            counts.append(n)
    subscription = node.create_subscription(Image, '/reader_test', lambda _: None, QOS,
                                            raw=True)
    wait_matched(publisher)
    take = rcl_take.serialized_taker(subscription)
    big = image(4000, 6000, 7)  # 24 MB
    publisher.publish(big)
    counter = threading.Thread(target=count)
    counter.start()
    try:
        taken, deadline = None, time.monotonic() + 10
        while taken is None and time.monotonic() < deadline:
            with subscription.handle:
                before = len(counts)
                taken = take()
                during = len(counts) - before
            time.sleep(0.01)
    finally:
        stop.set()
        counter.join()
    assert taken is not None and taken.nbytes > 24_000_000
    assert bytes(taken[-100:]) == bytes([7]) * 100
    assert during > 0  # held, the GIL would have kept the counter still for the whole copy


def test_without_rcl_the_take_is_rclpys_and_gives_the_same_bytes(ros, monkeypatch):
    node, publisher, _ = ros
    monkeypatch.setattr(rcl_take, '_RCL', None)
    received = queue.Queue()
    reader = read_into(node, TakenByReaders(), received)
    wait_matched(publisher)
    publisher.publish(image(3, 5, 4))
    assert deserialize_message(bytes(received.get(timeout=10)), Image) == image(3, 5, 4)
    reader.close()


def test_a_reader_closed_from_its_own_callback_takes_nothing_more(ros):
    node, publisher, _ = ros
    received = queue.Queue()
    readers = []

    def on_message(raw):
        received.put(raw)
        readers[0].close()  # as the node does when an input's frame is over the limits
    readers.append(InputReader(node, Image, '/reader_test', QOS, TakenByReaders(),
                               on_message))
    wait_matched(publisher)
    for n in range(3):
        publisher.publish(image(2, 2, n))
    received.get(timeout=10)
    readers[0]._thread.join(timeout=10)
    assert not readers[0]._thread.is_alive()
    assert received.empty()
    assert readers[0].subscription not in list(node.subscriptions)


def test_closing_a_waiting_reader_ends_its_thread_at_once(ros):
    node, _, _ = ros
    reader = read_into(node, TakenByReaders(), queue.Queue())
    reader.close()  # wakes it with its guard condition, then joins it
    assert not reader._thread.is_alive()
    reader.close()  # twice: nothing more
