"""
Duplicate node names refused, over real DDS.

A node that finds another node of its full name (namespace + name) on the graph during its
start-up window logs one ERROR line naming that full name and exits 2; the node that was
there first keeps running. See NameCheck in hobot_npu_infer/ros/node_main.py.
"""

import subprocess
import time

from hobot_npu_infer.ros.infer_node import InferNode
from hobot_npu_infer.ros.node_main import DuplicateNodeName, NameCheck, shut_down
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from ros_harness import LifecycleClient, Listener, RosProcess
from std_msgs.msg import String

PARAMS = {'input_size': '320x256', 'detections_format': 'json', 'qos_reliability': ['reliable']}
EXIT_WAIT_S = 60.0


def camera(cam, tmp_path, name):
    return RosProcess('image_source', {'topics': [cam], 'rate_hz': 10.0,
                                       'qos_reliability': 'reliable'},
                      log_path=str(tmp_path / f'{name}.log'), node_name=name)


def exit_code(process: RosProcess, timeout: float = EXIT_WAIT_S):
    """Return the exit code once the process ends by itself (None: still running)."""
    try:
        return process.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def error_lines(process: RosProcess):
    return [line for line in process.output().splitlines() if '[ERROR]' in line]


def assert_refused(process: RosProcess, full_name: str):
    code = exit_code(process)
    log = process.output()
    assert code == 2, f'exit {code}\n{log}'
    errors = error_lines(process)
    assert len(errors) == 1, log
    assert f'another node named {full_name} is already on the ROS graph' in errors[0], log
    assert 'Traceback' not in log, log


def serving_past_its_window(listener, out, started: float, first: RosProcess):
    """Wait until ``first`` publishes and is older than its name-check window."""
    assert listener.wait_for(lambda: len(listener.received(out)) >= 1), first.output()
    time.sleep(max(0.0, started + NameCheck.watch_s + 0.5 - time.monotonic()))
    assert first.running(), first.output()


@pytest.mark.parametrize('executable, namespace', [('infer_node', ''),
                                                   ('infer_lifecycle_node', '/dup_ns')])
def test_a_second_node_of_the_same_full_name_is_refused(tmp_path, executable, namespace):
    name = f'dup_{executable}'
    full_name = f'{namespace}/{name}'
    cam = f'/dup_test/{executable}/image_raw'
    out = f'{cam}/detections'
    ns_args = ['--ros-args', '-r', f'__ns:={namespace}'] if namespace else []
    listener = Listener(f'dup_listener_{executable}')
    processes = []
    try:
        listener.subscribe(String, out)
        started = time.monotonic()
        first = RosProcess(executable, {'inputs': [cam], **PARAMS}, args=ns_args,
                           log_path=str(tmp_path / 'first.log'), node_name=name)
        processes.append(first)
        if executable == 'infer_lifecycle_node':
            client = LifecycleClient(listener.node, full_name)
            assert client.change('configure') and client.change('activate'), first.output()
            client.close()
        processes.append(camera(cam, tmp_path, f'dup_cam_{executable}'))
        serving_past_its_window(listener, out, started, first)

        second = RosProcess(executable, {'inputs': [cam], **PARAMS}, args=ns_args,
                            log_path=str(tmp_path / 'second.log'), node_name=name)
        processes.append(second)
        assert_refused(second, full_name)

        # the first one never noticed, and goes on serving
        seen = len(listener.received(out))
        assert listener.wait_for(lambda: len(listener.received(out)) >= seen + 3), \
            first.output()
        assert first.running() and error_lines(first) == [], first.output()
    finally:
        listener.close()
        codes = [p.stop() for p in reversed(processes)]
    assert codes[-1] == 0, first.output()  # the first one stops cleanly


