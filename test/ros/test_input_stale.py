"""
A camera that goes away.

A camera that goes away: its input's /diagnostics status turns STALE (level 3) once nothing
arrived for stale_timeout_s, and the infer node keeps running. Over real DDS, for both
executables.
"""

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.telemetry.health_reports import Level
from hobot_npu_infer.ros.diagnostics import level_of
import pytest
from ros_harness import INFER_EXECUTABLES, Listener, newest_status, RosProcess, start_infer
from std_msgs.msg import String


@pytest.mark.parametrize('executable', INFER_EXECUTABLES)
def test_input_turns_stale_when_its_publisher_node_is_destroyed(tmp_path, executable):
    name = f'stale_{executable}'
    cam = f'/{name}/image_raw'
    status_name = f'{name}: input {cam}'
    listener = Listener('stale_listener')
    node = camera = None
    try:
        listener.subscribe(String, f'{cam}/detections')
        listener.subscribe(DiagnosticArray, '/diagnostics', keep=20)
        node = start_infer(executable, {
            'inputs': [cam], 'input_size': '320x256', 'detections_format': 'json',
            'stale_timeout_s': 1.0, 'diagnostics_period_s': 0.2}, listener,
            str(tmp_path / 'node.log'), node_name=name)
        camera = RosProcess('image_source', {'topics': [cam], 'rate_hz': 10.0},
                            log_path=str(tmp_path / 'camera.log'))

        def level():
            status = newest_status(listener, status_name)
            return None if status is None else level_of(status)
        assert listener.wait_for(lambda: len(listener.received(f'{cam}/detections')) >= 2
                                 and level() == Level.OK), node.output()
        assert camera.stop() == 0  # its node is destroyed, its publisher leaves the graph
        assert listener.wait_for(lambda: level() == Level.STALE), node.output()
        status = newest_status(listener, status_name)
        assert status.message.startswith('no input for'), status.message
        values = {kv.key: kv.value for kv in status.values}
        assert int(values['frames_in']) >= int(values['frames_out']) >= 2
        assert node.running()
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0] * len(codes), node.output() if node else ''
