"""
lifecycle_ctl: ``ros2 lifecycle`` (get, set, list, nodes) for machines without ros2cli.

    python -m hobot_npu_infer.tools.lifecycle_ctl get [NODE]
    python -m hobot_npu_infer.tools.lifecycle_ctl set NODE TRANSITION
    python -m hobot_npu_infer.tools.lifecycle_ctl list NODE [-a]
    python -m hobot_npu_infer.tools.lifecycle_ctl nodes [-a] [-c]

Each verb prints what ros2cli's ros2lifecycle verb of ROS 2 Jazzy prints (verb/get.py, set.py,
list.py, nodes.py, api/__init__.py), on the same stream and with the same exit code; a string
a verb returns is printed by ``sys.exit`` there, so on stderr with exit 1:

- ``get NODE``: ``<label> [<id>]``, e.g. ``inactive [2]`` (exit 0); ``get``: one
  ``<node>: <label> [<id>]`` per lifecycle node, sorted;
- ``set NODE TRANSITION`` (a label or an id, of a transition available from the current
  state): ``Transitioning successful`` (exit 0); ``Transitioning failed`` on stderr, exit 0
  (ros2 lifecycle set returns nothing after printing it: check the output, or get); a
  transition not available now: ``Unknown transition requested, available ones are:`` and a
  ``- <label> [<id>]`` line per available one, on stderr, exit 1;
- ``list NODE``: per available transition three lines, ``- <label> [<id>]``, then a tab and
  ``Start: <state>``, a tab and ``Goal: <state>`` (``-a``: the whole transition graph);
  ``nodes``: the lifecycle nodes' full names (``-c``: their count);
- NODE not a lifecycle node on the graph: ``Node not found`` on stderr, exit 1.

A lifecycle node is one with a ``<node>/get_state`` service of type lifecycle_msgs/srv/GetState;
names starting with ``_`` are hidden unless ``--include-hidden-nodes`` (``-a`` for nodes).

Discovery: ros2 asks its daemon, which already knows the graph; this process discovers it
afresh, so it waits up to ``--spin-time`` seconds (default 4: on one machine discovery takes
0.2 s, or up to 3 s when it waits for the other side's next announcement) for NODE, or that
long for every node when listing. Then it waits up to 120 s for each answer (ros2: without
limit). ``--timeout S`` (lifecycle_ctl's own; Jazzy's ros2 lifecycle has no such option) waits
up to S seconds for NODE and for each answer instead, for scripts that start a node and use it
at once; a NODE still absent then, or an answer that does not come, is one line
``error: ...`` on stderr and exit 2. ROS that cannot start (ROS arguments that do not parse, an
unwritable log directory, an RMW implementation not installed) is one line
``lifecycle_ctl: ...`` on stderr and exit 2, as for the nodes (node_main.start_ros).

:class:`LifecycleClient` is the same client for a node of one's own (the tests use it).
"""

import argparse
from collections.abc import Callable, Iterable
import os
import sys
import time
from typing import List, Optional

from hobot_npu_infer.ros.node_main import (
    NODE_ERRORS,
    node_problem,
    own_arguments,
    shut_down,
    start_ros,
    StartError,
)
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
import rclpy
from rclpy.executors import SingleThreadedExecutor

PROG = 'lifecycle_ctl'
TRANSITIONS = ('configure', 'activate', 'deactivate', 'cleanup', 'shutdown')
GET_STATE_TYPE = 'lifecycle_msgs/srv/GetState'
HIDDEN_PREFIX = '_'
DISCOVERY_S = 4.0
ANSWER_S = 120.0
RESEND_S = 5.0  # an unanswered request: asked again, or its outcome asked (LifecycleClient)
WAIT_SLICE_S = 0.1
NODE_NOT_FOUND = 'Node not found'
FAILED = object()  # what Verbs.call answers for a call that raised


