"""Nodes refuse bad parameters at start-up with one line, and stop cleanly on SIGINT/SIGTERM."""

import os
import signal
import subprocess
import sys

import pytest

from ros_harness import Listener, RosProcess, child_environment, ros_value

from std_msgs.msg import String


def start(module, **params):
    cmd = [sys.executable, '-m', f'hobot_npu_infer.ros.{module}', '--ros-args']
    for name, value in params.items():
        cmd += ['-p', f'{name}:={ros_value(value)}']
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=child_environment())


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
    ('infer_node', {'max_batch_size': 100}, ['max_batch_size', 'range']),
    ('infer_node', {'num_runtimes': 0}, ['num_runtimes', 'range']),
    ('infer_node', {'crop_output': 'mask'}, ['crop_output', 'class, embedding']),
    ('infer_node', {'crop_model': '/no/such/crop.onnx'}, ['/no/such/crop.onnx', 'not found']),
    ('infer_node', {'crop_std': [1.0, 0.0, 1.0]}, ['crop_std']),
    ('image_source', {'images': ['no_such_photo']}, ['no_such_photo']),
    ('image_source', {'encoding': '16UC1'}, ['encoding']),
    ('image_source', {'rate_hz': 0.0}, ['rate_hz']),
])
def test_bad_parameters_give_one_line_and_exit_2(module, params, words):
    proc = start(module, **params)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, proc.stderr
    for word in words:
        assert word in errors[0]


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_nodes_stop_cleanly_on_signals(tmp_path, sig):
    listener = Listener('startup_listener')
    try:
        listener.subscribe(String, '/stop_test/image_raw/detections')
        node = RosProcess('infer_node', {'inputs': ['/stop_test/image_raw'],
                                         'input_size': '320x256'},
                          log_path=str(tmp_path / 'node.log'))
        source = RosProcess('image_source', {'topics': ['/stop_test/image_raw'],
                                             'rate_hz': 20.0},
                            log_path=str(tmp_path / 'source.log'))
        # stop while frames flow, so inference threads are busy at the signal
        assert listener.wait_for(lambda: len(listener.received(
            '/stop_test/image_raw/detections')) >= 2), node.output()
        segments = own_shm_segments(node.proc.pid) | own_shm_segments(source.proc.pid)
        assert segments  # frames did travel through shared memory
        assert node.stop(sig) == 0, node.output()
        assert source.stop(sig) == 0, source.output()
        for log in (node.output(), source.output()):
            assert 'Traceback' not in log and 'terminate called' not in log
            assert 'internal error' not in log
    finally:
        listener.close()
    # each process's own Fast DDS segment is removed when it ends (this test process maps the
    # segments of its own participants too, which live as long as it does)
    ours = own_shm_segments(os.getpid())
    assert [path for path in segments if os.path.exists(path) and path not in ours] == []


def own_shm_segments(pid):
    """The Fast DDS shared-memory segments a process has mapped, except the per-port ones that
    every participant on the machine shares."""
    with open(f'/proc/{pid}/maps') as f:
        paths = {line.split()[-1] for line in f if '/dev/shm/fastrtps_' in line}
    return {p for p in paths if not os.path.basename(p).startswith('fastrtps_port')}
