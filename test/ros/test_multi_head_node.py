"""
infer_node with a packed model.

infer_node with a packed model over real DDS: CenterFace split into a faces head and a
landmarks head, each on its own topic at its own rate, changed and disabled at runtime.
"""

import json

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import Listener, RosProcess
from std_msgs.msg import Float32MultiArray, String

CAM = '/heads/image_raw'
FACES, LANDMARKS = f'{CAM}/faces/detections', f'{CAM}/landmarks/tensor_0'


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    logs = tmp_path_factory.mktemp('heads')
    listener = Listener('heads_listener')
    listener.subscribe(String, FACES, qos=100)
    listener.subscribe(Float32MultiArray, LANDMARKS, qos=100)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
    node = RosProcess('infer_node', {
        'inputs': [CAM], 'input_size': '320x256', 'detections_format': 'json',
        'qos_reliability': ['reliable'], 'head_names': ['faces', 'landmarks'],
        'heads.faces.outputs': ['537', '538', '539'], 'heads.faces.decoder': 'centerface',
        'heads.faces.class_names': ['face'], 'heads.landmarks.outputs': ['540'],
        'heads.landmarks.every_n_frames': 4}, log_path=str(logs / 'node.log'),
        node_name='infer_heads')
    camera = RosProcess('image_source', {'topics': [CAM], 'rate_hz': 8.0,
                                         'qos_reliability': 'reliable'},
                        log_path=str(logs / 'camera.log'))
    yield listener, node
    listener.close()
    assert [p.stop() for p in (camera, node)] == [0, 0], node.output()


def set_parameter(listener, name, value):
    client = listener.node.create_client(SetParameters, '/infer_heads/set_parameters')
    assert client.wait_for_service(timeout_sec=30)
    if isinstance(value, bool):
        param = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    else:
        param = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name=name,
                                                                           value=param)]))
    assert listener.wait_for(future.done, timeout=30)
    listener.node.destroy_client(client)
    return future.result().results[0]


def head_values(listener, head):
    for array in reversed(listener.received('/diagnostics')):
        for status in array.status:
            if status.name == f'infer_heads: head {head} on {CAM}':
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_each_head_publishes_on_its_own_topic_at_its_own_rate(system):
    listener, node = system
    assert listener.wait_for(lambda: len(listener.received(FACES)) >= 13), node.output()
    faces, landmarks = len(listener.received(FACES)), len(listener.received(LANDMARKS))
    assert 2 <= landmarks <= faces // 4 + 2  # every fourth frame
    [face] = json.loads(listener.received(FACES)[-1].data)['detections']
    assert face['class_name'] == 'face' and face['keypoints'] == []  # landmarks: other head
    tensor = listener.received(LANDMARKS)[-1]
    assert [d.size for d in tensor.layout.dim] == [1, 10, 64, 80]
    assert len(tensor.data) == 10 * 64 * 80
    assert listener.wait_for(lambda: int(head_values(listener, 'landmarks').get('runs', 0)) > 0)
    values = head_values(listener, 'landmarks')
    assert int(values['skipped_frames']) >= 2 * int(values['runs']) - 3
    assert float(values['inference.p50_ms']) > 0 and values['enabled'] == 'true'


def test_runtime_rate_change_and_disabling_a_head(system):
    listener, _ = system
    rejected = set_parameter(listener, 'heads.landmarks.every_n_frames', -1)
    assert not rejected.successful
    assert set_parameter(listener, 'heads.landmarks.every_n_frames', 1).successful
    faces, landmarks = len(listener.received(FACES)), len(listener.received(LANDMARKS))
    assert listener.wait_for(lambda: len(listener.received(FACES)) >= faces + 6)
    assert len(listener.received(LANDMARKS)) >= landmarks + 4  # now on every frame

    assert set_parameter(listener, 'heads.landmarks.enabled', False).successful
    listener.wait_for(lambda: False, timeout=1.0)  # let frames in flight land
    landmarks = len(listener.received(LANDMARKS))
    faces = len(listener.received(FACES))
    assert listener.wait_for(lambda: len(listener.received(FACES)) >= faces + 6)
    assert len(listener.received(LANDMARKS)) == landmarks  # a disabled head never runs
    assert listener.wait_for(lambda: head_values(listener, 'landmarks').get('enabled') ==
                             'false')
