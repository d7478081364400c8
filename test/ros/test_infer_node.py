"""
infer_node across real processes and real DDS.

infer_node across real processes and real DDS: detections, diagnostics, compressed input,
bad input on one topic while another keeps working, parameters at runtime.
"""

import json
import re

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.telemetry.health_reports import stage_key, STAGES, SUMMARY_FIELDS
from hobot_npu_infer.ros.diagnostics import level_of
from hobot_npu_infer.ros.image_conversion import image_to_array
from hobot_npu_infer.ros.qos import image_qos
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import Listener, newest_status, published_frame_ids, RosProcess, stamp_key
from sensor_msgs.msg import Image
from std_msgs.msg import String

CAM, COMP, BAD = '/itest/cam/image_raw', '/itest/comp/image_raw', '/itest/bad/image_raw'
QOS = '/itest/qos/image_raw'
ASTRONAUT_FACE = (182, 58, 270, 178)


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    logs = tmp_path_factory.mktemp('logs')
    node = RosProcess('infer_node', {
        'inputs': [CAM, BAD, QOS], 'compressed_inputs': [COMP], 'detections_format': 'json',
        'qos_reliability': ['reliable'], 'qos_depth': [2], 'stale_timeout_s': 30.0,
        'publish_debug_image': True},
        log_path=str(logs / 'infer_node.log'))
    raw = RosProcess('image_source', {'images': ['astronaut'], 'topics': [CAM], 'rate_hz': 5.0,
                                      'qos_reliability': 'reliable'},
                     log_path=str(logs / 'raw.log'))
    jpeg = RosProcess('image_source', {'images': ['astronaut'], 'topics': [COMP],
                                       'rate_hz': 5.0, 'encoding': 'jpeg',
                                       'qos_reliability': 'reliable',
                                       'frame_ids': ['jpeg_camera']},
                      log_path=str(logs / 'jpeg.log'))
    listener = Listener('itest_listener')
    for topic in (CAM, COMP, BAD):
        listener.subscribe(String, f'{topic}/detections')
    listener.subscribe(Image, CAM, qos=image_qos('reliable', 10))
    listener.subscribe(Image, f'{CAM}/debug_image')
    listener.subscribe(DiagnosticArray, '/diagnostics')
    yield listener, node
    listener.close()
    codes = [p.stop() for p in (raw, jpeg, node)]
    assert codes == [0, 0, 0], node.output()


def faces(msg):
    return json.loads(msg.data)['detections']


def test_astronaut_face_with_the_source_stamp_and_frame_id(system):
    listener, node = system
    out = f'{CAM}/detections'
    assert listener.wait_for(lambda: len(listener.received(CAM)) >= 1), node.output()
    seen = len(listener.received(out))  # detections of frames the listener may have missed
    assert listener.wait_for(lambda: len(listener.received(out)) >= seen + 3), node.output()
    latest = [json.loads(m.data) for m in listener.received(out)[-3:]]
    published = published_frame_ids(listener, CAM, max(stamp_key(p['header']['stamp'])
                                                       for p in latest))
    for payload in latest:
        header = payload['header']
        stamp = stamp_key(header['stamp'])
        assert published.get(stamp) == 'camera'  # the very stamp of a published frame
        assert header['frame_id'] == 'camera'
        assert (payload['width'], payload['height']) == (512, 512)
        [face] = payload['detections']
        assert face['class_name'] == 'face' and face['score'] > 0.8
        assert all(abs(g - w) <= 10 for g, w in zip(face['box'], ASTRONAUT_FACE))
        assert len(face['keypoints']) == 5


