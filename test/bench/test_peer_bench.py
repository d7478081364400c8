"""
The peer benchmark: infer_node against the Ultralytics peer, end to end with tiny settings.

It needs the Ultralytics environment and the fetched fall detector (``make test`` makes both);
its numbers are not asserted.
"""

import json
import subprocess
import sys

from conftest import REPO

ROW = {'processes', 'fps', 'fps_per_camera_min', 'latency_ms_p50', 'latency_ms_p99',
       'cpu_ms_per_frame', 'rss_mb', 'frames', 'exit_codes'}


def test_one_round_of_both_scenarios_prints_the_table_and_the_json(ultralytics_python,
                                                                   fetched_models, tmp_path):
    out = tmp_path / 'peer.json'
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.peer_bench',
                           '--rounds', '1', '--seconds', '3', '--peer-python', ultralytics_python,
                           '--model', fetched_models['best_fp16.onnx'], '--json', str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout[proc.stdout.index('\n{') + 1:]) == result
    assert set(result) == {'settings', 'one_camera', 'four_cameras'}
    for name, cameras, peers in (('one_camera', 1, 1), ('four_cameras', 4, 4)):
        scenario = result[name]
        assert scenario['cameras'] == cameras
        assert set(scenario['ours']) == set(scenario['peer']) == ROW
        assert scenario['ours']['processes'] == 1 and scenario['peer']['processes'] == peers
        for side in ('ours', 'peer'):
            assert scenario[side]['frames'] > 0 and scenario[side]['cpu_ms_per_frame'] > 0
            assert scenario[side]['rss_mb'] > 0 and scenario[side]['exit_codes'] == [0]
        assert set(scenario['ours_vs_peer']) == {'fps', 'latency_ms_p50', 'latency_ms_p99',
                                                 'cpu_ms_per_frame', 'rss_mb'}
    assert 'four_cameras | ours/peer | 1/4 |' in proc.stdout
