"""
infer_node on a TROS board's messages over real DDS: hbm_img_msgs in, ai_msgs out.

hbm_img_msgs and ai_msgs are the real message packages, built from the public definitions
(test/tros_fixtures.py); the BPU is the recording fake runtime of test_hobot_node. A camera
process publishes HbmMsg1080P NV12 frames at the model size as mipi_cam does (sensor-data QoS,
realtime stamps, data_size bytes of the fixed array); infer_node takes them on ``hbmem_inputs``
with ``detections_format: perception_targets``. Proven here: each frame reaches the BPU byte for
byte, PerceptionTargets come out beside the JSON detections with the frame's time stamp and
the input's frame_id, a Target per face with its box, score, landmarks and track ID, and perfs
of the frame's stages. Not proven: mipi_cam's shared-memory (loaned, zero-copy) transport and
the real BPU, which need a board.
"""

import json
import os
import signal
import subprocess
import sys

import pytest
from ros_harness import child_environment, Listener, RosProcess, run_to_end
from std_msgs.msg import String
from test_hobot_backend import face_model, write
import test_hobot_node
from test_hobot_node import (
    assert_known_face,
    at_size,
    digest,
    fake_runtime_env,
    forward_records,
    H,
    known_box,
    W,
)
from tros_fixtures import TEST_DIR, with_tros_msgs

CAMERA_SCRIPT = os.path.join(TEST_DIR, 'tros_msgs', 'hbm_camera.py')
PROFILE = os.path.join(os.path.dirname(TEST_DIR), 'config', 'fastdds_large_frames.xml')
CAM = '/hbmem_img'
TARGETS, DETECTIONS = f'{CAM}/perception_targets', f'{CAM}/detections'
FRAME_ID = 'front_cam'
scene = test_hobot_node.scene  # the camera image and its NV12 bytes (a fixture)


@pytest.fixture(scope='module')
def tros_node(tmp_path_factory, scene, tros_msgs, tros_messages):
    """Run the camera and infer_node; yield (listener, node, forward log, ai_msgs.msg)."""
    directory = tmp_path_factory.mktemp('tros_node')
    _, nv12 = scene
    frame_path = directory / 'frame.nv12'
    frame_path.write_bytes(nv12.tobytes())
    model_file = write(directory / 'faces.bin', at_size(face_model('faces')))
    log = directory / 'forward.jsonl'
    # 6 MB messages between the processes: the shared-memory segment of the launch files
    large = {'FASTRTPS_DEFAULT_PROFILES_FILE': PROFILE, 'FASTDDS_DEFAULT_PROFILES_FILE': PROFILE}
    ai_msgs = tros_messages[1]
    listener = Listener('tros_listener')
    node = camera = None
    try:
        listener.subscribe(ai_msgs.PerceptionTargets, TARGETS, qos=100)
        listener.subscribe(String, DETECTIONS, qos=100)
        node = RosProcess('infer_node', {
            'inputs': [], 'hbmem_inputs': [CAM], 'hbmem_frame_ids': [FRAME_ID],
            'backend': 'hobot', 'model': model_file, 'decoder': 'centerface',
            'class_names': ['face'], 'score_threshold': 0.5,
            'detections_format': 'perception_targets'}, log_path=str(directory / 'node.log'),
            node_name='infer_tros', env=with_tros_msgs(tros_msgs, {
                **fake_runtime_env(directory / 'runtime', log), **large}))
        camera_log = open(directory / 'camera.log', 'w')
        camera = subprocess.Popen(
            [sys.executable, CAMERA_SCRIPT, CAM, str(frame_path), str(W), str(H), '4'],
            env=child_environment(**with_tros_msgs(tros_msgs, large)), stdout=camera_log,
            stderr=subprocess.STDOUT)
        yield listener, node, str(log), ai_msgs
    finally:
        listener.close()
        codes = []
        if camera is not None:
            camera.send_signal(signal.SIGINT)
            codes.append(camera.wait(15))
            camera_log.close()
        if node is not None:
            codes.append(node.stop())
    assert codes == [0, 0], node.output()


def test_hbm_nv12_frames_reach_the_bpu_byte_for_byte(tros_node, scene):
    listener, node, log, _ = tros_node
    _, nv12 = scene
    assert listener.wait_for(lambda: len(forward_records(log)) >= 4, timeout=120), node.output()
    warm_up, *frames = forward_records(log)
    assert frames and all(r['sha256'] == digest(nv12) for r in frames), frames
    assert 'detections as json and ai_msgs/PerceptionTargets' in node.output()


def test_perception_targets_carry_the_faces_with_the_frames_stamp(tros_node):
    listener, node, _, ai_msgs = tros_node
    assert listener.wait_for(lambda: len(listener.received(TARGETS)) >= 5, timeout=120), \
        node.output()
    assert listener.wait_for(lambda: len(listener.received(DETECTIONS)) >= 5, timeout=30)
    beside = {(d['header']['stamp']['sec'], d['header']['stamp']['nanosec']): d
              for d in (json.loads(m.data) for m in listener.received(DETECTIONS))}
    messages = listener.received(TARGETS)
    for msg in messages:
        assert isinstance(msg, ai_msgs.PerceptionTargets)
        assert msg.header.frame_id == FRAME_ID
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        if stamp in beside:  # the JSON detections of the same frame: the same face
            assert_known_face(beside[stamp]['detections'])
        [target] = msg.targets
        assert target.type == 'face'
        [roi] = target.rois
        box = (roi.rect.x_offset, roi.rect.y_offset, roi.rect.x_offset + roi.rect.width,
               roi.rect.y_offset + roi.rect.height)
        assert all(abs(g - w) <= 1 for g, w in zip(box, known_box())), box
        assert roi.type == 'face' and roi.confidence == 1.0
        [points] = target.points
        assert points.type == 'face_kps' and len(points.point) == len(points.confidence) == 5
        names = [p.type for p in msg.perfs]
        assert names == ['faces_preprocess', 'faces_predict_infer', 'faces_postprocess',
                         'faces_pipeline']
        assert all(p.time_ms_duration >= 0 for p in msg.perfs)
        pipeline = msg.perfs[-1]
        assert (pipeline.stamp_start.sec, pipeline.stamp_start.nanosec) == stamp
    assert len({(m.header.stamp.sec, m.header.stamp.nanosec) for m in messages}) == \
        len(messages)  # one message per camera frame
    assert set(beside) & {(m.header.stamp.sec, m.header.stamp.nanosec) for m in messages}
    assert messages[-1].targets[0].track_id > 0  # tracked: a steady face has its ID
    assert messages[-1].fps > 0


@pytest.mark.parametrize('params, words', [
    ({'qos_reliability': ['reliable']}, ['qos_reliability', '/hbmem_img', 'best effort']),
    ({'hbmem_frame_ids': ['a', 'b']}, ['hbmem_frame_ids', '2 values for 1 inputs']),
])
def test_bad_hbmem_parameters_give_one_line_and_exit_2(tros_msgs, params, words):
    proc = run_to_end('infer_node', env=with_tros_msgs(tros_msgs, {}), inputs=[],
                      hbmem_inputs=[CAM], **params)
    assert proc.returncode == 2, proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert all(word in error for word in words), error
