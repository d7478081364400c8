"""
The parameter services of the running nodes, called as the ros2 CLI calls them.

``ros2 param dump`` lists the parameters (ListParameters) and gets them all in one GetParameters
request, which answers nothing at all if a single parameter has no value: every parameter of
infer_node, infer_lifecycle_node (before and after configure, with a packed model's head
parameters) and image_source must have a value of its declared type. ``ros2 param set`` sends
one parameter per SetParameters request, typed as typed: an integer for a double parameter (and
a whole double for an integer one) is taken and held as the declared type, at runtime and from
``-p`` or a parameters file at start-up.
"""

import array

import pytest
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from ros_harness import (
    call, LifecycleClient, Listener, RosProcess, set_parameter, stop_all,
)
import yaml

CAM = '/param_services/image_raw'
HEADS = {  # CenterFace split in two heads (test_multi_head_node.py), numbers typed loosely
    'inputs': [CAM], 'input_size': '320x256', 'detections_format': 'json',
    'head_names': ['faces', 'landmarks'], 'heads.faces.outputs': ['537', '538', '539'],
    'heads.faces.decoder': 'centerface', 'heads.landmarks.outputs': ['540'],
    'heads.faces.rate_hz': 3,  # an integer for a double
    'heads.landmarks.every_n_frames': 4.0,  # a whole double for an integer
    'stale_timeout_s': 5,  # an integer for a double
    'crop_class_names': [],  # -p name:=[] carries no type
}
INFER, LIFECYCLE, CAMERA = 'param_infer', 'param_lifecycle', 'param_camera'
RCLPY_PARAMETERS = {'use_sim_time', 'start_type_description_service'}  # rclpy declares these


def dump(listener, node_name):
    """Return {name: (type, value)} of every parameter, fetched as ``ros2 param dump`` does."""
    names = list(call(listener, ListParameters, f'/{node_name}/list_parameters',
                      ListParameters.Request()).result.names)
    values = call(listener, GetParameters, f'/{node_name}/get_parameters',
                  GetParameters.Request(names=names)).values
    assert len(values) == len(names), f'{node_name}: {len(values)} values for {len(names)} names'
    return {name: (Parameter.Type(value.type), parameter_value_to_python(value))
            for name, value in zip(names, values)}


def dump_file(dumped, node_name):
    """Return the YAML ``ros2 param dump`` prints: dotted names nested, sorted, block style."""
    parameters = {}
    for name, (_, value) in sorted(dumped.items()):
        *groups, last = name.split('.')
        level = parameters
        for group in groups:
            level = level.setdefault(group, {})
        level[last] = list(value) if isinstance(value, (array.array, tuple)) else value
    return yaml.dump({f'/{node_name}': {'ros__parameters': parameters}},
                     default_flow_style=False)


def described_types(listener, node_name, names):
    response = call(listener, DescribeParameters, f'/{node_name}/describe_parameters',
                    DescribeParameters.Request(names=names))
    return {name: Parameter.Type(d.type) for name, d in zip(names, response.descriptors)}


def declared_types(executable, heads=()):
    """{name: declared type} of a node's parameters, with the head parameters of ``heads``."""
    if executable == 'image_source':
        from hobot_npu_infer.ros.image_source import PARAMETERS
        specs = list(PARAMETERS)
    else:
        from hobot_npu_infer.ros.infer_parameters import head_parameters, PARAMETERS
        specs = PARAMETERS + [spec for head in heads for spec in head_parameters(head)]
    return {spec.name: spec.type for spec in specs}