def poll(future, timeout: float) -> bool:
    """Wait for ``future`` while another thread spins its node."""
    end = time.monotonic() + timeout
    while not future.done() and time.monotonic() < end:
        time.sleep(0.02)
    return future.done()


def absolute(name: str) -> str:
    """ros2node's get_absolute_node_name: a leading '/' added when missing."""
    return name if name.startswith('/') else '/' + name


# the primary state each transition leads to when it succeeds, by label and by id
GOALS = {'configure': State.PRIMARY_STATE_INACTIVE, 'cleanup': State.PRIMARY_STATE_UNCONFIGURED,
         'activate': State.PRIMARY_STATE_ACTIVE, 'deactivate': State.PRIMARY_STATE_INACTIVE,
         'shutdown': State.PRIMARY_STATE_FINALIZED}
GOAL_IDS = {Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
            Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED,
            Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
            Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE,
            Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: State.PRIMARY_STATE_FINALIZED,
            Transition.TRANSITION_INACTIVE_SHUTDOWN: State.PRIMARY_STATE_FINALIZED,
            Transition.TRANSITION_ACTIVE_SHUTDOWN: State.PRIMARY_STATE_FINALIZED}


def transition_name(transition: Transition) -> str:
    return transition.label or str(transition.id)


def transition_made(transition: Transition, before: int, now: int) -> Optional[bool]:
    """
    Tell from the states before and after whether ``transition`` was made.

    True: the node is in the state it leads to; False: in another primary state than the one it
    started from (the transition failed through error processing); None: nothing to tell yet
    (still the state it started from, a transition state, or a transition of unknown goal).
    """
    goal = GOALS.get(transition.label) if transition.label else GOAL_IDS.get(transition.id)
    if goal is None or goal == before or now == before or \
            not State.PRIMARY_STATE_UNCONFIGURED <= now <= State.PRIMARY_STATE_FINALIZED:
        return None
    return now == goal


