"""
One input's subscription, its messages taken on a thread of its own.

An executor takes the subscriptions' messages on its own threads, one after another, and
rclpy's take holds the GIL: one 8K frame on one input held up every other input's frames for
its whole copy (0.15 s). Here each input has a thread that waits on its subscription alone and
takes its messages through rcl with the GIL released (``rcl_take``): a big message costs its
own input the time, and nothing else. The subscription stays an ordinary rclpy one (on the
graph, destroyed by the node); its takes and its QoS events move to the reader's thread. The
executor must not wait on any of it: DDS wakes a wait set holding a subscription's events for
each message the subscription has not yet taken, so the executor would spin until the reader
took every message (measured: 800 empty wake-ups a second at 60 frames a second).
"""

from contextlib import ExitStack
import threading
from typing import Callable

from hobot_npu_infer.core.errors import one_line
from hobot_npu_infer.core.telemetry.thread_cpu import name_thread
from hobot_npu_infer.ros.rcl_take import serialized_taker
import numpy as np
from rclpy.callback_groups import CallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node

WAIT_NS = 500_000_000  # a waiting reader looks at the context this often (closing wakes it)


class TakenByReaders(CallbackGroup):
    """
    A callback group whose subscriptions the executor leaves to their InputReader.

    The executor only waits on entities whose group can execute them, so these subscriptions
    never enter its wait set (their event handlers are not the node's: see InputReader).
    """

    def can_execute(self, entity) -> bool:
        return False

    def beginning_execution(self, entity) -> bool:
        return False

    def ending_execution(self, entity) -> None:
        pass


def _never_called(_message) -> None:
    """Stand in as the rclpy callback of a subscription its InputReader takes."""


class InputReader:
    """
    Subscribe ``node`` to ``topic`` and hand each serialized message to ``on_message``.

    ``on_message`` runs on the reader's thread with a 1-D uint8 array (valid while referenced).
    ``create_subscription_kwargs`` go to ``Node.create_subscription``; the callbacks of its
    ``event_callbacks`` run on the reader's thread too.
    """

    def __init__(self, node: Node, msg_type, topic: str, qos, group: TakenByReaders,
                 on_message: Callable[[np.ndarray], None], **create_subscription_kwargs):
        self._node = node
        self._on_message = on_message
        self.subscription = node.create_subscription(
            msg_type, topic, _never_called, qos, callback_group=group, raw=True,
            **create_subscription_kwargs)
        self._take = serialized_taker(self.subscription)
        self._events = list(self.subscription.event_handlers)
        for handler in self._events:  # waited on here, not by the executor
            node.remove_waitable(handler)
        self._wake = GuardCondition(None, None, node.context)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f'take {topic}', daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop taking and destroy the subscription (from ``on_message`` too: no join then)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.trigger()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        for handler in self._events:  # the node destroys them with the subscription
            self._node.add_waitable(handler)
        self._node.destroy_subscription(self.subscription)  # once the reader lets go of it

    def _run(self) -> None:
        name_thread('take')
        context = self._node.context
        wait_set = _rclpy.WaitSet(1, 1, 0, 0, 0, len(self._events), context.handle)
        try:
            while not self._closed.is_set() and context.ok():
                with ExitStack() as in_use:
                    for entity in (self.subscription.handle, self._wake.handle, context.handle,
                                   *self._events):
                        in_use.enter_context(entity)
                    wait_set.clear_entities()
                    wait_set.add_subscription(self.subscription.handle)
                    wait_set.add_guard_condition(self._wake.handle)
                    for handler in self._events:
                        handler.add_to_wait_set(wait_set)
                    wait_set.wait(WAIT_NS)  # the GIL released
                    self._handle_events(wait_set)
                    self._take_waiting()
        except InvalidHandle:  # the context or the node went first
            pass
        finally:
            wait_set.destroy_when_not_in_use()
            self._wake.destroy()

    def _handle_events(self, wait_set) -> None:
        for handler in self._events:
            if handler.is_ready(wait_set):
                event = handler.take_data()
                if event is not None:
                    handler.callback(event)

    def _take_waiting(self) -> None:
        """Take and hand over the messages waiting, until none is or the reader is closed."""
        while not self._closed.is_set():
            try:
                message = self._take()
                if message is None:
                    return
                self._on_message(message)
            except Exception as exc:  # noqa: BLE001 (said; the input's next message is taken)
                self._node.get_logger().error(
                    f'{self.subscription.topic_name}: a message lost: {one_line(exc)}',
                    throttle_duration_sec=10.0)
