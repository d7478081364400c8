"""
One infer_node serving several cameras.

One infer_node serving several cameras over real DDS: batched results reach their own
topics with their own stamps, and a fixed-batch model pads and reports it.
"""

import json

import cv2
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
from hobot_npu_infer.ros.qos import image_qos
import numpy as np
import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims
import pytest
from ros_harness import cameras_into_infer_node, newest_values, published_frame_ids, stamp_key
from sensor_msgs.msg import Image

TOPICS = [f'/multi/cam{i}/image_raw' for i in range(4)]


def distinct_views():
    """Four different real images, each with the astronaut's face somewhere else."""
    a = load_sample('astronaut')
    mirrored = a[:, ::-1].copy()
    shifted = np.zeros((512, 640, 3), np.uint8)
    shifted[:, 128:] = a
    smaller = np.zeros((512, 512, 3), np.uint8)
    smaller[64:448, 64:448] = cv2.resize(a, (384, 384), interpolation=cv2.INTER_AREA)
    return [a, mirrored, shifted, smaller]


@pytest.fixture(scope='module')
def views(tmp_path_factory):
    directory = tmp_path_factory.mktemp('views')
    paths = []
    for i, image in enumerate(distinct_views()):
        paths.append(str(directory / f'view{i}.png'))
        cv2.imwrite(paths[-1], image)
    return paths


def test_four_cameras_batched_each_result_on_its_own_topic(views, tmp_path):
    reference = DetectionPipeline.from_config(PipelineConfig(input_size=(512, 512)))
    expected = []
    for image in distinct_views():
        [result], _ = reference.detect([image])
        [face] = result.detections
        expected.append(face.box)
    for i in range(4):  # the views really differ
        for j in range(i):
            assert max(abs(a - b) for a, b in zip(expected[i], expected[j])) > 20

    def images(listener):
        for topic in TOPICS:
            listener.subscribe(Image, topic, qos=image_qos('reliable', 10))
    with cameras_into_infer_node(
            tmp_path, TOPICS, {'input_size': '512x512', 'max_batch_size': 4,
                               'max_batch_delay_ms': 50.0},
            views, 4.0, 'infer_multi', 'multi_listener', subscribe=images) as (listener, node):
        assert listener.wait_for(lambda: all(len(listener.received(t)) >= 1 for t in TOPICS))
        counts = {t: len(listener.received(f'{t}/detections')) for t in TOPICS}
        assert listener.wait_for(lambda: all(
            len(listener.received(f'{t}/detections')) >= counts[t] + 3 for t in TOPICS)), \
            node.output()
        for i, topic in enumerate(TOPICS):
            detections = listener.received(f'{topic}/detections')[counts[topic]:]
            stamps = published_frame_ids(listener, topic, max(
                stamp_key(json.loads(m.data)['header']['stamp']) for m in detections))
            first_seen = min(stamps)  # frames before it were published before we listened
            checked = 0
            for msg in detections:
                payload = json.loads(msg.data)
                stamp = stamp_key(payload['header']['stamp'])
                if stamp < first_seen:
                    continue
                checked += 1
                assert stamps.get(stamp) == f'camera_{i}'
                assert payload['header']['frame_id'] == f'camera_{i}'
                [face] = payload['detections']
                assert max(abs(a - b) for a, b in zip(face['box'], expected[i])) < 2.0, topic
            assert checked >= 2
        assert listener.wait_for(lambda: int(newest_values(
            listener, 'infer_multi: model').get('runs', 0)) >= 3)
        values = newest_values(listener, 'infer_multi: model')
        assert float(values['batch_size.max']) >= 2  # frames of several cameras ran together
        assert values['padding_slots'] == '0'  # a dynamic-batch model runs the actual size


def fixed_batch_centerface(path, batch=4, size=(320, 256)) -> str:
    """Fix CenterFace to exactly ``batch`` images of ``size``, as NPU models are compiled."""
    model = onnx.load(resolve_model('centerface').path)
    w, h = size
    outputs = {o.name: [batch, c, h // 4, w // 4]
               for o, c in zip(model.graph.output, (1, 2, 2, 10))}
    fixed = update_inputs_outputs_dims(model, {'input.1': [batch, 3, h, w]}, outputs)
    onnx.save(fixed, str(path))
    return str(path)


def test_fixed_batch_model_fed_by_three_cameras_pads_and_reports_it(tmp_path):
    model_file = fixed_batch_centerface(tmp_path / 'centerface-b4.onnx')
    topics = TOPICS[:3]
    with cameras_into_infer_node(
            tmp_path, topics, {'model': model_file, 'decoder': 'centerface',
                               'class_names': ['face'], 'max_batch_delay_ms': 50.0},
            ['astronaut', 'coffee', 'chelsea'], 4.0, 'infer_fixed',
            'fixed_listener') as (listener, node):
        out = f'{topics[0]}/detections'
        assert listener.wait_for(lambda: len(listener.received(out)) >= 3), node.output()

        def padded():
            values = newest_values(listener, 'infer_fixed: model')
            return values and int(values['padding_slots']) > 0
        assert listener.wait_for(padded), node.output()
        values = newest_values(listener, 'infer_fixed: model')
        assert values['batch'] == 'fixed 4'
        assert float(values['batch_size.max']) <= 3 and float(values['batch_fill_ratio']) <= 0.75
        [face] = json.loads(listener.received(out)[-1].data)['detections']
        assert face['class_name'] == 'face' and face['score'] > 0.8
        for topic in topics[1:]:  # coffee and the cat: no faces, and no cross-talk
            msgs = listener.received(f'{topic}/detections')
            assert msgs and all(json.loads(m.data)['detections'] == [] for m in msgs)


def test_batch_one_export_fed_by_two_cameras_is_made_batchable(tmp_path):
    model_file = fixed_batch_centerface(tmp_path / 'centerface-b1.onnx', batch=1)
    topics = TOPICS[:2]
    with cameras_into_infer_node(
            tmp_path, topics, {'model': model_file, 'decoder': 'centerface',
                               'class_names': ['face'], 'max_batch_delay_ms': 50.0},
            ['astronaut', 'coffee'], 4.0, 'infer_b1', 'b1_listener') as (listener, node):
        assert listener.wait_for(lambda: newest_values(listener, 'infer_b1: model')), \
            node.output()
        assert newest_values(listener, 'infer_b1: model')['batch'] == 'dynamic'
        assert 'batches of up to 2' in node.output()
        assert 'made batchable: batch 1 export rewritten to a dynamic batch' in node.output()
