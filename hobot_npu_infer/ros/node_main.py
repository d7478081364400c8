"""
How every executable of the package starts and stops a node.

Start-up errors print one line and exit 2. SIGINT and SIGTERM end spinning (stop_signals, not
rclpy's handlers); the executor is shut down and the node destroyed before rclpy, so no thread
is left spinning at exit (which would abort the process).

A node's full name (namespace + name) is its own on the graph: :class:`NameCheck` makes a node
that finds another node of its full name during its start-up window log one ERROR line and
exit 2 (:class:`DuplicateNodeName`), before it serves when the other is discovered within
``NameCheck.block_s``, else as soon as discovered within ``NameCheck.watch_s`` of its start.

With ``HOBOT_NPU_INFER_EXIT_REPORT=<path>`` in the environment, the names of the threads still
alive once everything is shut down are written to that file as JSON (for the shutdown tests).
"""

import json
import os
import sys
import threading
import time
from typing import Callable, List, Optional

from hobot_npu_infer.core.errors import InferError
from hobot_npu_infer.ros.param_specs import InvalidParameter, ParamSpec
from hobot_npu_infer.ros.stop_signals import catch_stop_signals, restore_signals, STOP
import rclpy
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def run_node(factory: Callable[[], Node], args: Optional[List[str]] = None,
             threads: int = 3, usage: str = '') -> int:
    """
    Run the node ``factory`` makes until a stop signal; the process's exit code.

    ``--help`` (or ``-h``) before any ROS argument prints ``usage`` instead.
    """
    own_args = (sys.argv[1:] if args is None else list(args))
    own_args = own_args[:own_args.index('--ros-args')] if '--ros-args' in own_args else own_args
    if usage and ('--help' in own_args or '-h' in own_args):
        print(usage)
        return 0
    STOP.clear()
    previous = catch_stop_signals()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)  # see stop_signals
    node = None
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 \
        else SingleThreadedExecutor()
    try:
        node = factory()
        executor.add_node(node)
        while not STOP.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=0.1)
    except (InvalidParameter, InferError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except DuplicateNodeName as exc:  # from the constructor, or the watch timer while spinning
        node = exc.node  # destroyed below (the constructor did not return it)
        node.get_logger().error(str(exc))
        return 2
    except ExternalShutdownException:
        pass
    finally:
        shut_down(executor, node)
        restore_signals(previous)
        write_exit_report()
    return 0


class DuplicateNodeName(Exception):
    """Another node of this node's full name is on the graph; ``node`` is the refused one."""

    def __init__(self, node: Node, count: int):
        self.node = node
        name = node.get_fully_qualified_name()
        super().__init__(
            f'another node named {name} is already on the ROS graph ({count} nodes of that '
            f'full name): exiting rather than running twice; stop the other one or start this '
            f'one under another name (--ros-args -r __node:=NAME or -r __ns:=/NAMESPACE)')


class NameCheck:
    """
    Refuse to run beside another node of the same full name (namespace + name).

    Made right after the node (discovery goes on from there while the constructor loads):
    ``wait()`` before the node serves blocks until ``block_s`` after its creation, and
    ``watch()`` then checks every ``period_s`` on a timer until ``watch_s`` after creation.
    Either raises :class:`DuplicateNodeName` once ``get_node_names_and_namespaces()`` lists
    this full name more than once (the graph lists every node of a name; a node of a process
    that has ended is gone from it). A node older than ``watch_s`` never checks again, so the
    node that started later is the one refused. Of two started less than ``watch_s`` apart, the
    first to see the other refuses; the other refuses too if it sees the first before that one
    has left.
    """

    block_s = 0.5  # same-machine DDS discovery: mostly within 0.2 s ...
    watch_s = 6.0  # ... else at the peer's next announcement (Fast DDS: every 3 s)
    period_s = 0.2

    def __init__(self, node: Node):
        self.node = node
        self.key = (node.get_name(), node.get_namespace())
        self.started = time.monotonic()
        self.blocked_s = 0.0  # how long wait() held start-up up
        self._timer = None

    def count(self) -> int:
        """Nodes of this full name the graph shows, this one included."""
        return sum(1 for key in self.node.get_node_names_and_namespaces() if key == self.key)

    def check(self) -> None:
        count = self.count()
        if count > 1:
            if self._timer is not None:
                self._timer.cancel()
            raise DuplicateNodeName(self.node, count)

    def wait(self) -> None:
        """Block until ``block_s`` after the node's creation, checking as the graph fills."""
        began = time.monotonic()
        while True:
            self.check()
            if time.monotonic() - self.started >= self.block_s:
                break
            time.sleep(0.02)
        self.blocked_s = time.monotonic() - began

    def watch(self) -> None:
        """Check on a timer (the node's executor) until ``watch_s`` after creation."""
        def tick():
            if time.monotonic() - self.started >= self.watch_s:
                self._timer.cancel()
            self.check()
        if time.monotonic() - self.started < self.watch_s:
            self._timer = self.node.create_timer(self.period_s, tick)


def shut_down(executor, node: Optional[Node], context=None) -> None:
    """Executor first, then the node, then rclpy: the order that leaves nothing spinning."""
    executor.shutdown()
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def node_usage(executable: str, what: str, specs: List[ParamSpec]) -> str:
    """``--help`` of a node: how ROS arguments set its parameters, and the parameters."""
    lines = [f'usage: {executable} [--ros-args [--params-file FILE] [-p NAME:=VALUE ...] '
             f'[-r FROM:=TO ...]]', '', what, '', 'parameters (NAME, default, description):']
    for spec in specs:
        changeable = '' if spec.read_only else ' (changeable at runtime)'
        lines.append(f'  {spec.name} ({spec.default!r}): {spec.description}{changeable}')
    return '\n'.join(lines)


EXIT_REPORT = 'HOBOT_NPU_INFER_EXIT_REPORT'


def write_exit_report() -> None:
    """List the live threads, by name, in the file named by HOBOT_NPU_INFER_EXIT_REPORT, if set."""
    path = os.environ.get(EXIT_REPORT)
    if not path:
        return
    with open(path, 'w') as f:
        json.dump({'pid': os.getpid(), 'threads': [t.name for t in threading.enumerate()]}, f)
