"""
A user's own model in infer_node, over real DDS, with nothing set but ``model``.

The fall detector as shipped (an Ultralytics YOLOv8s export) runs on camera frames of bus.jpg
and then zidane.jpg published on the node's default input, image_raw; its detections must be
Ultralytics' own on the same file and photo (test/parity_checks.py says what matching means).
"""

import json

from parity_checks import BUS_PEOPLE, found_problems, load_reference, ZIDANE_PEOPLE
import pytest
from ros_harness import Listener, RosProcess
from std_msgs.msg import String

OUT = '/image_raw/detections'


@pytest.fixture(scope='module')
def user_model_node(fetched_models, tmp_path_factory):
    logs = tmp_path_factory.mktemp('user-model-logs')
    listener = Listener('user_model_listener')
    listener.subscribe(String, OUT)
    node = RosProcess('infer_node', {'model': fetched_models['best_fp16.onnx']},
                      log_path=str(logs / 'infer_node.log'))
    yield listener, node, logs
    listener.close()
    code = node.stop()
    assert code == 0, node.output()


def detections_of(listener, node, logs, photo, size):
    """Publish ``photo`` on image_raw until the node answers it; return its detections."""
    camera = RosProcess('image_source', {'images': [photo], 'rate_hz': 2.0},
                        log_path=str(logs / 'image_source.log'))
    try:
        def answered():
            return any(json.loads(m.data)['width'] == size[0]
                       for m in listener.received(OUT))
        assert listener.wait_for(answered, timeout=120), node.output()
    finally:
        assert camera.stop() == 0
    payload = next(json.loads(m.data) for m in reversed(listener.received(OUT))
                   if json.loads(m.data)['width'] == size[0])
    assert (payload['width'], payload['height']) == size
    return payload['detections']


def test_only_the_model_set_gives_ultralytics_answers(user_model_node, fetched_models,
                                                      ultralytics_reference):
    listener, node, logs = user_model_node
    entry = ultralytics_reference['models']['fall']
    for photo, size, batch, people in (('bus.jpg', (810, 1080), entry['batches'][0], BUS_PEOPLE),
                                       ('zidane.jpg', (1280, 720), entry['batches'][1],
                                        ZIDANE_PEOPLE)):
        found = detections_of(listener, node, logs, fetched_models[photo], size)
        assert found_problems(load_reference(batch[0]), found) == [], found
        assert len([d for d in found if d['class_name'] == 'Normal']) >= len(people)
    # one line at start-up says what was inferred, and from where
    assert 'decoder yolov8 (num_classes=2' in node.output()
    assert "Ultralytics detect export, from the file's metadata" in node.output()
