"""
The multi-head benchmark.

The multi-head benchmark's synthetic model splits exactly, and the command reports every
mode (its numbers are not asserted).
"""

import json
import subprocess
import sys

from conftest import REPO
from hobot_npu_infer.bench.head_bench import RATES, SIZE, synthetic_model
from hobot_npu_infer.core.multi_head.graph_split import HeadSpec, split_model, verify_split
import numpy as np
import onnx


def test_synthetic_model_is_reproducible_and_splits_exactly(tmp_path):
    a = synthetic_model(str(tmp_path / 'a.onnx'))
    b = synthetic_model(str(tmp_path / 'b.onnx'))
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        assert fa.read() == fb.read()  # a fixed seed
    model = onnx.load(a)
    split = split_model(model, [HeadSpec(h, [h]) for h in RATES])
    assert split.trunk is not None and len(split.trunk.graph.node) > 10
    image = np.random.default_rng(1).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    assert verify_split(model, split, {'image': image}) < 1e-4


def test_head_bench_reports_each_mode_and_memory(tmp_path):
    out = tmp_path / 'heads.json'
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.head_bench',
                           '--seconds', '1', '--threads', '1', '--json', str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result['ms_per_second_of_video']) == {'shared', 'separate', 'every_frame'}
    assert result['analytical_minimum_ms'] > 0
    assert result['resident_mb']['shared'] > 0 and result['resident_mb']['separate'] > 0
    assert 'analytical minimum' in proc.stdout
