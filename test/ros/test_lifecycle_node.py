"""
infer_lifecycle_node: every transition requested over real DDS through the lifecycle services.

Most tests run the node in this process (a context and executor of its own) so they can check
what is loaded, and drive it from the listener's client node over DDS; the last ones run the
executable in a process of its own.
"""

import dataclasses
import gc
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
import weakref

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.ros.diagnostics import level_of
from hobot_npu_infer.ros.image_conversion import array_to_image_msg
from hobot_npu_infer.ros.infer_lifecycle_node import InferLifecycleNode
from hobot_npu_infer.ros.node_main import shut_down
from hobot_npu_infer.ros.qos import image_qos
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from ros_harness import child_environment, LifecycleClient, Listener, RosProcess, set_parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String

ASTRONAUT_FACE = (182, 58, 270, 178)
RUNNER_THREADS = ('prepare', 'infer')
SERIAL = itertools.count()


@dataclasses.dataclass
class Setup:
    """
    One test's node name and topics.

    They are new for every test, so nothing a previous test's participant still announces on
    the graph can answer for them.
    """

    name: str

    @property
    def cam(self):
        return f'/{self.name}/cam/image_raw'

    @property
    def out(self):
        return f'{self.cam}/detections'

    def statuses(self, listener):
        return [s for array in listener.received('/diagnostics') for s in array.status
                if s.name == f'{self.name}: input {self.cam}']

    def last_report(self, listener):
        """When the newest /diagnostics array of this node arrived (None: never)."""
        return max((t for t, array in listener.received_with_times('/diagnostics')
                    if any(s.name.startswith(f'{self.name}: ') for s in array.status)),
                   default=None)


class ManagedNode:
    """InferLifecycleNode spinning in this process, in a context of its own."""

    def __init__(self, name, **params):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.node = InferLifecycleNode(context=self.context, parameter_overrides=overrides,
                                       cli_args=['--ros-args', '-r', f'__node:={name}'])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name='managed-spin', daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self._stop.set()
        self._thread.join(10)
        shut_down(self.executor, self.node, self.context)
        self.context.destroy()  # its participant leaves the graph now, not when collected


class Camera:
    """The astronaut, published from the listener's node while a test waits."""

    def __init__(self, listener, topic):
        self.listener = listener
        self.publisher = listener.publisher(Image, topic, image_qos('reliable', 1))
        self.msg = array_to_image_msg(load_sample('astronaut'), 'bgr8')
        self.msg.header.frame_id = 'camera'

    def publish(self):
        self.msg.header.stamp = self.listener.node.get_clock().now().to_msg()
        self.publisher.publish(self.msg)

    def feed_until(self, predicate, timeout=60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.publish()
            if self.listener.wait_for(predicate, timeout=0.1):
                return True
        return predicate()

    def feed_for(self, seconds):
        self.feed_until(lambda: False, timeout=seconds)


@pytest.fixture
def setup():
    return Setup(f'lc_infer_{next(SERIAL)}')


@pytest.fixture
def system(setup):
    listener = Listener('lifecycle_listener')
    listener.subscribe(String, setup.out)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=20)
    managed = ManagedNode(setup.name, inputs=[setup.cam], detections_format='json',
                          input_size='320x256', diagnostics_period_s=0.2)
    client = LifecycleClient(listener.node, setup.name)
    try:
        yield managed.node, listener, client, Camera(listener, setup.cam)
    finally:
        client.close()
        managed.close()
        listener.close()


def runner_threads():
    return [t.name for t in threading.enumerate() if t.name in RUNNER_THREADS]


def subscribed(listener, setup) -> int:
    """Subscriptions to the camera topic, as the DDS graph shows them to the listener."""
    return listener.node.count_subscribers(setup.cam)


def the_face(msg):
    [face] = json.loads(msg.data)['detections']
    assert all(abs(g - w) <= 10 for g, w in zip(face['box'], ASTRONAUT_FACE)), face
    return face