def get(listener, node_name, name):
    [value] = call(listener, GetParameters, f'/{node_name}/get_parameters',
                   GetParameters.Request(names=[name])).values
    return Parameter.Type(value.type), parameter_value_to_python(value)


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    logs = tmp_path_factory.mktemp('param_services')
    params_file = logs / 'camera.yaml'
    params_file.write_text(f'/**:\n  ros__parameters:\n    topics: [{CAM}]\n    rate_hz: 5\n'
                           f'    frame_ids: []\n    qos_depth: 2.0\n')
    listener = Listener('param_services_listener')
    processes = {}
    try:
        processes[INFER] = RosProcess('infer_node', HEADS, log_path=str(logs / 'infer.log'),
                                      node_name=INFER)
        processes[LIFECYCLE] = RosProcess('infer_lifecycle_node', HEADS, node_name=LIFECYCLE,
                                          log_path=str(logs / 'lifecycle.log'))
        processes[CAMERA] = RosProcess('image_source', params_file=str(params_file),
                                       node_name=CAMERA, log_path=str(logs / 'camera.log'))
        yield listener, processes
    finally:
        listener.close()
        stop_all(processes)


def configure(listener, processes):
    """Configure and activate the lifecycle node once (its head parameters are then declared)."""
    client = LifecycleClient(listener.node, LIFECYCLE)
    try:
        if client.state()[0] == 'unconfigured':
            assert client.change('configure') and client.change('activate'), \
                processes[LIFECYCLE].output()
    finally:
        client.close()


def check_dump(listener, node_name, expected):
    """Dump the node: every parameter has a value, ours of their declared types."""
    dumped = dump(listener, node_name)
    rclpy_own = set(dumped) - set(expected)  # use_sim_time; Jazzy: start_type_description_...
    assert rclpy_own <= RCLPY_PARAMETERS and 'use_sim_time' in rclpy_own
    assert all(dumped[name][0] == Parameter.Type.BOOL for name in rclpy_own)
    wrong = {name: kind for name, kind in expected.items() if dumped[name][0] != kind}
    assert wrong == {}, f'{node_name}: not of the declared type: {wrong}'
    assert described_types(listener, node_name, sorted(expected)) == expected
    return {name: value for name, (_, value) in dumped.items()}


def test_lifecycle_node_dump_gets_every_parameter_before_configure(system):
    listener, processes = system
    client = LifecycleClient(listener.node, LIFECYCLE)
    try:
        assert client.state()[0] == 'unconfigured', processes[LIFECYCLE].output()
    finally:
        client.close()
    values = check_dump(listener, LIFECYCLE, declared_types('infer_lifecycle_node'))
    assert values['head_names'] == ['faces', 'landmarks']
    assert values['class_names'] == [] and values['crop_class_names'] == []


@pytest.mark.parametrize('node_name', [INFER, LIFECYCLE])
def test_dump_gets_every_parameter_of_an_infer_node_with_heads(system, node_name):
    listener, processes = system
    if node_name == LIFECYCLE:
        configure(listener, processes)
    values = check_dump(listener, node_name,
                        declared_types('infer_node', ('faces', 'landmarks')))
    for empty in ('backend_options', 'class_names', 'compressed_inputs', 'crop_class_names',
                  'cut_tensors', 'decoder_options', 'output_topics', 'preprocess.mean',
                  'heads.faces.class_names', 'heads.landmarks.class_names'):
        assert values[empty] == [], empty
    assert values['heads.landmarks.outputs'] == ['540']
    # given at start-up as -p heads.faces.rate_hz:=3 and every_n_frames:=4.0
    assert values['heads.faces.rate_hz'] == 3.0
    assert values['heads.landmarks.every_n_frames'] == 4
    assert values['stale_timeout_s'] == 5.0


def test_image_source_dump_gets_every_parameter_numbers_from_a_params_file(system):
    listener, _ = system
    values = check_dump(listener, CAMERA, declared_types('image_source'))
    assert values['rate_hz'] == 5.0 and values['qos_depth'] == 2  # file: 5 and 2.0
    assert values['frame_ids'] == [] and values['topics'] == [CAM]


