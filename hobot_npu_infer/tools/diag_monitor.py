"""
diag_monitor: a terminal view of /diagnostics, for machines without ros2cli.

    python -m hobot_npu_infer.tools.diag_monitor [--once] [--json] [--timeout S] [--period S]
                                               [--all] [--node NAME] [--ros-args ...]

Live (default): redraws the table every --period seconds (in place on a terminal; else prints
it followed by a blank line; with --json, one JSON object per line). --once: waits for the
first infer_node input status (or --timeout: exit 1), prints one snapshot and exits 0.
SIGINT and SIGTERM exit 0. Inputs, models and the heads of a packed model each have rows of
their own; --all adds every other status (name, level and message). ROS that cannot start
(ROS arguments that do not parse, an unwritable log directory, an RMW implementation not
installed) is one line ``diag_monitor: ...`` on stderr and exit 2.
"""

import sys

from hobot_npu_infer.ros.stop_signals import catch_stop_signals, restore_signals, STOP

if __name__ == '__main__':  # a signal during the slow imports below must not print a traceback
    catch_stop_signals()

import argparse  # noqa: E402, I100 (after catch_stop_signals, so the slow imports are covered)
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from typing import Iterable, List, Optional  # noqa: E402

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from hobot_npu_infer.core.telemetry.diagnostics_view import (  # noqa: E402
    DiagnosticsSnapshot, render_table)
from hobot_npu_infer.ros.diagnostics import entries_of  # noqa: E402
from hobot_npu_infer.ros.node_main import (  # noqa: E402
    NODE_ERRORS,
    node_problem,
    own_arguments,
    shut_down,
    start_ros,
    StartError,
    write_exit_report,
)
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402

TOPIC = '/diagnostics'
CLEAR = '\x1b[H\x1b[2J'
PROG = 'diag_monitor'


class DiagMonitor(Node):
    """Subscribes to /diagnostics (reliable, depth 10) and keeps the latest status per name."""

    def __init__(self, snapshot: DiagnosticsSnapshot, **kwargs):
        # One name per process: two monitors running at once must not share a node name.
        super().__init__(f'diag_monitor_{os.getpid()}', **kwargs)
        self.snapshot = snapshot
        self.create_subscription(DiagnosticArray, TOPIC, self._on_array, 10)

    def _on_array(self, msg: DiagnosticArray) -> None:
        self.snapshot.update(entries_of(msg))


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text}') from None
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'must be a positive number of seconds: {text}')
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description='Show the /diagnostics of hobot_npu_infer nodes as a table '
        '(rates, drops, errors, p50/p99 latency per stage in ms).',
        epilog='ROS arguments go after --ros-args. Exit status: 0, or 1 when --once timed out.')
    p.add_argument('--once', action='store_true',
                   help='wait for the first infer_node status, print one snapshot and exit')
    p.add_argument('--json', action='store_true',
                   help='print JSON instead of the table (live mode: one object per line)')
    p.add_argument('--timeout', type=positive, default=10.0, metavar='S',
                   help='--once: give up after S seconds with exit status 1 (default 10)')
    p.add_argument('--period', type=positive, default=1.0, metavar='S',
                   help='live mode: redraw every S seconds (default 1)')
    p.add_argument('--all', action='store_true',
                   help='also show statuses not written by infer_node (name, level, message)')
    p.add_argument('--node', metavar='NAME',
                   help='only statuses of this node (names starting with "NAME:")')
    p.add_argument('--stale-after', type=float, default=5.0, metavar='S',
                   help='show a status STALE when it has not been seen for S seconds and three '
                        'of its publishing periods (default 5; 0 turns this off)')
    p.add_argument('--width', type=int, default=0, metavar='N',
                   help="table width in columns (default: the terminal's, or 120)")
    return p


def table_width(requested: int) -> int:
    if requested > 0:
        return requested
    return shutil.get_terminal_size((120, 24)).columns


def render(snapshot: DiagnosticsSnapshot, options, live: bool) -> str:
    if options.json:
        data = snapshot.to_json()
        return json.dumps(data) if live else json.dumps(data, indent=2)
    table = render_table(snapshot, table_width(options.width))
    if live:
        return f'{TOPIC} at {time.strftime("%H:%M:%S")} (every {options.period:g} s)\n{table}'
    return table


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def wait_for_first(executor, snapshot: DiagnosticsSnapshot, timeout: float,
                   include_all: bool) -> bool:
    deadline = time.monotonic() + timeout
    arrived = (lambda: len(snapshot) > 0) if include_all else snapshot.has_input
    while not arrived():
        left = deadline - time.monotonic()
        if left <= 0 or STOP.is_set():
            return False
        executor.spin_once(timeout_sec=min(left, 0.1))
    # take in whatever else is already waiting (other nodes' arrays), without waiting more
    for _ in range(100):
        before = snapshot.names(), len(snapshot)
        executor.spin_once(timeout_sec=0.0)
        if (snapshot.names(), len(snapshot)) == before:
            break
    return True


def run_live(executor, snapshot: DiagnosticsSnapshot, options) -> None:
    tty = sys.stdout.isatty()
    next_draw = time.monotonic()
    while not STOP.is_set():
        now = time.monotonic()
        if now >= next_draw:
            text = render(snapshot, options, live=True)
            if options.json:
                write(text + '\n')
            elif tty:
                write(CLEAR + text + '\n')
            else:
                write(text + '\n\n')
            next_draw = max(next_draw + options.period, now)
            continue
        executor.spin_once(timeout_sec=min(next_draw - now, 0.1))


def monitor(options, ros_args: List[str]) -> int:
    snapshot = DiagnosticsSnapshot(node=options.node, include_all=options.all,
                                   stale_after_s=options.stale_after
                                   if options.stale_after > 0 else None)
    try:
        start_ros(ros_args, signal_handler_options=SignalHandlerOptions.NO)  # see STOP
    except StartError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    node = None
    executor = SingleThreadedExecutor()
    try:
        try:
            node = DiagMonitor(snapshot)
        except NODE_ERRORS as exc:
            print(node_problem(exc, PROG), file=sys.stderr)
            return 2
        executor.add_node(node)
        if options.once:
            if not wait_for_first(executor, snapshot, options.timeout, options.all):
                if STOP.is_set():
                    return 0
                of = f' from node {options.node}' if options.node else ''
                print(f'error: no diagnostics received on {TOPIC}{of} within '
                      f'{options.timeout:g} s', file=sys.stderr)
                return 1
            write(render(snapshot, options, live=False) + '\n')
            return 0
        run_live(executor, snapshot, options)
    except BrokenPipeError:  # e.g. piped into head
        try:
            sys.stdout = open(os.devnull, 'w')
        except OSError:
            pass
    finally:
        shut_down(executor, node)
    return 0


def main(args: Optional[Iterable[str]] = None) -> int:
    """``args``: the command line without the program name (default: ``sys.argv[1:]``)."""
    argv = [PROG, *(sys.argv[1:] if args is None else list(args))]
    try:
        options = parser().parse_args(own_arguments(argv)[1:])
    except StartError as exc:  # ROS arguments that do not parse
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    previous = catch_stop_signals()
    try:
        return 0 if STOP.is_set() else monitor(options, argv)
    finally:
        restore_signals(previous)
        write_exit_report()


if __name__ == '__main__':
    sys.exit(main())
