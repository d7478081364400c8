"""
The soak benchmark.

The soak benchmark runs end to end and reports memory, output age and drops (its numbers
are not asserted).
"""

import json
import subprocess
import sys

from conftest import REPO


def test_short_soak_reports_each_interval(tmp_path):
    out = tmp_path / 'soak.json'
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.soak_bench',
                           '--minutes', '0.2', '--interval', '4', '--sources', '2',
                           '--json', str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert len(result['intervals']) >= 2 and result['node_exit_code'] == 0
    assert result['rss_mb_start'] > 0 and result['age_ms_p99_max'] > 0
    assert result['dropped_stale_total'] > 0  # overloaded: stale frames were dropped
    assert 'output age p99 at most' in proc.stdout


def test_short_hostile_soak_reports_the_refused_frames_and_the_baseline(tmp_path):
    out = tmp_path / 'soak.json'
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.soak_bench',
                           '--minutes', '0.2', '--interval', '4', '--sources', '1',
                           '--overload', '0.5', '--hostile', '--json', str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    hostile = result['hostile']
    assert hostile['refused_total'] > 0 and hostile['baseline']['outputs_per_s'] > 0
    assert 'jpeg_bomb=' in hostile['published'] and result['node_exit_code'] == 0
    assert 'frames refused' in proc.stdout
