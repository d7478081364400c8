"""
A runtime set of a parameter the node does not have is refused, naming it.

Called over real DDS as ``ros2 param set`` calls it (one parameter per SetParameters request),
and as ``ros2 param load`` with an atomic set. rclpy's own refusal named nothing (``Invalid
access to undeclared parameter(s): []``); the infer nodes take undeclared names into their
on-set check, which refuses each naming it (a head's parameter names the heads there are), so
nothing undeclared is ever stored, and ``-p`` of an unknown name at start-up declares nothing.
"""

import pytest
from rcl_interfaces.srv import GetParameters, ListParameters, SetParametersAtomically
from rclpy.parameter import Parameter, parameter_value_to_python
from ros_harness import (
    call, LifecycleClient, Listener, RosProcess, set_parameter, stop_all,
)

CAM = '/param_errors/image_raw'
HEADS = {  # CenterFace split in two heads, as in test_multi_head_node.py
    'inputs': [CAM], 'input_size': '320x256', 'detections_format': 'json',
    'head_names': ['faces', 'landmarks'], 'heads.faces.outputs': ['537', '538', '539'],
    'heads.faces.decoder': 'centerface', 'heads.landmarks.outputs': ['540'],
}
PLAIN = {'inputs': [CAM], 'input_size': '320x256', 'detections_format': 'json',
         'unknown_at_start_up': 1}  # -p of a name the node does not have
MULTI, SINGLE, MANAGED = 'param_errors_heads', 'param_errors_plain', 'param_errors_managed'
CAMERA = 'param_errors_camera'


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    logs = tmp_path_factory.mktemp('param_errors')
    listener = Listener('param_errors_listener')
    processes = {}
    try:
        processes[MULTI] = RosProcess('infer_node', HEADS, node_name=MULTI,
                                      log_path=str(logs / 'heads.log'))
        processes[SINGLE] = RosProcess('infer_node', PLAIN, node_name=SINGLE,
                                       log_path=str(logs / 'plain.log'))
        processes[MANAGED] = RosProcess('infer_lifecycle_node', HEADS, node_name=MANAGED,
                                        log_path=str(logs / 'managed.log'))
        processes[CAMERA] = RosProcess('image_source', {'topics': [CAM], 'rate_hz': 2.0},
                                       node_name=CAMERA, log_path=str(logs / 'camera.log'))
        yield listener, processes
    finally:
        listener.close()
        stop_all(processes)


def get(listener, node_name, name):
    [value] = call(listener, GetParameters, f'/{node_name}/get_parameters',
                   GetParameters.Request(names=[name])).values
    return Parameter.Type(value.type), parameter_value_to_python(value)


def names(listener, node_name):
    return set(call(listener, ListParameters, f'/{node_name}/list_parameters',
                    ListParameters.Request()).result.names)


def refused(listener, node_name, name, value):
    """Set ``name`` as ``ros2 param set`` does; the reason it was refused."""
    result = set_parameter(listener, node_name, name, value)
    assert not result.successful, f'{name} was set'
    return result.reason


def test_an_unknown_head_names_the_heads_there_are(system):
    listener, _ = system
    assert refused(listener, MULTI, 'heads.unknown.rate_hz', 5.0) == \
        "heads.unknown.rate_hz: no head named 'unknown'; heads are faces, landmarks"
    assert 'heads.unknown.rate_hz' not in names(listener, MULTI)


def test_a_node_without_heads_says_so(system):
    listener, _ = system
    assert refused(listener, SINGLE, 'heads.x.rate_hz', 5.0) == \
        "heads.x.rate_hz: no head named 'x'; this node has no heads (head_names is empty)"


def test_an_unknown_name_is_refused_naming_it_and_nothing_is_stored(system):
    listener, _ = system
    assert refused(listener, SINGLE, 'no_such_param', 1) == \
        f'no_such_param: no such parameter of {SINGLE}'
    assert refused(listener, SINGLE, 'score_treshold', 0.5) == \
        f'score_treshold: no such parameter of {SINGLE}; did you mean score_threshold?'
    # a head's field no head has: the closest declared name
    assert refused(listener, MULTI, 'heads.faces.rate', 5.0) == \
        f'heads.faces.rate: no such parameter of {MULTI}; did you mean heads.faces.rate_hz?'
    declared = names(listener, SINGLE)
    assert 'score_threshold' in declared
    assert not {'no_such_param', 'score_treshold', 'heads.x.rate_hz'} & declared


def test_an_unknown_name_at_start_up_is_not_declared(system):
    listener, _ = system
    assert 'unknown_at_start_up' not in names(listener, SINGLE)
    assert get(listener, SINGLE, 'unknown_at_start_up') == (Parameter.Type.NOT_SET, None)
    assert refused(listener, SINGLE, 'unknown_at_start_up', 2).startswith(
        'unknown_at_start_up: no such parameter')


def test_an_atomic_set_with_an_unknown_name_changes_nothing(system):
    listener, _ = system
    assert set_parameter(listener, SINGLE, 'score_threshold', 0.4).successful
    request = SetParametersAtomically.Request(parameters=[
        Parameter('score_threshold', value=0.6).to_parameter_msg(),
        Parameter('junk', value=1).to_parameter_msg()])
    result = call(listener, SetParametersAtomically, f'/{SINGLE}/set_parameters_atomically',
                  request).result
    assert not result.successful and result.reason == f'junk: no such parameter of {SINGLE}'
    assert get(listener, SINGLE, 'score_threshold') == (Parameter.Type.DOUBLE, 0.4)


def test_a_declared_parameter_with_a_bad_value_still_names_itself(system):
    listener, _ = system
    assert refused(listener, MULTI, 'score_threshold', 2) == \
        'score_threshold=2.0 is out of range 0..1'
    assert 'heads.faces.rate_hz' in refused(listener, MULTI, 'heads.faces.rate_hz', 'fast')
    assert set_parameter(listener, MULTI, 'heads.faces.rate_hz', 4.0).successful


def test_the_managed_node_declares_a_heads_parameters_when_configured(system):
    listener, processes = system
    reason = refused(listener, MANAGED, 'heads.faces.rate_hz', 5.0)
    assert reason.startswith('heads.faces.rate_hz: the parameters of head faces are declared '
                             'when the node is configured'), reason
    assert refused(listener, MANAGED, 'heads.other.rate_hz', 5.0) == \
        "heads.other.rate_hz: no head named 'other'; heads are faces, landmarks"
    client = LifecycleClient(listener.node, MANAGED)
    try:
        assert client.change('configure'), processes[MANAGED].output()
    finally:
        client.close()
    assert set_parameter(listener, MANAGED, 'heads.faces.rate_hz', 5.0).successful
    assert get(listener, MANAGED, 'heads.faces.rate_hz') == (Parameter.Type.DOUBLE, 5.0)


def test_the_camera_node_names_an_unknown_name_too(system):
    listener, _ = system
    assert refused(listener, CAMERA, 'rate_hzz', 5.0) == (
        f'rate_hzz: no such parameter of {CAMERA}; did you mean rate_hz?')
    assert 'rate_hzz' not in names(listener, CAMERA)
