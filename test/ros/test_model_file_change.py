"""
The model file under a running infer_node, across real processes and real DDS.

Overwritten, the model status turns WARN naming the change while the loaded model goes on
serving; deleted, it is gone; back as loaded, OK again. With ``reload_on_change``, a file that
does not load is reported and the loaded model serves on, and a valid new model is loaded,
warmed up and swapped in while detections keep flowing.
"""

from contextlib import contextmanager
import json
import shutil

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.ros.diagnostics import level_of
import onnx
from ros_harness import Listener, newest_status, RosProcess
from std_msgs.msg import String

OK, WARN = 0, 1
GARBAGE = b'not a model at all\n' * 64


@contextmanager
def serving(tmp_path, name, **params):
    """Yield (listener, model file, node): infer_node on a copy of CenterFace, fed a camera."""
    model_file = tmp_path / 'face.onnx'
    shutil.copy(resolve_model('centerface').path, model_file)
    camera_topic = f'/{name}/image_raw'
    listener = Listener(f'{name}_listener')
    node = camera = None
    try:
        listener.subscribe(String, f'{camera_topic}/detections')
        listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
        node = RosProcess('infer_node', {
            'inputs': [camera_topic], 'model': str(model_file), 'decoder': 'centerface',
            'class_names': ['face'], 'input_size': '320x256', 'detections_format': 'json',
            'model_check_period_s': 0.2, 'diagnostics_period_s': 0.5, **params},
            log_path=str(tmp_path / 'node.log'), node_name=name)
        camera = RosProcess('image_source', {'topics': [camera_topic], 'rate_hz': 8.0},
                            log_path=str(tmp_path / 'camera.log'))
        listener.name = name
        listener.out = f'{camera_topic}/detections'
        assert keeps_detecting(listener), node.output()
        yield listener, model_file, node
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0, 0]


def keeps_detecting(listener, more=5):
    """Wait for ``more`` detections messages after those received; the last finds the face."""
    count = len(listener.received(listener.out))
    if not listener.wait_for(lambda: len(listener.received(listener.out)) >= count + more):
        return False
    detections = json.loads(listener.received(listener.out)[-1].data)['detections']
    return [d['class_name'] for d in detections] == ['face']


def model_status_until(listener, predicate):
    """Wait until the node's newest model status satisfies ``predicate(status, values)``."""
    def holds():
        status = newest_status(listener, f'{listener.name}: model ')
        return status is not None and predicate(
            status, {kv.key: kv.value for kv in status.values})
    return listener.wait_for(holds)


def another_valid_model(path):
    """Write CenterFace with another doc string: other bytes, the same model."""
    model = onnx.load(resolve_model('centerface').path)
    model.doc_string = 'retrained (test)'
    onnx.save(model, str(path))


def test_a_changed_model_file_is_reported_and_the_loaded_model_serves_on(tmp_path):
    with serving(tmp_path, 'file_change') as (listener, model_file, node):
        assert model_status_until(listener, lambda s, v: level_of(s) == OK and
                                  v['model_file_state'] == 'unchanged')
        model_file.write_bytes(GARBAGE)
        assert model_status_until(listener, lambda s, v: level_of(s) == WARN and (
            f'model file {model_file} changed on disk since it was loaded (size ') in s.message
            and f' -> {len(GARBAGE)}, mtime ' in s.message and
            'serving the loaded model' in s.message and v['model_file_state'] == 'changed'
            and v['model_file_present'] == 'true' and v['model_reloads_on_change'] == '0'), \
            node.output()
        assert keeps_detecting(listener)

        model_file.unlink()
        assert model_status_until(listener, lambda s, v: level_of(s) == WARN and
                                  'is gone' in s.message and v['model_file_state'] == 'gone' and
                                  v['model_file_present'] == 'false')
        assert keeps_detecting(listener)

        shutil.copy(resolve_model('centerface').path, model_file)  # back as loaded
        assert model_status_until(listener, lambda s, v: level_of(s) == OK and
                                  v['model_file_state'] == 'unchanged')
    log = (tmp_path / 'node.log').read_text()
    assert 'changed on disk since it was loaded' in log and 'is back as it was loaded' in log


def test_reload_on_change_keeps_a_file_that_does_not_load_out_and_swaps_a_valid_one_in(
        tmp_path):
    with serving(tmp_path, 'file_reload', reload_on_change=True) as (listener, model_file, node):
        model_file.write_bytes(GARBAGE)
        assert model_status_until(listener, lambda s, v: level_of(s) == WARN and
                                  s.message.startswith('model file changed but the new one does '
                                                       'not load: ') and
                                  'serving the loaded model' in s.message and
                                  v['model_reload_failures'] == '1' and
                                  v['model_reloads_on_change'] == '0'), node.output()
        assert keeps_detecting(listener)

        another_valid_model(model_file)
        assert model_status_until(listener, lambda s, v: level_of(s) == OK and
                                  v['model_reloads_on_change'] == '1' and
                                  v['model_file_state'] == 'unchanged' and
                                  v['model_reload_failures'] == '1'), node.output()
        assert keeps_detecting(listener)
    log = (tmp_path / 'node.log').read_text()
    assert 'the new model loaded and warmed up' in log
    assert 'Traceback' not in log and 'internal error' not in log
