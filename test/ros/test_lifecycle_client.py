"""
LifecycleClient when an answer is lost.

Fast DDS drops a service's answer when the service has not yet matched the client's response
reader (rclpy's wait_for_service only tells that the client's side has matched): the node warns
"failed to send response (timeout)" and the client waits in vain. Here a lifecycle node in this
process loses answers on purpose, the same way (its service's send_response drops them), and
the client must still learn each outcome, without ever requesting a transition twice.
"""

import itertools
import threading
import time

from hobot_npu_infer.ros.node_main import shut_down
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from ros_harness import LifecycleClient, Listener

SERIAL = itertools.count()
RESEND_S = 0.5


class Managed(LifecycleNode):
    """A lifecycle node recording the transitions it runs; activate raises (error processing)."""

    def __init__(self, name, context, configure=TransitionCallbackReturn.SUCCESS,
                 configure_s=0.0):
        super().__init__(name, context=context)
        self.configure_result = configure
        self.configure_s = configure_s
        self.ran = []

    def on_configure(self, state):
        self.ran.append('configure')
        time.sleep(self.configure_s)
        return self.configure_result

    def on_activate(self, state):
        self.ran.append('activate')
        raise RuntimeError('a bug in activate')


def lose_answers(service, count):
    """Make ``service`` drop its next ``count`` answers; return the list of those dropped."""
    dropped = []
    send = service.send_response

    def send_response(response, header):
        if len(dropped) < count:
            dropped.append(response)
            return
        send(response, header)
    service.send_response = send_response
    return dropped


@pytest.fixture
def served():
    """Yield a function making (node, client): a Managed node spun here, a client over DDS."""
    made = []
    listener = Listener('lc_client_listener')

    def make(**kwargs):
        name = f'lc_client_{next(SERIAL)}'
        context = rclpy.Context()
        rclpy.init(context=context)
        node = Managed(name, context, **kwargs)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.05)
        thread = threading.Thread(target=spin, name=f'{name}-spin', daemon=True)
        thread.start()
        client = LifecycleClient(listener.node, name, resend_s=RESEND_S)
        made.append((client, stop, thread, executor, node, context))
        return node, client
    try:
        yield make
    finally:
        for client, stop, thread, executor, node, context in made:
            client.close()
            stop.set()
            thread.join(10)
            shut_down(executor, node, context)
            context.destroy()
        listener.close()


def test_a_transition_whose_answer_is_lost_is_learnt_from_the_state(served):
    node, client = served()
    assert client.state() == ('unconfigured', 1)  # the node is there and answers
    dropped = lose_answers(node._service_change_state, 1)
    started = time.monotonic()
    assert client.change('configure', timeout=60)
    assert time.monotonic() - started < 30  # not the whole timeout
    assert len(dropped) == 1 and dropped[0].success  # the answer was lost ...
    assert node.ran == ['configure']  # ... and the transition was not requested again
    assert client.state() == ('inactive', 2)
    assert len(client.lost_answers) == 1 and 'unconfigured -> inactive' in client.lost_answers[0]


def test_a_failed_transition_whose_answer_is_lost_is_false_when_the_state_shows_it(served):
    node, client = served()
    assert client.change('configure')
    dropped = lose_answers(node._service_change_state, 1)
    assert client.change('activate', timeout=60) is False  # error processing: unconfigured
    assert len(dropped) == 1 and not dropped[0].success
    assert node.ran == ['configure', 'activate']
    assert client.state() == ('unconfigured', 1)


def test_a_lost_answer_the_state_cannot_explain_times_out_naming_the_state(served):
    node, client = served(configure=TransitionCallbackReturn.FAILURE)
    dropped = lose_answers(node._service_change_state, 1)
    with pytest.raises(TimeoutError, match=r'change_state did not answer within 3 s \(the node '
                                           r'is unconfigured \[1\]'):
        client.change('configure', timeout=3)
    assert len(dropped) == 1 and node.ran == ['configure']  # requested once only


def test_a_node_stuck_in_a_transition_is_told_apart(served):
    node, client = served(configure_s=4.0)  # its one executor thread busy: nothing answers
    with pytest.raises(TimeoutError, match=r'change_state did not answer within 2 s \(nor '
                                           r'get_state since: the node is stuck, or gone\)'):
        client.change('configure', timeout=2)
    assert node.ran == ['configure']
    assert client.state(timeout=30) == ('inactive', 2)  # once it is done


def test_a_lost_state_answer_is_asked_again(served):
    node, client = served()
    dropped = lose_answers(node._service_get_state, 2)
    assert client.state(timeout=30) == ('unconfigured', 1)
    assert len(dropped) == 2
    dropped = lose_answers(node._service_get_available_transitions, 1)
    assert [t.transition.label for t in client.transitions(timeout=30)] == \
        ['configure', 'shutdown']
    assert len(dropped) == 1
