"""
Tracking over real DDS: a 30 Hz camera, a detection head at a third of its rate.

infer_node with CenterFace as a packed model's faces head run on every third frame
(``heads.faces.every_n_frames: 3``: 10 Hz on a 30 Hz camera, and the same third whatever the
machine's speed). Shadow tracking gives the two frames in three the head skips the tracker's
predicted boxes, so the detections come out at the camera's rate, each with its own frame's stamp,
under one track ID.
"""

import json

from diagnostic_msgs.msg import DiagnosticArray
import pytest
from ros_harness import Listener, newest_values, RosProcess, stamp_key
from sensor_msgs.msg import Image
from std_msgs.msg import String

CAM = '/tracked/image_raw'
FACES = f'{CAM}/faces/detections'
HEAD = {'head_names': ['faces'], 'heads.faces.outputs': ['537', '538', '539'],
        'heads.faces.decoder': 'centerface', 'heads.faces.class_names': ['face'],
        'heads.faces.every_n_frames': 3}


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    logs = tmp_path_factory.mktemp('tracking')
    listener = Listener('tracking_listener')
    listener.subscribe(String, FACES, qos=200)
    listener.subscribe(Image, CAM, qos=200)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=5)
    node = RosProcess('infer_node', {
        'inputs': [CAM], 'input_size': '320x256', 'detections_format': 'json',
        'qos_reliability': ['reliable'], **HEAD}, log_path=str(logs / 'node.log'),
        node_name='infer_tracked')
    camera = RosProcess('image_source', {'topics': [CAM], 'rate_hz': 30.0, 'size': '320x256',
                                         'max_frames': 300, 'qos_reliability': 'reliable'},
                        log_path=str(logs / 'camera.log'))
    yield listener, node
    listener.close()
    assert [p.stop() for p in (camera, node)] == [0, 0], node.output()


def outputs(listener):
    """(stamp, faces) of every detections message so far."""
    return [(stamp_key(m['header']['stamp']), m['detections'])
            for m in (json.loads(msg.data) for msg in listener.received(FACES))]


def test_tracked_boxes_at_the_camera_rate_with_the_camera_stamps(system):
    listener, node = system
    assert listener.wait_for(lambda: len(outputs(listener)) >= 75, timeout=60), node.output()
    out = outputs(listener)[15:]  # past start-up: the track is confirmed
    camera = {stamp_key(m.header.stamp) for m in listener.received(CAM)}
    stamps = [stamp for stamp, _ in out]
    assert set(stamps) <= camera  # every output is one camera frame's
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # in order, once each
    frames = sorted(s for s in camera if stamps[0] <= s <= stamps[-1])
    assert len(stamps) >= 0.8 * len(frames)  # nearly every camera frame has its detections
    faces = [faces for _, faces in out]
    assert all(len(f) == 1 for f in faces)  # the astronaut's face, on every frame
    predicted = [f[0] for f in faces if f[0].get('predicted')]
    measured = [f[0] for f in faces if not f[0].get('predicted')]
    assert len(predicted) >= len(measured)  # two frames in three are the head's skipped ones
    assert {f[0]['track_id'] for f in faces} == {measured[-1]['track_id']}  # one object, one ID
    for face in predicted:  # the photo stands still: so does the prediction
        assert face['box'] == pytest.approx(measured[-1]['box'], abs=2.0)
        assert face['score'] > 0.5


def test_diagnostics_count_tracks_and_predicted_outputs(system):
    listener, node = system
    assert listener.wait_for(
        lambda: int(newest_values(listener, f'input {CAM}').get('outputs_predicted', 0)) > 0,
        timeout=30), node.output()
    values = newest_values(listener, f'input {CAM}')
    assert values['tracks_alive'] == '1' and values['track_ids_created'] == '1'
    assert int(values['outputs_measured']) > 0