def test_configure_loads_the_model_and_creates_publishers_but_does_not_subscribe(system, setup):
    node, listener, client, _ = system
    assert client.state() == ('unconfigured', 1)
    assert not node.host.loaded
    assert client.change('configure')
    assert client.state() == ('inactive', 2)
    assert node.host.loaded and node.host.pipeline.model is not None
    assert node.host.model_stats.runs == 0  # the warm-up run is not a served frame
    # the outputs are announced on the graph, the input is not
    assert listener.wait_for(lambda: listener.node.count_publishers(setup.out) == 1, timeout=30)
    assert subscribed(listener, setup) == 0
    assert node.get_subscriptions_info_by_topic(setup.cam) == []
    assert runner_threads() == []


def test_activate_serves_and_deactivate_stops_intake_keeping_the_same_model(system, setup):
    node, listener, client, camera = system
    assert client.change('configure') and client.change('activate')
    assert client.state() == ('active', 3)
    pipeline, model = node.host.pipeline, node.host.pipeline.model
    assert camera.feed_until(lambda: len(listener.received(setup.out)) >= 2)
    assert the_face(listener.received(setup.out)[-1])['class_name'] == 'face'
    assert sorted(runner_threads()) == ['infer', 'prepare']
    assert listener.wait_for(lambda: any(level_of(s) == 0 for s in setup.statuses(listener)))

    assert client.change('deactivate')
    assert client.state() == ('inactive', 2)
    assert listener.wait_for(lambda: subscribed(listener, setup) == 0, timeout=30)
    assert runner_threads() == []
    assert node.host.pipeline is pipeline and node.host.pipeline.model is model
    before, reported = len(listener.received(setup.out)), setup.last_report(listener)
    assert reported is not None
    camera.feed_for(2.0)  # frames published to an inactive node go nowhere
    assert len(listener.received(setup.out)) == before
    assert setup.last_report(listener) == reported  # and it reports nothing while inactive

    assert client.change('activate')
    assert camera.feed_until(lambda: len(listener.received(setup.out)) >= before + 2)
    assert node.host.pipeline is pipeline and node.host.pipeline.model is model  # not reloaded
    the_face(listener.received(setup.out)[-1])


def test_cleanup_releases_the_model_and_configure_loads_it_again(system, setup):
    node, listener, client, camera = system
    assert client.change('configure') and client.change('activate')
    assert camera.feed_until(lambda: len(listener.received(setup.out)) >= 1)
    model = weakref.ref(node.host.pipeline.model)
    assert client.change('deactivate') and client.change('cleanup')
    assert client.state() == ('unconfigured', 1)
    assert not node.host.loaded and runner_threads() == []
    gc.collect()
    assert model() is None  # nothing holds the model any more
    assert listener.wait_for(lambda: listener.node.count_publishers(setup.out) == 0, timeout=30)

    assert client.change('configure') and client.change('activate')
    assert node.host.loaded and node.host.pipeline.model is not None
    before = len(listener.received(setup.out))
    assert camera.feed_until(lambda: len(listener.received(setup.out)) >= before + 1)
    the_face(listener.received(setup.out)[-1])


def test_configure_time_parameters_change_only_while_unconfigured(system, setup):
    node, listener, client, _ = system
    assert client.change('configure')
    refused = set_parameter(listener, setup.name, 'input_size', '256x192')
    assert not refused.successful and 'cleanup first' in refused.reason
    assert set_parameter(listener, setup.name, 'score_threshold', 0.6).successful  # a runtime one
    assert node.host.score_threshold == pytest.approx(0.6)
    assert client.change('cleanup')
    assert set_parameter(listener, setup.name, 'input_size', '256x192').successful
    assert not set_parameter(listener, setup.name, 'input_size', '256by192').successful
    assert client.change('configure')
    assert node.host.pipeline.preprocessor.target_size((640, 480)) == (256, 192)