class LifecycleClient:
    """
    The lifecycle services of one lifecycle node, from ``node``.

    ``wait(future, timeout) -> bool`` waits for a reply: :func:`poll` when the node is spun
    elsewhere (the default), or an executor's ``spin_until_future_complete``. A service that
    is not there, or a reply that does not come, within the timeout raises TimeoutError; a
    service call that failed raises what it raised.

    An answer can be lost: rclpy's ``wait_for_service`` is true once this side's request writer
    and response reader have matched the service, but the service may not have matched this
    client's response reader yet, and Fast DDS then drops the answer (the node warns ``failed to
    send response (timeout)``; ros2/rmw_fastrtps#390, ros2/rmw_cyclonedds#74). So a query
    (GetState, the transitions), which may be asked twice, is asked again every ``resend_s``
    while unanswered; a transition, which may not, is never requested twice: after ``resend_s``
    without its answer, GetState tells what became of it (``lost_answers`` lists each answer
    found lost that way).
    """

    def __init__(self, node, target: str, wait: Callable = poll, resend_s: float = RESEND_S):
        self.target = absolute(target)
        self.node = node
        self.wait = wait
        self.resend_s = resend_s
        self.lost_answers: List[str] = []
        self._clients = {}

    def _client(self, srv_type, service: str):
        if service not in self._clients:
            self._clients[service] = self.node.create_client(srv_type, f'{self.target}/{service}')
        return self._clients[service]

    def _ready(self, srv_type, service: str, end: float, timeout: float):
        """Return the client of ``service`` once the service is there (by ``end``)."""
        client = self._client(srv_type, service)
        if not client.wait_for_service(timeout_sec=max(0.0, end - time.monotonic())):
            raise TimeoutError(f'no lifecycle node {self.target} (no {client.srv_name} service '
                               f'within {timeout:g} s)')
        return client

    def _wait_any(self, futures: list, until: float) -> bool:
        """Wait until one of ``futures`` is done (True) or the time ``until`` (False)."""
        while not any(f.done() for f in futures):
            left = until - time.monotonic()
            if left <= 0:
                return False
            self.wait(futures[-1], min(left, WAIT_SLICE_S))
        return True

    def _ask(self, srv_type, service: str, request, timeout: float, end: Optional[float] = None,
             settled: Callable[[], bool] = lambda: False):
        """
        Return the answer of an idempotent request, sent again while unanswered.

        None when ``settled()`` turns true first.
        """
        end = time.monotonic() + timeout if end is None else end
        client = self._ready(srv_type, service, end, timeout)
        futures = []
        try:
            while time.monotonic() < end and not settled():
                futures.append(client.call_async(request))
                if self._wait_any(futures, min(end, time.monotonic() + self.resend_s)):
                    return next(f for f in futures if f.done()).result()
                if settled():
                    return None
        finally:
            for future in futures:
                if not future.done():
                    client.remove_pending_request(future)
        if settled():
            return None
        raise TimeoutError(f'{client.srv_name} did not answer within {timeout:g} s')

    def state(self, timeout: float = 30.0) -> tuple:
        """(label, id) of the current state, e.g. ('inactive', 2)."""
        state = self._ask(GetState, 'get_state', GetState.Request(), timeout).current_state
        return state.label, state.id

    def transitions(self, timeout: float = 30.0, graph: bool = False) -> list:
        """Return the TransitionDescriptions available now (``graph``: all of the node's)."""
        service = 'get_transition_graph' if graph else 'get_available_transitions'
        return list(self._ask(GetAvailableTransitions, service,
                              GetAvailableTransitions.Request(), timeout)
                    .available_transitions)

    def change(self, transition, timeout: float = 120.0) -> bool:
        """
        Request a transition (a label, or a lifecycle_msgs Transition); True on success.

        Requested once. Its answer lost, the state it leads to shows it done (True); a state
        other than the one it started from shows it failed (error processing, False); the state
        it started from, or one in transition, shows nothing yet, so this goes on waiting and
        asking until ``timeout``.
        """
        request = ChangeState.Request()
        if isinstance(transition, Transition):
            request.transition = transition
        else:
            request.transition.label = transition
        end = time.monotonic() + timeout
        before = self._ask(GetState, 'get_state', GetState.Request(), timeout, end).current_state
        client = self._ready(ChangeState, 'change_state', end, timeout)
        future = client.call_async(request)
        now = None  # the state since the request, once GetState told it
        try:
            while not self._wait_any([future], min(end, time.monotonic() + self.resend_s)):
                try:
                    answer = self._ask(GetState, 'get_state', GetState.Request(), timeout, end,
                                       settled=future.done)
                except TimeoutError:
                    break
                if answer is None:  # the transition's answer came meanwhile
                    continue
                now = answer.current_state
                made = transition_made(request.transition, before.id, now.id)
                if made is not None and not future.done():
                    self.lost_answers.append(
                        f'{client.srv_name} {transition_name(request.transition)}: no answer '
                        f'within {self.resend_s:g} s; the node went {before.label} -> '
                        f'{now.label}, so it {"succeeded" if made else "failed"}')
                    return made
        finally:
            if not future.done():
                client.remove_pending_request(future)
        if future.done():
            return bool(future.result().success)
        if now is None:
            since = 'nor get_state since: the node is stuck, or gone'
        elif now.id == before.id:
            since = f'the node is {now.label} [{now.id}], as before the request'
        else:
            since = f'the node went {before.label} [{before.id}] -> {now.label} [{now.id}]'
        raise TimeoutError(f'{client.srv_name} did not answer within {timeout:g} s ({since})')

    def close(self) -> None:
        for client in self._clients.values():
            self.node.destroy_client(client)
        self._clients = {}


def is_hidden(name: str) -> bool:
    return any(part.startswith(HIDDEN_PREFIX) for part in name.split('/') if part)