def test_the_same_name_in_another_namespace_is_not_a_duplicate(tmp_path):
    cam = '/dup_test/other_ns/image_raw'
    nodes = [RosProcess('infer_node', {'inputs': [cam], **PARAMS},
                        args=['--ros-args', '-r', f'__ns:={namespace}'] if namespace else [],
                        log_path=str(tmp_path / f'node{i}.log'), node_name='dup_shared')
             for i, namespace in enumerate(['', '/dup_other'])]
    try:
        time.sleep(NameCheck.watch_s + 2.0)
        for node in nodes:
            assert node.running() and error_lines(node) == [], node.output()
    finally:
        codes = [node.stop() for node in nodes]
    assert codes == [0, 0], '\n'.join(node.output() for node in nodes)


def test_of_two_started_at_once_at_most_one_keeps_running(tmp_path):
    """
    Two at the same moment: at least one refuses, and never both go on.

    The one that sees the other first refuses and leaves; the other refuses too when it saw
    the first before that (both are within their window), else it keeps running alone.
    """
    nodes = [RosProcess('infer_node', {'inputs': ['/dup_test/race/image_raw'], **PARAMS},
                        log_path=str(tmp_path / f'node{i}.log'), node_name='dup_race')
             for i in range(2)]
    try:
        time.sleep(NameCheck.watch_s + 4.0)  # both windows over, and their refusals done
        running = [node for node in nodes if node.running()]
        assert len(running) <= 1, '\n'.join(node.output() for node in nodes)
        for node in nodes:
            if node not in running:
                assert_refused(node, '/dup_race')
            else:
                assert error_lines(node) == [], node.output()
    finally:
        for node in nodes:
            node.stop()


def test_a_duplicate_discovered_after_start_up_stops_the_node_through_the_watch():
    """
    The watch timer: a duplicate that shows up after wait() ends spinning with the exception.

    Both nodes are in this process (two contexts, so two DDS participants); the second node's
    check starts with no wait, as if discovery had been slow.
    """
    contexts, nodes = [], []
    try:
        for _ in range(2):
            context = rclpy.Context()
            rclpy.init(context=context)
            contexts.append(context)
        nodes.append(rclpy.create_node('dup_watch', context=contexts[0]))
        check = NameCheck(nodes[0])
        check.started -= check.block_s  # its blocking wait is over
        check.wait()
        check.watch()
        executor = SingleThreadedExecutor(context=contexts[0])
        executor.add_node(nodes[0])
        nodes.append(rclpy.create_node('dup_watch', context=contexts[1]))
        with pytest.raises(DuplicateNodeName) as refused:
            end = time.monotonic() + NameCheck.watch_s
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
        assert refused.value.node is nodes[0]
        assert 'another node named /dup_watch is already on the ROS graph' in str(refused.value)
        executor.shutdown()
    finally:
        for node, context in zip(nodes, contexts):
            node.destroy_node()
            rclpy.try_shutdown(context=context)
            context.destroy()


def test_infer_node_refuses_before_serving_when_the_name_is_already_seen():
    """
    In process: the duplicate is on the graph at once, so nothing is started.

    The other node's participant is discovered first (through a probe node in the same
    context), so the new node sees the duplicate in its blocking wait.
    """
    contexts = []
    other = None
    try:
        for _ in range(2):
            context = rclpy.Context()
            rclpy.init(context=context)
            contexts.append(context)
        other = rclpy.create_node('dup_early', context=contexts[0])
        probe = rclpy.create_node('dup_probe', context=contexts[1])  # discovers the other
        end = time.monotonic() + 30
        while ('dup_early', '/') not in probe.get_node_names_and_namespaces() and \
                time.monotonic() < end:
            time.sleep(0.05)
        probe.destroy_node()
        with pytest.raises(DuplicateNodeName) as refused:
            InferNode(context=contexts[1], cli_args=['--ros-args', '-r', '__node:=dup_early'],
                      parameter_overrides=[Parameter('inputs', value=['/dup_test/early'])])
        node = refused.value.node
        assert node.host.runner is None and node.get_subscriptions_info_by_topic(
            '/dup_test/early') == []  # never started
        shut_down(SingleThreadedExecutor(context=contexts[1]), node, contexts[1])
    finally:
        if other is not None:
            other.destroy_node()
        for context in contexts:
            rclpy.try_shutdown(context=context)
            context.destroy()
