"""
Node start-up and stop.

Nodes refuse bad parameters at start-up with one line, and every executable stops cleanly on
SIGINT and SIGTERM.
"""

import json
import os
import signal

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from hobot_npu_infer.ros.node_main import EXIT_REPORT
from hobot_npu_infer.ros.qos import image_qos
import pytest
from ros_harness import Listener, RosProcess, run_to_end, start_infer
from sensor_msgs.msg import Image
from std_msgs.msg import String

SHM = '/dev/shm'


@pytest.mark.parametrize('module, params, words', [
    ('infer_node', {'score_threshold': 1.5}, ['score_threshold', 'range']),
    ('infer_node', {'threads': 'many'}, ['threads', 'INTEGER']),
    ('infer_node', {'qos_reliability': ['sometimes']}, ['qos_reliability', 'sometimes']),
    ('infer_node', {'inputs': ['/a', '/b'], 'qos_depth': [1, 2, 3]}, ['qos_depth', '3 values']),
    ('infer_node', {'input_size': '640by480'}, ['input_size', '640x480']),
    ('infer_node', {'model': 'no_such_model'}, ['no_such_model']),
    ('infer_node', {'backend': 'tpu'}, ['backend', 'onnxruntime']),
    ('infer_node', {'detections_format': 'xml'}, ['detections_format']),
    ('infer_node', {'inputs': ['/a', '/a']}, ['listed twice']),
    ('infer_node', {'hbmem_inputs': ['/hbmem_img']}, ['hbmem_inputs', 'hbm_img_msgs']),
    ('infer_node', {'hbmem_message': 'HbmMsg4K'}, ['hbmem_message', 'HbmMsg1080P']),
    ('infer_node', {'detections_format': 'perception_targets'}, ['perception_targets',
                                                                 'ai_msgs']),
    ('infer_node', {'inputs': [], 'compressed_inputs': []}, ['hbmem_inputs', 'all empty']),
    ('infer_node', {'max_batch_size': 100}, ['max_batch_size', 'range']),
    ('infer_node', {'num_runtimes': 17}, ['num_runtimes', 'range']),
    ('infer_node', {'crop_output': 'mask'}, ['crop_output', 'class, embedding']),
    ('infer_node', {'crop_model': '/no/such/crop.onnx'}, ['/no/such/crop.onnx', 'not found']),
    ('infer_node', {'crop_std': [1.0, 0.0, 1.0]}, ['crop_std']),
    ('infer_lifecycle_node', {'score_threshold': 1.5}, ['score_threshold', 'range']),
    ('infer_lifecycle_node', {'qos_reliability': ['sometimes']}, ['qos_reliability']),
    ('image_source', {'images': ['no_such_photo']}, ['no_such_photo']),
    ('image_source', {'encoding': '16UC1'}, ['encoding']),
    ('image_source', {'rate_hz': 0.0}, ['rate_hz']),
])
def test_bad_parameters_give_one_line_and_exit_2(module, params, words):
    proc = run_to_end(module, **params)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, proc.stderr
    for word in words:
        assert word in errors[0]


STOP_CAM = '/stop_test/image_raw'
SIGNALS = {'SIGINT': signal.SIGINT, 'SIGTERM': signal.SIGTERM}


