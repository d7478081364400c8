"""
SIGINT and SIGTERM as a flag that spin loops check, instead of rclpy's signal handling.

rclpy's handlers shut the context down and trigger executor guard conditions from a thread of
their own; when that thread races the executor's shut-down it can touch a destroyed guard
condition and crash the process (SIGSEGV in rcl_trigger_guard_condition, seen here in about one
stop in four). With this flag the loops end at their next turn (at most 0.1 s), nothing is
raised in the middle of rclpy, and the clean-up runs with the context still valid.
This module imports nothing of ROS, so a process can catch signals before its slow imports.
"""

import signal
import threading
from typing import Dict

STOP = threading.Event()
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _request_stop(signum, frame):
    STOP.set()


def catch_stop_signals() -> Dict[int, object]:
    """
    Route SIGINT and SIGTERM to STOP; return the previous handlers.

    From the main thread only: elsewhere Python cannot install handlers and nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}


def restore_signals(previous: Dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
