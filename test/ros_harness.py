"""
Integration-test access to real ROS 2 processes.

Integration-test access to real ROS 2 processes and a listening node (the package's own
RosProcess and Listener), with the loopback DDS environment set for this test process.
"""

from contextlib import contextmanager
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.harness.listener import Listener
from hobot_npu_infer.harness.processes import executable_module, ros_value, RosProcess
from hobot_npu_infer.harness.ros_env import child_environment, loopback_environment
from hobot_npu_infer.tools.lifecycle_ctl import LifecycleClient
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from std_msgs.msg import String

loopback_environment()

INFER_EXECUTABLES = ('infer_node', 'infer_lifecycle_node')


def start_infer(executable, params, listener, log_path, node_name='infer_node', env=None):
    """
    Start infer_node, or infer_lifecycle_node taken through configure and activate.

    The lifecycle node is taken through them by ``listener``; either way, the node is serving
    when this returns. A lifecycle node that does not get there fails with its log (and its exit
    code when its process ended, which is then told at once, not after the client's timeout).
    """
    node = RosProcess(executable, params, log_path=log_path, node_name=node_name, env=env)
    if executable == 'infer_lifecycle_node':
        client = LifecycleClient(listener.node, node_name, wait=while_running(node))
        try:
            if not (client.change('configure') and client.change('activate')):
                raise AssertionError(f'{node_name} did not activate:\n{node.output()}')
        except TimeoutError as exc:
            node.stop()
            raise AssertionError(f'{node_name} did not activate: {exc}\n{node.output()}') \
                from exc
        except BaseException:
            node.stop()
            raise
        finally:
            client.close()
    return node


def run_to_end(executable, env=None, **params):
    """Run one of our executables with ``params`` until it ends (``env``: more environment)."""
    cmd = [sys.executable, '-m', executable_module(executable), '--ros-args']
    for name, value in params.items():
        cmd += ['-p', f'{name}:={ros_value(value)}']
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=child_environment(**(env or {})))


def while_running(process):
    """
    Return a LifecycleClient ``wait`` that polls, and fails once ``process`` has ended.

    An ended node answers nothing more.
    """
    def wait(future, timeout):
        end = time.monotonic() + timeout
        while not future.done():
            if not process.running():
                raise AssertionError(f'the node ended (exit {process.proc.returncode}) before '
                                     f'answering:\n{process.output()}')
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)
        return True
    return wait


@contextmanager
def cameras_into_infer_node(tmp_path, topics, node_params, images, rate_hz, node_name,
                            listener_name, subscribe=lambda listener: None):
    """
    Yield (listener, node): infer_node on ``topics`` fed by image_source.

    Both are reliable, with JSON detections, and the listener listens on each topic's
    detections and on /diagnostics.

    The multi-camera tests all start this way, and all expect both processes to exit cleanly
    afterwards (a failing test keeps its own error). ``subscribe(listener)`` adds a test's own
    subscriptions before anything publishes.
    """
    listener = Listener(listener_name)
    node = camera = None
    try:
        for topic in topics:
            listener.subscribe(String, f'{topic}/detections')
        subscribe(listener)
        listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
        node = RosProcess('infer_node', {
            'inputs': topics, 'detections_format': 'json', 'qos_reliability': ['reliable'],
            **node_params}, log_path=str(tmp_path / 'node.log'), node_name=node_name)
        camera = RosProcess('image_source', {
            'images': images, 'topics': topics, 'rate_hz': rate_hz,
            'qos_reliability': 'reliable'}, log_path=str(tmp_path / 'camera.log'))
        yield listener, node
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0, 0]


def set_parameter(listener, node_name, name, value):
    """``name`` := ``value`` on the node over its parameter service; the SetParametersResult."""
    client = listener.node.create_client(SetParameters, f'/{node_name}/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=30)
        future = client.call_async(SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()]))
        assert listener.wait_for(future.done, timeout=30)
        return future.result().results[0]
    finally:
        listener.node.destroy_client(client)


def call(listener, srv_type, service, request):
    """Call ``service`` from the listener's node and return its answer (asserting it came)."""
    client = listener.node.create_client(srv_type, service)
    try:
        assert client.wait_for_service(timeout_sec=30), f'no {service}'
        future = client.call_async(request)
        assert listener.wait_for(future.done, timeout=30), f'{service} did not answer'
        return future.result()
    finally:
        listener.node.destroy_client(client)


def stop_all(processes):
    """Stop each process (name -> RosProcess) and assert that all exited cleanly."""
    codes = {name: p.stop() for name, p in processes.items()}
    assert codes == dict.fromkeys(processes, 0), {n: p.output() for n, p in processes.items()}


def stamp_key(stamp):
    """(sec, nanosec) of a builtin_interfaces/Time or of its JSON form."""
    if isinstance(stamp, dict):
        return stamp['sec'], stamp['nanosec']
    return stamp.sec, stamp.nanosec


def published_frame_ids(listener, image_topic, up_to):
    """
    Map stamp -> frame_id of the frames received on ``image_topic``.

    Waits until the listener holds every frame up to the stamp ``up_to`` (detections may
    overtake their image here).
    """
    listener.wait_for(lambda: any(stamp_key(m.header.stamp) >= up_to
                                  for m in listener.received(image_topic)), timeout=10)
    return {stamp_key(m.header.stamp): m.header.frame_id for m in listener.received(image_topic)}


__all__ = ['call', 'stop_all', 'published_frame_ids', 'stamp_key', 'Listener', 'RosProcess',
           'child_environment', 'loopback_environment', 'ros_value', 'INFER_EXECUTABLES',
           'LifecycleClient', 'set_parameter', 'start_infer', 'cameras_into_infer_node']


def newest_status(listener, name_part):
    """Return the newest /diagnostics status whose name contains ``name_part``, or None."""
    for array in reversed(listener.received('/diagnostics')):
        for status in array.status:
            if name_part in status.name:
                return status
    return None


def newest_values(listener, name_part):
    """Return that status's key-values as a dict; empty before it arrives."""
    status = newest_status(listener, name_part)
    return {kv.key: kv.value for kv in status.values} if status is not None else {}
