"""
How every executable of the package starts and stops a node.

Start-up errors print one line and exit 2: a bad parameter (``error: ...``), and anything that
keeps ROS from starting or the node from being made, named after the executable
(:func:`start_ros`, :func:`node_problem`): bad ROS arguments, a log directory that cannot be
written, an RMW implementation that is not installed (checked before rclpy loads, see
``rmw_check.require_rmw``). SIGINT and SIGTERM end spinning (stop_signals, not rclpy's
handlers); the executor is shut down and the node destroyed before rclpy, so no thread is left
spinning at exit (which would abort the process).

A node's full name (namespace + name) is its own on the graph: :class:`NameCheck` makes a node
that finds another node of its full name during its start-up window log one ERROR line and
exit 2 (:class:`DuplicateNodeName`), before it serves when the other is discovered within
``NameCheck.block_s``, else as soon as discovered within ``NameCheck.watch_s`` of its start.

With ``HOBOT_NPU_INFER_EXIT_REPORT=<path>`` in the environment, the names of the threads still
alive once everything is shut down are written to that file as JSON (for the shutdown tests).
"""

import ast
import ctypes
import json
import os
import re
import sys
import tempfile
import threading
import time
from typing import Callable, List, Optional, Sequence

from hobot_npu_infer.core.errors import InferError, one_line
from hobot_npu_infer.ros.param_specs import InvalidParameter, ParamSpec
from hobot_npu_infer.ros.rmw_check import program_name
from hobot_npu_infer.ros.stop_signals import catch_stop_signals, restore_signals, STOP
import rclpy
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """
    Keep glibc to two malloc arenas, as ``MALLOC_ARENA_MAX=2`` would (unless that is set).

    Each thread that allocates under contention gets an arena of its own (up to 8 per core),
    and frames taken on the input readers' threads and freed on the others' leave each arena
    fragmented: measured over the hostile soak, resident memory grew 10.8 % in 10 minutes
    with the default arenas and 0.7 % in 3 minutes with two, at a higher output rate.
    Elsewhere than glibc nothing happens.
    """
    if 'MALLOC_ARENA_MAX' in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, MALLOC_ARENAS)


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
    limit_malloc_arenas()  # before DDS and the node start their threads
    STOP.clear()
    previous = catch_stop_signals()
    try:
        start_ros(args)  # no signal handlers of rclpy's: see stop_signals
    except StartError as exc:
        restore_signals(previous)
        print(f'{program_name()}: {exc}', file=sys.stderr)
        return 2
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
    except NODE_ERRORS as exc:
        if node is not None:  # raised while spinning: not a start-up error
            raise
        print(node_problem(exc), file=sys.stderr)
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


class StartError(Exception):
    """ROS cannot start in this process; the message is the one line that says why."""


MAX_DOMAIN_ID = 232  # DDS ports: 7400 + 250 * domain (+ offsets) must stay below 65536
ARGUMENT_FORMS = {'-p': 'NAME:=VALUE', '--param': 'NAME:=VALUE', '-r': 'FROM:=TO',
                  '--remap': 'FROM:=TO', '--params-file': 'FILE', '--log-level': 'LEVEL',
                  '--log-config-file': 'FILE', '-e': 'ENCLAVE', '--enclave': 'ENCLAVE'}
RULE_FORMS = {'parameter override rule': '-p NAME:=VALUE (NAME: letters, digits, _ and .)',
              'remap rule': '-r FROM:=TO (ROS names: letters, digits, _ and /)'}
RCL_SOURCE = re.compile(r',? at [^,]*?\.(?:c|cpp|h|hpp):\d+')  # ", at /src/rcl/arguments.c:356"
RCL_LOG_LINE = re.compile(r'\[(?:DEBUG|INFO|WARN|ERROR|FATAL)\] \[[\d.]+\] \[[^\]]*\]: ')
RCL_PREFIXES = ('failed to initialize rcl: ', 'failed to initialize logging: ',
                'Failed to parse ROS arguments: ')


def start_ros(args: Optional[List[str]] = None,
              signal_handler_options=SignalHandlerOptions.NO) -> None:
    """
    ``rclpy.init``, or :class:`StartError` naming in one line what kept ROS from starting.

    What the C libraries print meanwhile is held back: shown after a start that succeeds (a
    warning of rcl's, say), dropped after one that fails, where rcl's own ``[ERROR]`` line
    ("Failed to parse global arguments") would only precede ours.
    """
    problem = domain_problem()
    if problem:
        raise StartError(f'cannot start ROS: {problem}')
    context = rclpy.get_default_context()
    held = HeldStderr()
    try:
        with held:
            rclpy.init(args=args, signal_handler_options=signal_handler_options)
    except Exception as exc:  # noqa: BLE001 (rclpy raises several kinds; all end the start)
        initialized = getattr(context, 'handle', None) is not None  # then logging failed
        try:
            rclpy.try_shutdown()
        except Exception:  # noqa: BLE001 (the start failed already; say why, not this)
            pass
        raise StartError(start_problem(exc, initialized, held.said())) from None


def own_arguments(argv: List[str]) -> List[str]:
    """``argv`` without its ROS arguments, or :class:`StartError` if these do not parse."""
    held = HeldStderr()
    try:
        with held:
            return remove_ros_args(argv)
    except Exception as exc:  # noqa: BLE001 (rclpy's parse errors, of several kinds)
        raise StartError(start_problem(exc, False, held.said())) from None


