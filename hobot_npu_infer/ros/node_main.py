"""
How every executable of the package starts and stops a node.

Start-up errors print one line and exit 2. SIGINT and SIGTERM end spinning (stop_signals, not
rclpy's handlers); the executor is shut down and the node destroyed before rclpy, so no thread
is left spinning at exit (which would abort the process).

With ``HOBOT_NPU_INFER_EXIT_REPORT=<path>`` in the environment, the names of the threads still
alive once everything is shut down are written to that file as JSON (for the shutdown tests).
"""

import json
import os
import sys
import threading
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
    except ExternalShutdownException:
        pass
    finally:
        shut_down(executor, node)
        restore_signals(previous)
        write_exit_report()
    return 0


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
