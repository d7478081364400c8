"""
Runtime parameter changes of the infer nodes.

A set request is checked whole before any of it applies, and a head's rate parameters always
say what its scheduler runs.

The nodes run in this process, so the test reads the running pipeline directly; sets go through
rclpy's own parameter API, which runs the same callbacks as ``ros2 param set``.
"""

from hobot_npu_infer.ros.infer_lifecycle_node import InferLifecycleNode
from hobot_npu_infer.ros.infer_node import InferNode
from hobot_npu_infer.ros.node_main import shut_down
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

HEADS = {
    'inputs': ['/params/image_raw'], 'input_size': '320x256', 'detections_format': 'json',
    'head_names': ['faces', 'landmarks'], 'heads.faces.outputs': ['537', '538', '539'],
    'heads.faces.decoder': 'centerface', 'heads.landmarks.outputs': ['540'],
    'heads.landmarks.every_n_frames': 4}


def make(node_type, params):
    """``node_type`` with ``params``, in a context of its own; closed by ``close``."""
    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    return node_type(context=context, parameter_overrides=overrides,
                     cli_args=['--ros-args', '-r', '__node:=params_node'])


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
