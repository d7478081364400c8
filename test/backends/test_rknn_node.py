"""
infer_node with the rknn backend, end to end.

infer_node end to end with ``backend: rknn`` in the rknn-toolkit2 simulator, over real DDS:
two cameras batched into one compiled batch of 2, detections and diagnostics as on a board.
"""

import json

from ros_harness import cameras_into_infer_node, newest_status, newest_values

TOPICS = ['/rknn/cam0/image_raw', '/rknn/cam1/image_raw']


def test_infer_node_runs_on_the_rknn_simulator(rknn_simulator, model_cache, tmp_path):
    with cameras_into_infer_node(
            tmp_path, TOPICS, {'backend': 'rknn', 'input_size': '320x320',
                               'backend_options': ['rknn.batch_size=2', 'rknn.target=rk3588'],
                               'max_batch_delay_ms': 200.0},
            ['astronaut', 'coffee'], 2.0, 'infer_rknn', 'rknn_listener') as (listener, node):
        assert listener.wait_for(lambda: all(
            len(listener.received(f'{t}/detections')) >= 2 for t in TOPICS), timeout=180), \
            node.output()
        faces = [json.loads(m.data)['detections']
                 for m in listener.received(f'{TOPICS[0]}/detections')]
        cups = [json.loads(m.data)['detections']
                for m in listener.received(f'{TOPICS[1]}/detections')]
        assert all(len(f) == 1 and f[0]['class_name'] == 'face' for f in faces)
        x1, y1, x2, y2 = faces[-1][0]['box']
        assert 150 < x1 < 220 and 30 < y1 < 100 and 240 < x2 < 300 and 150 < y2 < 210
        assert all(c == [] for c in cups)  # coffee: no face
        assert listener.wait_for(lambda: int(newest_values(
            listener, 'infer_rknn: model').get('runs', 0)) >= 2)
        status = newest_status(listener, 'infer_rknn: model')
        values = {kv.key: kv.value for kv in status.values}
        assert values['backend'] == 'rknn' and values['batch'] == 'fixed 2'
        assert values['backend_errors'] == '0' and status.level == bytes([0])  # OK
    assert 'centerface on rknn (fixed 2 batch, input 320x320,' in node.output()
