"""
Runtime parameter changes of the infer nodes.

A set request is checked whole before any of it applies, and a head's rate parameters always
say what its scheduler runs. Every parameter holds a value of its declared type, and a number of
the other kind is taken when nothing is lost (an integer for a double, a whole double for an
integer), at start-up as at runtime.

The nodes run in this process, so the test reads the running pipeline directly; sets go through
rclpy's own parameter API, which runs the same callbacks as ``ros2 param set``.
"""

import itertools
import os

from hobot_npu_infer.ros.infer_lifecycle_node import InferLifecycleNode
from hobot_npu_infer.ros.infer_node import InferNode
from hobot_npu_infer.ros.infer_parameters import head_parameters, PARAMETERS
from hobot_npu_infer.ros.node_main import shut_down
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

NODE_NAMES = (f'params_node_{os.getpid()}_{n}' for n in itertools.count())
HEADS = {
    'inputs': ['/params/image_raw'], 'input_size': '320x256', 'detections_format': 'json',
    'head_names': ['faces', 'landmarks'], 'heads.faces.outputs': ['537', '538', '539'],
    'heads.faces.decoder': 'centerface', 'heads.landmarks.outputs': ['540'],
    'heads.landmarks.every_n_frames': 4}


def make(node_type, params):
    """
    ``node_type`` with ``params``, in a context of its own; closed by ``close``.

    Each node gets a name of its own: a node just closed may still be on the graph, and a node
    refuses to start beside another of its name.
    """
    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    return node_type(context=context, parameter_overrides=overrides,
                     cli_args=['--ros-args', '-r', f'__node:={next(NODE_NAMES)}'])


def close(node):
    context = node.context
    shut_down(SingleThreadedExecutor(context=context), node, context)
    context.destroy()


@pytest.fixture
def heads_node():
    node = make(InferNode, HEADS)
    yield node
    close(node)


def values(node, *names):
    return [node.get_parameter(name).value for name in names]


def rate_of(node, head):
    rate = node.host.pipeline.head_rates[head]
    return rate.rate_hz, rate.every_n_frames


def test_a_rate_that_contradicts_every_n_frames_is_refused_and_nothing_changes(heads_node):
    [result] = heads_node.set_parameters([Parameter('heads.landmarks.rate_hz', value=5.0)])
    assert not result.successful
    assert 'heads.landmarks.every_n_frames=4' in result.reason and 'not both' in result.reason
    assert values(heads_node, 'heads.landmarks.rate_hz',
                  'heads.landmarks.every_n_frames') == [0.0, 4]
    assert rate_of(heads_node, 'landmarks') == (0.0, 4)


def test_both_rate_fields_set_together_reach_the_scheduler_as_the_parameters_say(heads_node):
    result = heads_node.set_parameters_atomically([
        Parameter('heads.landmarks.every_n_frames', value=0),
        Parameter('heads.landmarks.rate_hz', value=5.0)])
    assert result.successful, result.reason
    assert values(heads_node, 'heads.landmarks.rate_hz',
                  'heads.landmarks.every_n_frames') == [5.0, 0]
    assert rate_of(heads_node, 'landmarks') == (5.0, 0)
    [result] = heads_node.set_parameters([Parameter('heads.landmarks.rate_hz', value=0.0)])
    assert result.successful
    assert rate_of(heads_node, 'landmarks') == (0.0, 0)  # every frame, as both now say


def test_a_refused_request_applies_none_of_its_values(heads_node):
    before = heads_node.host.score_threshold
    declared = values(heads_node, 'score_threshold')
    result = heads_node.set_parameters_atomically([
        Parameter('score_threshold', value=0.9),
        Parameter('heads.landmarks.every_n_frames', value=-1)])
    assert not result.successful and 'every_n_frames' in result.reason
    assert heads_node.host.score_threshold == pytest.approx(before)
    assert values(heads_node, 'score_threshold') == declared
    assert rate_of(heads_node, 'landmarks') == (0.0, 4)


def test_a_valid_request_applies_every_value():
    node = make(InferNode, {'inputs': ['/params/image_raw'], 'input_size': '320x256',
                            'detections_format': 'json'})
    try:
        result = node.set_parameters_atomically([
            Parameter('score_threshold', value=0.7),
            Parameter('stale_timeout_s', value=9.0)])
        assert result.successful, result.reason
        assert node.host.score_threshold == pytest.approx(0.7)
        assert node.host.settings.thresholds.stale_timeout_s == pytest.approx(9.0)
    finally:
        close(node)


def test_lifecycle_node_refuses_a_configure_time_value_while_loaded_and_applies_nothing():
    node = make(InferLifecycleNode, {'inputs': ['/params/image_raw'], 'input_size': '320x256',
                                     'detections_format': 'json'})
    try:
        node.trigger_configure()
        assert node.host.loaded
        result = node.set_parameters_atomically([
            Parameter('score_threshold', value=0.8),
            Parameter('model', value='another.onnx')])
        assert not result.successful and result.reason.startswith('model: read when configuring')
        assert node.host.score_threshold != pytest.approx(0.8)
        assert values(node, 'model') == ['centerface']
        node.trigger_cleanup()
        [result] = node.set_parameters([Parameter('model', value='centerface')])
        assert result.successful  # unconfigured: read at the next configure
    finally:
        close(node)