def lifecycle_nodes(node, include_hidden: bool) -> List[str]:
    """
    Full names of the lifecycle nodes on the graph, as ros2lifecycle's get_node_names.

    Nodes with a <name>/get_state service of the GetState type; hidden ones (a name starting
    with '_') only with ``include_hidden``.
    """
    services = {name for name, types in node.get_service_names_and_types()
                if GET_STATE_TYPE in types and (include_hidden or not is_hidden(name))}
    names = []
    for name, namespace in node.get_node_names_and_namespaces():
        if not name or (name.startswith(HIDDEN_PREFIX) and not include_hidden):
            continue
        full = namespace + ('' if namespace.endswith('/') else '/') + name
        if f'{full}/get_state' in services:
            names.append(full)
    return names


def discover(node, target: Optional[str], include_hidden: bool, seconds: float) -> List[str]:
    """Return the lifecycle nodes once ``target`` is among them, or after ``seconds``."""
    end = time.monotonic() + seconds
    while True:
        names = lifecycle_nodes(node, include_hidden)
        if (target is not None and target in names) or time.monotonic() >= end:
            return names
        time.sleep(0.05)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--spin-time', type=float, default=DISCOVERY_S, metavar='S',
                        help=f'wait up to S seconds for discovery (default {DISCOVERY_S:g})')
    common.add_argument('--timeout', type=float, default=None, metavar='S',
                        help='wait up to S seconds for NODE to appear and for each answer; '
                             'then one error line and exit 2 (not in ros2 lifecycle)')
    hidden = argparse.ArgumentParser(add_help=False)
    hidden.add_argument('--include-hidden-nodes', action='store_true',
                        help='consider hidden nodes as well')
    p = argparse.ArgumentParser(prog=PROG, description='Lifecycle nodes: their state, a '
                                'transition, the transitions, the nodes (as ros2 lifecycle '
                                'get/set/list/nodes, without ros2cli).')
    verbs = p.add_subparsers(dest='command', required=True)
    get = verbs.add_parser('get', parents=[common, hidden], help='print the current state')
    get.add_argument('node', nargs='?', help='node name, e.g. /infer_node (none: every '
                     'lifecycle node)')
    set_ = verbs.add_parser('set', parents=[common, hidden], help='request a transition')
    set_.add_argument('node', help='node name, e.g. /infer_node')
    set_.add_argument('transition', help=f'a transition label ({", ".join(TRANSITIONS)}) or '
                      'id, available from the current state')
    list_ = verbs.add_parser('list', parents=[common, hidden],
                             help='print the transitions available now')
    list_.add_argument('node', help='node name, e.g. /infer_node')
    list_.add_argument('-a', '--all', action='store_true',
                       help='every transition of the node')
    nodes = verbs.add_parser('nodes', parents=[common], help='print the lifecycle nodes')
    nodes.add_argument('-a', '--all', action='store_true', help='hidden nodes as well')
    nodes.add_argument('-c', '--count-nodes', action='store_true',
                       help='print only how many there are')
    return p


