"""The benchmark commands run and write what they promise (numbers are not asserted)."""

import json
import subprocess
import sys

from conftest import REPO
from hobot_npu_infer.bench.batch_bench import expand_braces
import pytest


def bench(*args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.batch_bench', *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_brace_sets_expand_like_a_shell():
    assert expand_braces('osnet-batch{1,4,8}.rknn') == \
        ['osnet-batch1.rknn', 'osnet-batch4.rknn', 'osnet-batch8.rknn']
    assert expand_braces('m.onnx') == ['m.onnx']
    assert expand_braces('{a,b}-{1,2}') == ['a-1', 'a-2', 'b-1', 'b-2']


def test_batch_sweep_writes_rows_and_a_plot(tmp_path):
    out, png = tmp_path / 'rows.json', tmp_path / 'plot.png'
    proc = bench('--batch', '1,2', '--runtimes', '1,2', '--input-size', '96x64,128x96',
                 '--seconds', '0.2', '--min-runs', '2', '--threads', '1', '--json', str(out),
                 '--plot', str(png))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert {(r['input_size'], r['batch'], r['runtimes']) for r in rows} == {
        (s, b, r) for s in ('96x64', '128x96') for b in (1, 2) for r in (1, 2)}
    for row in rows:
        assert row['images_per_s'] > 0 and row['ms_per_batch_p99'] >= row['ms_per_batch_p50']
        assert (row['pipeline_ms_per_image'] is None) == (row['runtimes'] > 1)
    assert png.read_bytes()[:4] == b'\x89PNG'
    assert 'ms_per_batch_p50' in proc.stdout


def test_bad_sweep_values_are_one_line_errors():
    proc = bench('--batch', '0,2')
    assert proc.returncode == 2 and proc.stderr.startswith('error: --batch')
    proc = bench('--input-size', '640by480')
    assert proc.returncode == 2 and 'error: size must look like 640x480' in proc.stderr


def test_the_node_benchmark_accounts_for_the_cpu_of_each_frame(tmp_path):
    out = tmp_path / 'node.json'
    proc = bench('--node', '--input-size', '160x128', '--camera-size', '320x240',
                 '--seconds', '3', '--threads', '1', '--json', str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())['320x240']
    for key in ('raw', 'node'):
        assert result[key]['fps'] > 0 and result[key]['latency_ms_p50'] > 0
    assert set(result['node_vs_raw']) == {'latency_p50_added_ms', 'fps_ratio'}
    for load in ('half_load', 'saturation'):
        cpu = result['cpu_ms_per_frame'][load]
        assert cpu['process'] > 0 and cpu['backend'] > 0, cpu
        assert cpu['outside_backend'] == pytest.approx(cpu['process'] - cpu['backend'], abs=0.02)
        # the node's threads named for the OS: each part of the work found by its name
        assert {'receive', 'convert', 'preprocess', 'decode', 'track', 'publish', 'infer_other',
                'executor', 'dds'} <= set(cpu), cpu
        assert cpu['decode'] > 0 and cpu['publish'] > 0, cpu
    assert 'CPU ms/frame' in proc.stdout


def test_the_multi_camera_node_benchmark_runs_end_to_end(tmp_path):
    out = tmp_path / 'node.json'
    proc = bench('--node', '--input-size', '160x128', '--seconds', '1.5', '--threads', '1',
                 '--json', str(out), '--sources', '2', '--rate', '4')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    for key in ('batched', 'unbatched'):
        assert result[key]['fps'] > 0 and result[key]['latency_ms_p50'] > 0


def test_one_head_of_a_packed_model_alone(tmp_path):
    out = tmp_path / 'head.json'
    proc = bench('--heads', 'faces=537,538,539;landmarks=540', '--head', 'landmarks',
                 '--batch', '1', '--input-size', '96x64', '--seconds', '0.2', '--json', str(out),
                 '--plot', str(tmp_path / 'head.png'))
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(out.read_text())
    assert row['model'] == 'centerface:landmarks' and row['images_per_s'] > 0
    proc = bench('--heads', 'faces=537,538,539;landmarks=540', '--head', 'eyes')
    assert proc.returncode == 2 and "--head 'eyes' is not one of faces, landmarks" in proc.stderr