def typed(node, name):
    """(type, value) the node holds, after checking its descriptor has the same type."""
    param = node.get_parameter(name)
    assert node.describe_parameter(name).type == param.type_.value, name
    return param.type_, param.value


def test_every_parameter_has_a_value_of_its_declared_type_from_the_start(heads_node):
    specs = PARAMETERS + head_parameters('faces') + head_parameters('landmarks')
    assert {spec.name: typed(heads_node, spec.name)[0] for spec in specs} == \
        {spec.name: spec.type for spec in specs}
    assert values(heads_node, 'head_names', 'class_names', 'heads.faces.class_names') == \
        [['faces', 'landmarks'], [], []]


def test_numbers_given_at_start_up_are_held_as_the_declared_type():
    node = make(InferNode, {**HEADS, 'heads.landmarks.every_n_frames': 4.0,
                            'heads.faces.rate_hz': 2, 'max_batch_delay_ms': 20,
                            'crop_mean': [0, 0, 0], 'qos_depth': [2.0], 'class_names': []})
    try:
        assert [typed(node, name) for name in (
            'heads.landmarks.every_n_frames', 'heads.faces.rate_hz', 'max_batch_delay_ms',
            'crop_mean', 'qos_depth', 'class_names')] == [
            (Parameter.Type.INTEGER, 4), (Parameter.Type.DOUBLE, 2.0),
            (Parameter.Type.DOUBLE, 20.0), (Parameter.Type.DOUBLE_ARRAY, [0.0, 0.0, 0.0]),
            (Parameter.Type.INTEGER_ARRAY, [2]), (Parameter.Type.STRING_ARRAY, [])]
        assert rate_of(node, 'faces') == (2.0, 0)
    finally:
        close(node)


def test_an_integer_for_a_rate_reaches_the_scheduler_as_a_double(heads_node):
    result = heads_node.set_parameters_atomically([
        Parameter('heads.landmarks.every_n_frames', value=0.0),  # a whole double
        Parameter('heads.landmarks.rate_hz', value=5)])  # ros2 param set ... rate_hz 5
    assert result.successful, result.reason
    assert typed(heads_node, 'heads.landmarks.rate_hz') == (Parameter.Type.DOUBLE, 5.0)
    assert typed(heads_node, 'heads.landmarks.every_n_frames') == (Parameter.Type.INTEGER, 0)
    rate = heads_node.host.pipeline.head_rates['landmarks']
    assert (rate.rate_hz, rate.every_n_frames) == (5.0, 0) and isinstance(rate.rate_hz, float)
    [result] = heads_node.set_parameters([Parameter('score_threshold', value=1)])
    assert result.successful, result.reason
    assert typed(heads_node, 'score_threshold') == (Parameter.Type.DOUBLE, 1.0)


@pytest.mark.parametrize('name, value, words', [
    ('heads.landmarks.every_n_frames', 2.5,
     ['heads.landmarks.every_n_frames=2.5', 'INTEGER', 'not a whole number']),
    ('score_threshold', 2, ['score_threshold=2.0 is out of range 0..1']),
    ('score_threshold', 1.5, ['score_threshold', 'out of range']),  # rclpy's own range check
    ('score_threshold', 'high', ['score_threshold', 'expected DOUBLE, got STRING']),
    ('heads.landmarks.enabled', 1, ['heads.landmarks.enabled', 'expected BOOL, got INTEGER']),
    ('score_threshold', None, ['score_threshold', 'cannot be unset']),
])
def test_a_refused_value_names_the_parameter_and_leaves_its_type_and_value(
        heads_node, name, value, words):
    before = typed(heads_node, name)
    [result] = heads_node.set_parameters([Parameter(name, value=value)])
    assert not result.successful
    for word in words:
        assert word in result.reason
    assert heads_node.has_parameter(name)  # unset, a dynamically typed one would be undeclared
    assert typed(heads_node, name) == before


def test_an_empty_list_of_any_kind_is_the_declared_empty_list():
    """``ros2 param set /infer_node class_names '[]'`` sends a bool array."""
    node = make(InferLifecycleNode, {'inputs': ['/params/image_raw']})
    try:
        assert node.set_parameters([Parameter('class_names', value=['a'])])[0].successful
        [result] = node.set_parameters([Parameter('class_names', Parameter.Type.BOOL_ARRAY, [])])
        assert result.successful, result.reason
        assert typed(node, 'class_names') == (Parameter.Type.STRING_ARRAY, [])
        [result] = node.set_parameters([Parameter('crop_std', value=[1, 2, 4])])
        assert result.successful, result.reason
        assert typed(node, 'crop_std') == (Parameter.Type.DOUBLE_ARRAY, [1.0, 2.0, 4.0])
        [result] = node.set_parameters([Parameter('class_names', value=[1, 2])])
        assert not result.successful and 'expected STRING_ARRAY' in result.reason
    finally:
        close(node)
