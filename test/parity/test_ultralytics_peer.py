"""
The Ultralytics peer of peer_bench (harness/ultralytics_peer.py), over real DDS.

It runs in the Ultralytics environment on the real fall detector; a camera (image_source)
publishes bus.jpg, and the peer's JSON detections must carry the stamp and frame_id of a frame
the camera published, the frame's size and Ultralytics' people of bus.jpg, whichever of bgr8 and
rgb8 the camera sends. SIGTERM ends it with exit code 0.
"""

import json
import signal

from hobot_npu_infer.bench.peer_bench import PeerProcess
from hobot_npu_infer.ros.qos import image_qos
from parity_checks import box_iou, BUS_PEOPLE
import pytest
from ros_harness import Listener, RosProcess
from sensor_msgs.msg import Image
from std_msgs.msg import String

TOPIC = '/peer_test/image_raw'
OUT = f'{TOPIC}/detections'


@pytest.fixture(scope='module')
def peer(ultralytics_python, fetched_models, tmp_path_factory):
    logs = tmp_path_factory.mktemp('peer-logs')
    listener = Listener('peer_test_listener')
    listener.subscribe(String, OUT)
    listener.subscribe(Image, TOPIC, qos=image_qos(depth=5))
    process = PeerProcess(ultralytics_python, fetched_models['best_fp16.onnx'], TOPIC,
                          'ultralytics_peer_test', str(logs / 'peer.log'),
                          str(logs / 'ultralytics-config'))
    yield listener, process, logs
    listener.close()
    process.stop()


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8'])
def test_the_peer_answers_a_camera_with_its_stamp_and_ultralytics_people(
        peer, fetched_models, encoding):
    listener, process, logs = peer
    seen = len(listener.received(OUT))
    camera = RosProcess('image_source', {'images': [fetched_models['bus.jpg']],
                                         'topics': [TOPIC], 'frame_ids': ['peer_camera'],
                                         'encoding': encoding, 'rate_hz': 2.0},
                        log_path=str(logs / f'image_source-{encoding}.log'))
    try:
        assert listener.wait_for(lambda: len(listener.received(OUT)) >= seen + 2, timeout=180), \
            process.output()
    finally:
        assert camera.stop() == 0, camera.output()
    frames = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in listener.received(TOPIC)
              if m.encoding == encoding}
    answers = [json.loads(m.data) for m in listener.received(OUT)[seen:]]
    matched = [a for a in answers if (a['header']['stamp']['sec'],
                                      a['header']['stamp']['nanosec']) in frames]
    assert matched, (answers, sorted(frames))
    for answer in matched:
        assert answer['header']['frame_id'] == 'peer_camera'
        assert (answer['width'], answer['height']) == (810, 1080)
        people = [d['box'] for d in answer['detections'] if d['class_name'] == 'Normal']
        assert (box_iou(BUS_PEOPLE, people).max(axis=1) > 0.8).all(), answer
        assert set(answer['detections'][0]) == {'class_id', 'class_name', 'score', 'box',
                                                'keypoints'}


def test_the_peer_stops_on_sigterm_with_exit_code_0(peer):
    _, process, _ = peer
    assert process.running(), process.output()
    assert process.stop(signal.SIGTERM) == 0, process.output()
    assert 'stopped after' in process.output()
