"""model_info lists what a model file holds, and how a split shares the compute."""

import json
import subprocess
import sys

from conftest import REPO


def model_info(*args):
    return subprocess.run([sys.executable, '-m', 'hobot_npu_infer.tools.model_info', *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_lists_inputs_outputs_and_batch():
    proc = model_info('centerface')
    assert proc.returncode == 0, proc.stderr
    assert 'batch dynamic' in proc.stdout
    assert 'input  input.1 [?,3,?,?] float32 NCHW' in proc.stdout
    assert 'output 540 [?,10,?,?] float32' in proc.stdout


def test_split_shows_trunk_cuts_and_shares():
    proc = model_info('centerface', '--heads', 'faces=537,538,539;landmarks=540', '--json',
                      '--input-size', '320x256')
    assert proc.returncode == 0, proc.stderr
    split = json.loads(proc.stdout)['split']
    assert split['cut_tensors'] and split['trunk_nodes'] > 100
    assert set(split['heads']) == {'faces', 'landmarks'}
    assert split['heads']['faces']['outputs'] == ['537', '538', '539']
    shares = split['compute_share']
    assert abs(sum(shares.values()) - 1.0) < 1e-3 and shares['trunk'] > 0.9


def test_bad_heads_are_one_line_errors():
    proc = model_info('centerface', '--heads', 'faces=537;faces2=999')
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.startswith('error:') and '999' in proc.stderr
    proc = model_info('centerface', '--heads', 'nonsense')
    assert proc.returncode == 2 and 'name=out1,out2' in proc.stderr
