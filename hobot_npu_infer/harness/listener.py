"""
A node in a context of its own that records what arrives on the topics it is given.

Spins in a background thread; ``close()`` stops and joins that thread, shuts the executor down
and destroys the node before shutting its context down.
"""

import threading
import time
from typing import Callable, Dict, List, Tuple

from hobot_npu_infer.ros.node_main import shut_down
import rclpy
from rclpy.executors import SingleThreadedExecutor


class Listener:

    def __init__(self, name: str = 'listener'):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._messages: Dict[str, List[Tuple[float, object]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=f'{name}-spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def subscribe(self, msg_type, topic: str, qos=10, keep: int = 0) -> None:
        """
        Record messages of ``topic`` with their arrival time (``time.time()``).

        ``keep`` > 0 keeps only that many of the newest.
        """
        with self._lock:
            self._messages.setdefault(topic, [])

        def record(msg, topic=topic):
            with self._lock:
                records = self._messages[topic]
                records.append((time.time(), msg))
                if keep and len(records) > keep:
                    del records[0]
        self.node.create_subscription(msg_type, topic, record, qos)

    def publisher(self, msg_type, topic: str, qos=10):
        return self.node.create_publisher(msg_type, topic, qos)

    def received(self, topic: str) -> list:
        with self._lock:
            return [msg for _, msg in self._messages.get(topic, [])]

    def received_with_times(self, topic: str) -> List[Tuple[float, object]]:
        with self._lock:
            return list(self._messages.get(topic, []))

    def received_between(self, topic: str, since: float, until: float
                         ) -> List[Tuple[float, object]]:
        """Return (arrival time, message) of ``topic`` arrived in [since, until) (time.time)."""
        return [(t, msg) for t, msg in self.received_with_times(topic) if since <= t < until]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Poll ``predicate`` until true or ``timeout`` (which only ends a broken run)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        shut_down(self.executor, self.node, self.context)

    def __enter__(self) -> 'Listener':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