class Verbs:
    """The verbs (``verb_<name>``) over one discovery node; each returns the exit code."""

    def __init__(self, node, options, wait: Callable):
        self.node = node
        self.options = options
        self.wait = wait
        self.answer_s = options.timeout if options.timeout is not None else ANSWER_S

    def find(self, target: Optional[str]) -> Optional[List[str]]:
        """Return the lifecycle nodes; None (said so) when ``target`` is not among them."""
        seconds = self.options.timeout if self.options.timeout is not None \
            else self.options.spin_time
        names = discover(self.node, target, getattr(self.options, 'include_hidden_nodes',
                                                    False), seconds)
        if target is None or target in names:
            return names
        if self.options.timeout is not None:
            print(f'error: no lifecycle node {target} (no {target}/get_state service within '
                  f'{self.options.timeout:g} s)', file=sys.stderr)
            return None
        print(NODE_NOT_FOUND, file=sys.stderr)
        return None

    def client(self, target: str) -> LifecycleClient:
        return LifecycleClient(self.node, target, self.wait)

    @staticmethod
    def call(node: str, request: Callable[[], object]) -> object:
        """Return what a service call answers, or FAILED having printed its error as ros2 does."""
        try:
            return request()
        except TimeoutError:
            raise
        except Exception as exc:  # noqa: BLE001 (ros2 prints what the call raised)
            print(f"Exception while calling service of node '{node}': {exc}", file=sys.stderr)
            return FAILED

    def verb_get(self) -> int:
        target = absolute(self.options.node) if self.options.node else None
        names = self.find(target)
        if names is None:
            return 2 if self.options.timeout is not None else 1
        states = {}
        for name in [target] if target else sorted(names):
            state = self.call(name, lambda: self.client(name).state(self.answer_s))
            if state is FAILED:
                if target:
                    return 1
            else:
                states[name] = state
        for name in sorted(states):
            label, state_id = states[name]
            print(f'{name}: {label} [{state_id}]' if target is None else
                  f'{label} [{state_id}]')
        return 0

    def verb_set(self) -> int:
        target = absolute(self.options.node)
        if self.find(target) is None:
            return 2 if self.options.timeout is not None else 1
        client = self.client(target)
        available = self.call(self.options.node, lambda: client.transitions(self.answer_s))
        if available is FAILED:
            return 1
        wanted = self.options.transition
        chosen = next((t.transition for t in available if t.transition.label == wanted), None)
        if chosen is None:
            chosen = next((t.transition for t in available if str(t.transition.id) == wanted),
                          None)
        if chosen is None:
            print('Unknown transition requested, available ones are:' + ''.join(
                f'\n- {t.transition.label} [{t.transition.id}]' for t in available),
                file=sys.stderr)
            return 1
        ok = self.call(self.options.node, lambda: client.change(chosen, self.answer_s))
        if ok is FAILED:
            return 0
        if ok:
            print('Transitioning successful')
        else:
            print('Transitioning failed', file=sys.stderr)
        return 0  # as ros2 lifecycle set: a failed transition is not an exit code

    def verb_list(self) -> int:
        target = absolute(self.options.node)
        if self.find(target) is None:
            return 2 if self.options.timeout is not None else 1
        transitions = self.call(self.options.node, lambda: self.client(target).transitions(
            self.answer_s, graph=self.options.all))
        if transitions is FAILED:
            return 1
        for t in transitions:
            print(f'- {t.transition.label} [{t.transition.id}]\n'
                  f'\tStart: {t.start_state.label}\n'
                  f'\tGoal: {t.goal_state.label}')
        return 0

    def verb_nodes(self) -> int:
        names = discover(self.node, None, self.options.all, self.options.timeout
                         if self.options.timeout is not None else self.options.spin_time)
        if self.options.count_nodes:
            print(len(names))
        elif names:
            print(*sorted(names), sep='\n')
        return 0


def main(args: Iterable[str] | None = None) -> int:
    argv = [PROG, *(sys.argv[1:] if args is None else list(args))]
    try:  # ROS arguments that do not parse, or ROS that cannot start: one line, exit 2
        options = parser().parse_args(own_arguments(argv)[1:])
        start_ros(argv, signal_handler_options=None)  # rclpy's handlers: KeyboardInterrupt
    except StartError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    try:
        node = rclpy.create_node(f'_{PROG}_{os.getpid()}')  # hidden, as ros2cli's own node
    except NODE_ERRORS as exc:
        rclpy.try_shutdown()
        print(node_problem(exc, PROG), file=sys.stderr)
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def wait(future, timeout):
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        return future.done()
    try:
        return getattr(Verbs(node, options, wait), f'verb_{options.command}')()
    except TimeoutError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        shut_down(executor, node)


if __name__ == '__main__':
    sys.exit(main())