def test_shutdown_from_active_releases_everything(system, setup):
    node, listener, client, camera = system
    assert client.change('configure') and client.change('activate')
    assert camera.feed_until(lambda: len(listener.received(setup.out)) >= 1)
    assert client.change('shutdown')
    assert client.state() == ('finalized', 4)
    assert not node.host.loaded and runner_threads() == []
    assert listener.wait_for(lambda: subscribed(listener, setup) == 0, timeout=30)


def test_an_error_in_a_transition_releases_everything_and_returns_to_unconfigured(system, setup,
                                                                                  monkeypatch):
    node, listener, client, camera = system
    assert client.change('configure')

    def broken_start():
        raise RuntimeError('a bug in start')
    monkeypatch.setattr(node.host, 'start', broken_start)
    assert not client.change('activate')
    assert client.state() == ('unconfigured', 1)  # on_error released it all
    assert not node.host.loaded and runner_threads() == []
    monkeypatch.undo()
    assert client.change('configure') and client.change('activate')
    assert camera.feed_until(lambda: len(listener.received(setup.out)) >= 1)


def test_executable_configure_failure_is_one_line_and_a_fixed_model_then_serves(tmp_path, setup):
    """
    The console executable, with a missing model file and then the file.

    A missing model file fails configure with one log line and leaves the node unconfigured;
    pointing it at the file makes configure succeed.
    """
    model_file = tmp_path / 'face.onnx'
    listener = Listener('lifecycle_exe_listener')
    node = None
    try:
        listener.subscribe(String, setup.out)
        node = RosProcess('infer_lifecycle_node', {
            'inputs': [setup.cam], 'model': str(model_file), 'decoder': 'centerface',
            'class_names': ['face'], 'input_size': '320x256', 'detections_format': 'json'},
            log_path=str(tmp_path / 'node.log'), node_name=setup.name)
        client = LifecycleClient(listener.node, setup.name)
        assert client.state() == ('unconfigured', 1), node.output()
        assert not client.change('configure')
        assert client.state() == ('unconfigured', 1)
        failures = [line for line in node.output().splitlines() if 'configure failed' in line]
        assert failures == [line for line in failures if '[ERROR]' in line]
        assert len(failures) == 1 and f'model file not found: {model_file}' in failures[0]
        assert 'Traceback' not in node.output()

        shutil.copy(resolve_model('centerface').path, model_file)
        assert client.change('configure'), node.output()  # the same path, now present
        assert client.change('activate')
        camera = Camera(listener, setup.cam)
        assert camera.feed_until(lambda: len(listener.received(setup.out)) >= 1), node.output()
        the_face(listener.received(setup.out)[-1])
        log = node.output()
        assert log.count(']: configured: ') == 1 and 'activated: subscribed to' in log
        client.close()
    finally:
        listener.close()
        code = node.stop() if node is not None else 0
    assert code == 0, node.output()


def test_model_parameter_can_be_corrected_after_a_failed_configure(tmp_path, setup):
    listener = Listener('lifecycle_param_listener')
    node = None
    try:
        node = RosProcess('infer_lifecycle_node',
                          {'inputs': [setup.cam], 'model': 'no_such_model'},
                          log_path=str(tmp_path / 'node.log'), node_name=setup.name)
        client = LifecycleClient(listener.node, setup.name)
        assert not client.change('configure')
        assert "configure failed: unknown model name 'no_such_model'" in node.output()
        assert set_parameter(listener, setup.name, 'model', 'centerface').successful
        assert client.change('configure'), node.output()
        assert client.state() == ('inactive', 2)
        client.close()
    finally:
        listener.close()
        code = node.stop() if node is not None else 0
    assert code == 0, node.output()


def lifecycle_ctl(*args):
    return subprocess.run([sys.executable, '-m', 'hobot_npu_infer.tools.lifecycle_ctl', *args],
                          capture_output=True, text=True, timeout=180, env=child_environment(),
                          check=False)


UNKNOWN = 'Unknown transition requested, available ones are:\n'
FROM_UNCONFIGURED = '- configure [1]\n- shutdown [5]\n'