def domain_problem() -> Optional[str]:
    """Say what is wrong with ROS_DOMAIN_ID when rcl takes it but the DDS would end the process."""
    text = os.environ.get('ROS_DOMAIN_ID', '').strip()
    if text.isdigit() and int(text) > MAX_DOMAIN_ID:
        return f'ROS_DOMAIN_ID={text} is out of range 0..{MAX_DOMAIN_ID}'
    return None


def rcl_text(exc: BaseException) -> str:
    """Return the message of an rclpy error without rcl's source locations and prefixes."""
    text = RCL_SOURCE.sub('', one_line(exc, named=False, limit=None))
    for prefix in RCL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.strip().rstrip('.')


def start_problem(exc: BaseException, initialized: bool, said: Sequence[str] = ()) -> str:
    """
    One line naming what made ``rclpy.init`` (or ``remove_ros_args``) raise ``exc``.

    ``initialized``: rcl had started, so configuring its logging failed. ``said``: what rcl
    logged meanwhile (:meth:`HeldStderr.said`), which may say more than the exception.
    """
    if type(exc).__name__ == 'UnknownROSArgsError':  # str(exc): the list of them
        try:
            unknown = [str(arg) for arg in ast.literal_eval(str(exc))]
        except (ValueError, SyntaxError):
            unknown = [rcl_text(exc)]
        many = 's' if len(unknown) > 1 else ''
        return f'bad ROS arguments: unknown ROS argument{many} {" ".join(unknown)}'
    text = rcl_text(exc)
    if text.startswith("Couldn't parse") or type(exc).__name__ == 'RCLInvalidROSArgsError':
        return f'bad ROS arguments: {ros_arguments_problem(text, said)}'
    if initialized:
        return f'cannot start ROS: {log_directory_problem(text)}'
    if text == 'error not set' and os.environ.get('ROS_SECURITY_ENABLE') == 'true' and \
            not os.environ.get('ROS_SECURITY_KEYSTORE'):
        return 'cannot start ROS: ROS_SECURITY_ENABLE=true but ROS_SECURITY_KEYSTORE is not set'
    return f'cannot start ROS: {text}'


def ros_arguments_problem(text: str, said: Sequence[str] = ()) -> str:
    """Say what rcl found wrong with the ROS arguments, in the words of the command line."""
    rule = re.match(r"Couldn't parse (?P<what>[\w -]+?): '(?P<arg>[^']*)'\. Error: (?P<why>.*)",
                    text)
    if rule:
        why = rule['why']
        if why.startswith('Expected lexeme'):  # the lexer's words: rcl's warning, or the form
            form = RULE_FORMS.get(rule['what'])
            why = said[-1] if said else f'expected {form}' if form else 'malformed'
        return f"cannot parse {rule['what']} '{rule['arg']}': {why}"
    trailing = re.match(r"Couldn't parse trailing (\S+) flag", text)
    if trailing:
        flag = trailing[1]
        form = ARGUMENT_FORMS.get(flag)
        return f'nothing after {flag}' + (f' (expected {flag} {form})' if form else '')
    return text


def log_directory_problem(text: str) -> str:
    """Name the log directory rcl could not write, and how to choose another."""
    made = re.search(r"log directory '([^']*)': (\d+)", text)
    opened = re.search(r'Failed opening file (.+) for writing: (.+)', text)
    if made:
        directory, reason = made[1], os.strerror(int(made[2]))
    elif opened:
        directory, reason = os.path.dirname(opened[1]), opened[2]
    else:
        return f'cannot set up logging: {text}'
    if os.environ.get('ROS_LOG_DIR'):
        where = f'{directory} (ROS_LOG_DIR)', 'set ROS_LOG_DIR to a writable directory'
    else:
        where = directory, 'set ROS_LOG_DIR or ROS_HOME to a writable directory'
    return f'log directory {where[0]} is not writable: {reason} ({where[1]})'


# rclpy refusing to make a node: rcl (a name, security), a name, one of rclpy's own parameters
NODE_ERRORS = (_rclpy.RCLError, NameValidationException, ParameterException)


def node_problem(exc: BaseException, program: str = '') -> str:
    """One line for an error of :data:`NODE_ERRORS` raised while making a node."""
    if isinstance(exc, ParameterException):  # e.g. -p use_sim_time:=5
        return f'error: {one_line(exc, named=False)}'
    return f'{program or program_name()}: cannot create the node: {rcl_text(exc)}'


class HeldStderr:
    """
    Hold back what is written to file descriptor 2 (the C libraries' lines) meanwhile.

    Shown when the block ends normally, else kept for :meth:`said`. Nothing is held when no
    memory file or temporary file can be had.
    """

    def __init__(self):
        self._file = None
        self.dropped = ''

    def said(self) -> List[str]:
        """Return the messages of the rcl log lines dropped, but rcl's own "Failed to parse"."""
        lines = [RCL_LOG_LINE.sub('', line).strip() for line in self.dropped.splitlines()
                 if RCL_LOG_LINE.match(line)]
        return [RCL_SOURCE.sub('', line).rstrip('.') for line in lines
                if line and not line.startswith('Failed to parse global arguments')]

    def __enter__(self):
        self._file = None
        try:
            sys.stderr.flush()
            if hasattr(os, 'memfd_create'):
                held = open(os.memfd_create('held_stderr'), 'w+b')
            else:
                held = tempfile.TemporaryFile()
            self._saved = os.dup(2)
        except (OSError, ValueError):
            return self
        os.dup2(held.fileno(), 2)
        self._file = held
        return self

    def __exit__(self, kind, value, trace) -> bool:
        if self._file is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        with self._file as held:
            held.seek(0)
            data = held.read()
            if kind is not None:
                self.dropped = data.decode(errors='replace')
                return False
            while data:
                data = data[os.write(2, data):]
        return False


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
