"""
lifecycle_ctl: ``ros2 lifecycle get/set`` for machines without ros2cli.

    python -m hobot_npu_infer.tools.lifecycle_ctl get /infer_node
    python -m hobot_npu_infer.tools.lifecycle_ctl set /infer_node TRANSITION

TRANSITION: configure, activate, deactivate, cleanup or shutdown.

Prints what ros2 lifecycle prints: ``inactive [2]`` for get; ``Transitioning successful`` (exit
0) or ``Transitioning failed`` (exit 1) for set. No such node: one line, exit 2.
:class:`LifecycleClient` is the same client for a node of one's own (the tests use it).
"""

import argparse
from collections.abc import Callable, Iterable
import os
import sys
import time

from hobot_npu_infer.ros.node_main import shut_down
from lifecycle_msgs.srv import ChangeState, GetState
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.utilities import remove_ros_args

PROG = 'lifecycle_ctl'
TRANSITIONS = ('configure', 'activate', 'deactivate', 'cleanup', 'shutdown')


def poll(future, timeout: float) -> bool:
    """Wait for ``future`` while another thread spins its node."""
    end = time.monotonic() + timeout
    while not future.done() and time.monotonic() < end:
        time.sleep(0.02)
    return future.done()


class LifecycleClient:
    """
    The get_state and change_state services of one lifecycle node, from ``node``.

    ``wait(future, timeout) -> bool`` waits for a reply: :func:`poll` when the node is spun
    elsewhere (the default), or an executor's ``spin_until_future_complete``.
    """

    def __init__(self, node, target: str, wait: Callable = poll):
        self.target = target if target.startswith('/') else '/' + target
        self.node = node
        self.wait = wait
        self._get = node.create_client(GetState, f'{self.target}/get_state')
        self._change = node.create_client(ChangeState, f'{self.target}/change_state')

    def _call(self, client, request, timeout: float):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'no lifecycle node {self.target} (no {client.srv_name} service '
                               f'within {timeout:g} s)')
        future = client.call_async(request)
        if not self.wait(future, timeout):
            raise TimeoutError(f'{client.srv_name} did not answer within {timeout:g} s')
        return future.result()

    def state(self, timeout: float = 30.0) -> tuple:
        """(label, id) of the current state, e.g. ('inactive', 2)."""
        state = self._call(self._get, GetState.Request(), timeout).current_state
        return state.label, state.id

    def change(self, transition: str, timeout: float = 120.0) -> bool:
        """Request a transition by its label; True when it succeeded."""
        request = ChangeState.Request()
        request.transition.label = transition
        return bool(self._call(self._change, request, timeout).success)

    def close(self) -> None:
        self.node.destroy_client(self._get)
        self.node.destroy_client(self._change)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--timeout', type=float, default=120.0, metavar='S',
                        help='wait at most S seconds for the node and its answer (default 120)')
    p = argparse.ArgumentParser(prog=PROG, description='Get the state of a lifecycle node or '
                                'request a transition (as ros2 lifecycle get/set).')
    commands = p.add_subparsers(dest='command', required=True)
    get = commands.add_parser('get', parents=[common], help='print the current state')
    get.add_argument('node', help='node name, e.g. /infer_node')
    set_ = commands.add_parser('set', parents=[common], help='request a transition')
    set_.add_argument('node', help='node name, e.g. /infer_node')
    set_.add_argument('transition', choices=TRANSITIONS)
    return p


def main(args: Iterable[str] | None = None) -> int:
    argv = [PROG, *(sys.argv[1:] if args is None else list(args))]
    options = parser().parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv)
    node = rclpy.create_node(f'{PROG}_{os.getpid()}')
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def wait(future, timeout):
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        return future.done()
    try:
        client = LifecycleClient(node, options.node, wait)
        if options.command == 'get':
            label, state_id = client.state(options.timeout)
            print(f'{label} [{state_id}]')
            return 0
        ok = client.change(options.transition, options.timeout)
        print('Transitioning successful' if ok else 'Transitioning failed')
        return 0 if ok else 1
    except TimeoutError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        shut_down(executor, node)


if __name__ == '__main__':
    sys.exit(main())