class Started:
    """The processes of one shutdown test, each reporting its live threads when it ends."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.processes = {}

    def env(self, name):
        return {EXIT_REPORT: str(self.tmp_path / f'{name}.exit.json')}

    def add(self, name, process):
        self.processes[name] = process
        return process

    def start(self, name, module, params=None, args=None):
        return self.add(name, RosProcess(module, params, args=args, env=self.env(name),
                                         log_path=str(self.tmp_path / f'{name}.log')))

    def threads_at_exit(self, name):
        with open(self.tmp_path / f'{name}.exit.json') as f:
            return json.load(f)['threads']


def busy_infer(executable):
    """
    Start an infer node under test, fed by image_source.

    It is busy once detections flow (so the inference threads are running at the signal).
    """
    def scenario(started, listener):
        listener.subscribe(String, f'{STOP_CAM}/detections')
        started.add(executable, start_infer(
            executable, {'inputs': [STOP_CAM], 'input_size': '320x256'}, listener,
            str(started.tmp_path / f'{executable}.log'), env=started.env(executable)))
        started.start('camera', 'image_source', {'topics': [STOP_CAM], 'rate_hz': 20.0})
        return lambda: len(listener.received(f'{STOP_CAM}/detections')) >= 2
    return scenario


def busy_camera(started, listener):
    listener.subscribe(Image, STOP_CAM, qos=image_qos())
    started.start('image_source', 'image_source', {'topics': [STOP_CAM], 'rate_hz': 20.0})
    return lambda: len(listener.received(STOP_CAM)) >= 2


def busy_monitor(started, listener):
    publisher = listener.publisher(DiagnosticArray, '/diagnostics')
    monitor = started.start('diag_monitor', 'diag_monitor', args=['--period', '0.2'])
    status = DiagnosticStatus(name=f'stop_test: input {STOP_CAM}', message='ok',
                              values=[KeyValue(key='frames_in', value='1')])

    def busy():
        publisher.publish(DiagnosticArray(status=[status]))
        return monitor.output().count(STOP_CAM) >= 2  # drawn twice: it took them in
    return busy


SCENARIOS = {'infer_node': busy_infer('infer_node'),
             'infer_lifecycle_node': busy_infer('infer_lifecycle_node'),
             'image_source': busy_camera, 'diag_monitor': busy_monitor}


@pytest.mark.parametrize('sig', SIGNALS)
@pytest.mark.parametrize('executable', SCENARIOS)
def test_every_node_stops_cleanly_on_signals(tmp_path, executable, sig):
    """
    Stop while busy, cleanly.

    Stopped while busy: exit 0 (no abort), no traceback, no thread left but the main one,
    and the Fast DDS shared-memory files the processes created are gone.
    """
    shm_before = set(os.listdir(SHM))
    started = Started(tmp_path)
    listener = Listener('startup_listener')
    try:
        busy = SCENARIOS[executable](started, listener)
        assert listener.wait_for(busy), '\n'.join(p.output()
                                                  for p in started.processes.values())
        segments = set().union(*(own_shm_segments(p.proc.pid)
                                 for p in started.processes.values()))
        assert segments  # the processes did map shared memory
        # the node under test first (it was added first), while the others still talk to it
        codes = {name: p.stop(SIGNALS[sig]) for name, p in started.processes.items()}
    finally:
        listener.close()
        for process in started.processes.values():
            process.stop()
    for name, process in started.processes.items():
        log = process.output()
        assert codes[name] == 0, f'{name}: exit {codes[name]}\n{log}'
        for bad in ('Traceback', 'terminate called', 'internal error'):
            assert bad not in log, f'{name}\n{log}'
        assert started.threads_at_exit(name) == ['MainThread'], name
    # what the ended processes created is removed; this test process maps the segments of its
    # own participants too, which live as long as it does
    ours = own_shm_segments(os.getpid())
    created = {path for path in segments if os.path.basename(path) not in shm_before} - ours
    left = [name for name in os.listdir(SHM) if any(
        name.startswith(os.path.basename(path)) or name == f'sem.{os.path.basename(path)}_mutex'
        for path in created)]
    assert left == []


def own_shm_segments(pid):
    """
    Return the Fast DDS shared-memory segments (and data-sharing pools) a process has mapped.

    Those exclude the per-port ones that every participant on the machine shares.
    """
    with open(f'/proc/{pid}/maps') as f:
        paths = {line.split()[-1] for line in f
                 if f'{SHM}/fastrtps_' in line or f'{SHM}/fast_datasharing' in line}
    return {p for p in paths if not os.path.basename(p).startswith('fastrtps_port')}


def test_infer_node_stopped_again_and_again_never_crashes(tmp_path):
    """
    Six busy stops in a row, both signals.

    Every one exits 0. (rclpy's own signal thread
    was seen to crash stops under load, SIGSEGV in rcl_trigger_guard_condition; stops are now
    a flag the spin loop reads, see ros/stop_signals.py.)
    """
    listener = Listener('repeat_listener')
    camera = RosProcess('image_source', {'topics': [STOP_CAM], 'rate_hz': 20.0},
                        log_path=str(tmp_path / 'camera.log'))
    codes, logs = [], []
    try:
        listener.subscribe(String, f'{STOP_CAM}/detections')
        for i in range(6):
            seen = len(listener.received(f'{STOP_CAM}/detections'))
            node = start_infer('infer_node', {'inputs': [STOP_CAM], 'input_size': '320x256'},
                               listener, str(tmp_path / f'node{i}.log'))
            try:
                assert listener.wait_for(
                    lambda: len(listener.received(f'{STOP_CAM}/detections')) >= seen + 2), \
                    node.output()
            finally:
                codes.append(node.stop(list(SIGNALS.values())[i % 2]))
                logs.append(node.output())
    finally:
        listener.close()
        camera.stop()
    assert codes == [0] * 6, '\n'.join(logs)


class FakeLibc:
    """Stands in for glibc: records mallopt calls."""

    def __init__(self, _name):
        self.calls = []
        FakeLibc.made = self

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


def test_nodes_keep_glibc_to_two_malloc_arenas_unless_the_environment_says(monkeypatch):
    from hobot_npu_infer.ros import node_main
    monkeypatch.setattr(node_main.ctypes, 'CDLL', FakeLibc)
    monkeypatch.delenv('MALLOC_ARENA_MAX', raising=False)
    node_main.limit_malloc_arenas()
    assert FakeLibc.made.calls == [(node_main.M_ARENA_MAX, 2)]
    FakeLibc.made = None
    monkeypatch.setenv('MALLOC_ARENA_MAX', '8')
    node_main.limit_malloc_arenas()
    assert FakeLibc.made is None  # the user's setting, applied by glibc itself