@pytest.mark.parametrize('node_name', [INFER, LIFECYCLE])
def test_set_takes_an_integer_for_a_double_and_a_whole_double_for_an_integer(
        system, node_name):
    listener, processes = system
    if node_name == LIFECYCLE:
        configure(listener, processes)
    result = set_parameter(listener, node_name, 'heads.faces.rate_hz', 2)  # ros2 param set .. 2
    assert result.successful, result.reason
    assert get(listener, node_name, 'heads.faces.rate_hz') == (Parameter.Type.DOUBLE, 2.0)
    result = set_parameter(listener, node_name, 'score_threshold', 1)
    assert result.successful, result.reason
    assert get(listener, node_name, 'score_threshold') == (Parameter.Type.DOUBLE, 1.0)
    result = set_parameter(listener, node_name, 'heads.landmarks.every_n_frames', 2.0)
    assert result.successful, result.reason
    assert get(listener, node_name, 'heads.landmarks.every_n_frames') == \
        (Parameter.Type.INTEGER, 2)
    names = ['heads.faces.rate_hz', 'score_threshold', 'heads.landmarks.every_n_frames']
    assert described_types(listener, node_name, names) == {
        'heads.faces.rate_hz': Parameter.Type.DOUBLE, 'score_threshold': Parameter.Type.DOUBLE,
        'heads.landmarks.every_n_frames': Parameter.Type.INTEGER}


@pytest.mark.parametrize('node_name', [INFER, LIFECYCLE])
def test_refused_values_name_the_parameter_and_change_nothing(system, node_name):
    listener, processes = system
    if node_name == LIFECYCLE:
        configure(listener, processes)
    assert set_parameter(listener, node_name, 'score_threshold', 0.5).successful
    for value in (2, 1.5):  # our check (an integer, converted) and rclpy's (a double)
        result = set_parameter(listener, node_name, 'score_threshold', value)
        assert not result.successful
        assert 'score_threshold' in result.reason and 'out of range' in result.reason
    assert 'score_threshold=2.0 is out of range 0..1' in \
        set_parameter(listener, node_name, 'score_threshold', 2).reason
    result = set_parameter(listener, node_name, 'heads.landmarks.every_n_frames', 2.5)
    assert not result.successful
    assert 'heads.landmarks.every_n_frames=2.5' in result.reason and 'INTEGER' in result.reason
    result = set_parameter(listener, node_name, 'heads.faces.rate_hz', 'fast')
    assert not result.successful and 'heads.faces.rate_hz' in result.reason
    assert get(listener, node_name, 'score_threshold') == (Parameter.Type.DOUBLE, 0.5)
    names = ['heads.faces.rate_hz', 'heads.landmarks.every_n_frames']
    assert described_types(listener, node_name, names) == {
        'heads.faces.rate_hz': Parameter.Type.DOUBLE,
        'heads.landmarks.every_n_frames': Parameter.Type.INTEGER}


def test_a_lossy_double_for_an_integer_at_start_up_stops_the_node_naming_it(tmp_path):
    node = RosProcess('infer_node', {'threads': 2.5, 'inputs': ['/param_services/lossy']},
                      log_path=str(tmp_path / 'lossy.log'), node_name='param_lossy')
    try:
        node.proc.wait(120)
    finally:
        code = node.stop()
    errors = [line for line in node.output().splitlines() if line.startswith('error:')]
    assert code == 2 and errors == ['error: threads=2.5: expected INTEGER, got DOUBLE (not a '
                                    'whole number)'], node.output()


def test_a_dump_loads_back_as_the_same_configuration(system, tmp_path):
    """``ros2 param dump /param_infer > f.yaml`` then ``infer_node --params-file f.yaml``."""
    listener, _ = system
    dumped = dump(listener, INFER)
    params_file = tmp_path / 'dumped.yaml'
    params_file.write_text(dump_file(dumped, 'param_reload'))
    node = RosProcess('infer_node', params_file=str(params_file), node_name='param_reload',
                      log_path=str(tmp_path / 'reload.log'))
    try:
        assert dump(listener, 'param_reload') == dumped
    finally:
        assert node.stop() == 0, node.output()