def test_debug_image_has_the_boxes_drawn(system):
    listener, node = system
    debug = f'{CAM}/debug_image'
    assert listener.wait_for(lambda: len(listener.received(debug)) >= 1), node.output()
    msg = listener.received(debug)[-1]
    assert msg.header.frame_id == 'camera' and (msg.width, msg.height) == (512, 512)
    drawn, _ = image_to_array(msg)
    original = load_sample('astronaut')
    changed = np.any(drawn != original, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 100  # a box was drawn ...
    x1, y1, x2, y2 = ASTRONAUT_FACE  # ... around the face, and nothing far from it
    assert xs.min() >= x1 - 15 and xs.max() <= x2 + 60  # the label ("#1 face 0.93") may run past
    assert ys.min() >= y1 - 30 and ys.max() <= y2 + 15


def test_diagnostics_carry_latency_statistics(system):
    listener, _ = system
    name = f'infer_node: input {CAM}'

    def ready():
        status = newest_status(listener, name)
        return status is not None and \
            int({kv.key: kv.value for kv in status.values}['e2e.count']) >= 3
    assert listener.wait_for(ready)
    status = newest_status(listener, name)
    assert status.name == name and status.hardware_id.endswith('infer_node')
    assert level_of(status) == 0, status.message
    values = {kv.key: kv.value for kv in status.values}
    for stage in STAGES:
        for stat in SUMMARY_FIELDS:
            assert stage_key(stage, stat) in values
        p50, p90, p99, top = (float(values[stage_key(stage, s)])
                              for s in ('p50', 'p90', 'p99', 'max'))
        assert 0 <= p50 <= p90 <= p99 <= top < 60_000, stage
    assert float(values['inference.p50_ms']) > 0
    # end to end covers every stage after the camera's stamp
    assert float(values['e2e.p50_ms']) >= float(values['inference.p50_ms'])
    assert float(values['input_rate_hz']) > 0 and float(values['output_rate_hz']) > 0
    assert int(values['frames_in']) >= int(values['frames_out']) > 0
    model = newest_status(listener, 'infer_node: model centerface')
    assert level_of(model) == 0 and int({kv.key: kv.value for kv in model.values}['runs']) > 0


def test_compressed_input(system):
    listener, node = system
    out = f'{COMP}/detections'
    assert listener.wait_for(lambda: len(listener.received(out)) >= 2), node.output()
    payload = json.loads(listener.received(out)[-1].data)
    assert payload['header']['frame_id'] == 'jpeg_camera'
    [face] = payload['detections']
    assert all(abs(g - w) <= 10 for g, w in zip(face['box'], ASTRONAUT_FACE))


def bad_images():
    unsupported = Image(height=4, width=4, encoding='16UC1', step=8, data=bytes(32))
    truncated = Image(height=480, width=640, encoding='rgb8', step=1920, data=bytes(1000))
    return unsupported, truncated


def test_bad_frames_are_counted_and_logged_once_while_others_keep_working(system):
    listener, node = system
    publisher = listener.publisher(Image, BAD, image_qos('reliable', 10))
    good = f'{CAM}/detections'
    assert listener.wait_for(lambda: publisher.get_subscription_count() > 0)
    before = len(listener.received(good))
    for _ in range(5):
        for msg in bad_images():
            publisher.publish(msg)
            listener.wait_for(lambda: False, timeout=0.1)  # let each frame be taken alone

    def counted():
        status = newest_status(listener, f'input {BAD}')
        values = {kv.key: kv.value for kv in status.values} if status else {}
        return int(values.get('conversion_errors.encoding', 0)) >= 1 and \
            int(values.get('conversion_errors.truncated', 0)) >= 1
    assert listener.wait_for(counted), node.output()
    status = newest_status(listener, f'input {BAD}')
    assert level_of(status) == 1 and 'bad frame' in status.message  # WARN
    values = {kv.key: kv.value for kv in status.values}
    assert int(values['conversion_errors']) == int(values['conversion_errors.encoding']) + \
        int(values['conversion_errors.truncated'])
    assert values['frames_out'] == '0'
    assert listener.received(f'{BAD}/detections') == []
    # the good camera kept producing detections meanwhile
    assert listener.wait_for(lambda: len(listener.received(good)) >= before + 3)
    log = node.output()
    encoding_lines = re.findall(rf'{BAD}: bad frame dropped: unsupported encoding', log)
    truncated_lines = re.findall(rf'{BAD}: bad frame dropped: truncated image', log)
    assert len(encoding_lines) == 1 and len(truncated_lines) == 1, log


def set_parameter(listener, name, value: float):
    client = listener.node.create_client(SetParameters, '/infer_node/set_parameters')
    assert client.wait_for_service(timeout_sec=30)
    request = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=value))])
    future = client.call_async(request)
    assert listener.wait_for(future.done, timeout=30)
    listener.node.destroy_client(client)
    return future.result().results[0]


def test_runtime_parameter_changes_are_validated_and_applied(system):
    listener, _ = system
    rejected = set_parameter(listener, 'score_threshold', 1.5)
    assert not rejected.successful and 'score_threshold' in rejected.reason
    out = f'{CAM}/detections'
    try:
        assert set_parameter(listener, 'score_threshold', 0.999).successful
        count = len(listener.received(out))
        assert listener.wait_for(lambda: len(listener.received(out)) >= count + 3)
        assert faces(listener.received(out)[-1]) == []  # no face scores 0.999
    finally:
        assert set_parameter(listener, 'score_threshold', 0.5).successful


def test_an_incompatible_publisher_is_named_in_a_warning(system):
    """
    A best-effort camera and a reliable subscription never match.

    That is a silent no-output, unless the node says why.
    """
    listener, node = system
    publisher = listener.publisher(Image, QOS, image_qos('best_effort', 1))

    def warned():
        status = newest_status(listener, f'input {QOS}')
        return status is not None and 'RELIABILITY' in status.message
    assert listener.wait_for(warned), node.output()
    status = newest_status(listener, f'input {QOS}')
    assert level_of(status) == 1 and 'incompatible QoS' in status.message
    values = {kv.key: kv.value for kv in status.values}
    assert values['qos_incompatible_policy'] == 'RELIABILITY'
    assert int(values['qos_incompatible_count']) >= 1
    assert node.output().count(f'{QOS}: a publisher offers a QoS incompatible') == 1
    # the publisher goes: the graph holds no incompatible one, and the warning clears
    listener.node.destroy_publisher(publisher)

    def cleared():
        status = newest_status(listener, f'input {QOS}')
        return 'QoS' not in status.message and 'qos_incompatible_policy' not in \
            {kv.key for kv in status.values}
    assert listener.wait_for(cleared), newest_status(listener, f'input {QOS}')