def test_lifecycle_ctl_prints_as_ros2_lifecycle_does(tmp_path, setup):
    """
    A session of lifecycle_ctl against the executable: what it prints, where, and exit codes.

    Each expected (exit code, stdout, stderr) is what ros2cli's ros2lifecycle verbs (Jazzy)
    print in that case: verb/get.py, set.py, list.py, nodes.py; a string a verb returns goes
    to stderr with exit 1 (sys.exit), and set exits 0 after `Transitioning failed`.
    """
    model_file = tmp_path / 'face.onnx'  # missing at first: configure fails
    node = RosProcess('infer_lifecycle_node', {
        'inputs': [setup.cam], 'model': str(model_file), 'decoder': 'centerface',
        'class_names': ['face'], 'input_size': '320x256', 'detections_format': 'json'},
        log_path=str(tmp_path / 'node.log'), node_name=setup.name)
    name = f'/{setup.name}'
    session = [
        (['get', name], 0, 'unconfigured [1]\n', ''),
        (['list', name], 0, '- configure [1]\n\tStart: unconfigured\n\tGoal: configuring\n'
                            '- shutdown [5]\n\tStart: unconfigured\n\tGoal: shuttingdown\n', ''),
        (['set', name, 'configure'], 0, '', 'Transitioning failed\n'),  # no model file
        (['get', name], 0, 'unconfigured [1]\n', ''),
        ('copy the model file', None, None, None),
        (['set', name, 'configure'], 0, 'Transitioning successful\n', ''),
        (['get', name], 0, 'inactive [2]\n', ''),
        (['set', name, 'configure'], 1, '',
         UNKNOWN + '- cleanup [2]\n- activate [3]\n- shutdown [6]\n'),
        (['set', name, 'activate'], 0, 'Transitioning successful\n', ''),
        (['get', name], 0, 'active [3]\n', ''),
        (['set', name, 'deactivate'], 0, 'Transitioning successful\n', ''),
        (['set', name, 'cleanup'], 0, 'Transitioning successful\n', ''),
        (['set', name, 'cleanup'], 1, '', UNKNOWN + FROM_UNCONFIGURED),  # the second cleanup
        (['set', name, 'noop'], 1, '', UNKNOWN + FROM_UNCONFIGURED),
        # every lifecycle node: this process's finished ones too (an rclpy LifecycleNode stays
        # on the graph until its process ends), which `get` alone would ask and wait for
        (['nodes'], 0, None, ''),
        (['set', setup.name, '5'], 0, 'Transitioning successful\n', ''),  # an id, no '/'
        (['get', name], 0, 'finalized [4]\n', ''),
        (['set', name, 'shutdown'], 1, '', UNKNOWN),  # finalized: nothing is available
        (['get', '/no_such_node', '--spin-time', '1'], 1, '', 'Node not found\n'),
        (['set', '/no_such_node', 'configure', '--spin-time', '1'], 1, '', 'Node not found\n'),
        # lifecycle_ctl's own --timeout (ros2 lifecycle has none): one error line, exit 2
        (['get', '/no_such_node', '--timeout', '1'], 2, '',
         'error: no lifecycle node /no_such_node (no /no_such_node/get_state service within '
         '1 s)\n'),
    ]
    try:
        for args, code, out, err in session:
            if isinstance(args, str):
                shutil.copy(resolve_model('centerface').path, model_file)
                continue
            if args[0] != 'nodes' and '--spin-time' not in args and '--timeout' not in args:
                # the node is there: wait as long as a busy machine needs to start and find it
                # (found sooner, the verb goes on at once)
                args = [*args, '--spin-time', '60']
            done = lifecycle_ctl(*args)
            what = f'lifecycle_ctl {" ".join(args)}: {done}\n{node.output()}'
            assert (done.returncode, done.stderr) == (code, err), what
            if args[0] == 'nodes':
                assert name in done.stdout.splitlines(), what
            else:
                assert done.stdout == out, what
    finally:
        assert node.stop() == 0, node.output()
