"""
Faults.

A failing backend is reloaded with back-off and the stream recovers; a model file that
disappears after start does not stop the node, and its status says so.
"""

import json
import shutil

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.streaming.reload_backoff import ReloadBackoff
from hobot_npu_infer.ros.diagnostics import level_of
from ros_harness import Listener, RosProcess
from std_msgs.msg import String
from stream_harness import check_result, FakeModel


def test_backoff_reloads_after_repeated_failures_then_doubles_its_delay():
    now = [0.0]
    backoff = ReloadBackoff(after_failures=3, first_delay_s=1.0, max_delay_s=4.0,
                            clock=lambda: now[0])
    assert [backoff.record_failure() for _ in range(3)] == [False, False, True]
    assert backoff.record_failure() is False  # within the 1 s delay
    now[0] = 1.5
    assert backoff.record_failure() is True  # next delay: 2 s
    now[0] = 3.0
    assert backoff.record_failure() is False
    now[0] = 3.6
    assert backoff.record_failure() is True
    assert backoff.delay_s == 4.0  # capped
    backoff.record_success()
    assert backoff.failures == 0 and backoff.delay_s == 1.0
    assert [backoff.record_failure() for _ in range(3)] == [False, False, True]


def test_a_failing_backend_is_reloaded_and_the_stream_recovers(make_harness):
    broken = FakeModel(fail=set(range(256)))  # every run raises
    harness = make_harness(model=broken)
    reloaded = []

    def loader():
        reloaded.append(FakeModel())
        return [reloaded[-1]]
    harness.runner.pipeline.loader = loader
    for value in (1, 2, 3):
        harness.put('a', value)
        harness.model_stats.errors.wait_count(value)
    assert len(reloaded) == 1 and harness.model_stats.reloads == 1
    assert harness.model_stats.current_error() is not None
    harness.put('a', 4)
    [result] = harness.delivered.wait_count(1)
    check_result(result)
    assert result.frame.payload.value == 4 and harness.model_stats.current_error() is None


def test_a_failed_reload_is_reported_and_retried_later(make_harness):
    harness = make_harness(model=FakeModel(fail=set(range(256))))

    def loader():
        raise FileNotFoundError('model file not found: /gone.onnx')
    harness.runner.pipeline.loader = loader
    for value in (1, 2, 3):
        harness.put('a', value)
        harness.model_stats.errors.wait_count(value + (1 if value == 3 else 0))
    messages = harness.model_stats.errors.items
    assert messages[-1].startswith('reload failed: FileNotFoundError: model file not found')
    assert harness.model_stats.reloads == 0


def test_node_keeps_serving_when_its_model_file_disappears(tmp_path):
    model_file = tmp_path / 'face.onnx'
    shutil.copy(resolve_model('centerface').path, model_file)
    listener = Listener('faults_listener')
    node = camera = None
    out = '/faults/image_raw/detections'
    try:
        listener.subscribe(String, out)
        listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
        node = RosProcess('infer_node', {'inputs': ['/faults/image_raw'], 'model': str(model_file),
                                         'decoder': 'centerface', 'class_names': ['face'],
                                         'input_size': '320x256'},
                          log_path=str(tmp_path / 'node.log'), node_name='infer_faults')
        camera = RosProcess('image_source', {'topics': ['/faults/image_raw'], 'rate_hz': 8.0},
                            log_path=str(tmp_path / 'camera.log'))
        assert listener.wait_for(lambda: len(listener.received(out)) >= 2), node.output()
        model_file.unlink()
        count = len(listener.received(out))
        assert listener.wait_for(lambda: len(listener.received(out)) >= count + 5)
        [face] = json.loads(listener.received(out)[-1].data)['detections']
        assert face['class_name'] == 'face'

        def warned():
            for array in reversed(listener.received('/diagnostics')):
                for status in array.status:
                    if status.name.startswith('infer_faults: model '):
                        return 'is gone' in status.message and level_of(status) == 1
            return False
        assert listener.wait_for(warned)
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0, 0]
