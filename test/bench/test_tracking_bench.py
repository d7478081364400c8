"""
The tracking benchmark.

Its scene's ground truth is where the sprites were pasted, and the command scores every
configuration end to end on the real detector (behaviour only: numbers are not asserted
beyond what any working tracker does).
"""

import json
import os
import subprocess
import sys

from conftest import REPO
from hobot_npu_infer.bench.tracking_bench import (
    box_iou,
    FPS,
    RATES,
    Scene,
    Sprite,
    Walker,
)
import numpy as np
import pytest


def block_sprite(name, width=40, height=100):
    """Return a person-sized sprite of one colour, its silhouette filling its box."""
    image = np.full((height, width, 3), (40, 200, 240), np.uint8)
    return Sprite(name, image, np.ones((height, width), bool), False, (0, 0, width, height),
                  (0, 0, width, height), 0.9)


def test_ground_truth_is_where_the_sprites_are_pasted(monkeypatch):
    walkers = (Walker('a', 100, (200, 400), (600, 400)),  # left to right
               Walker('b', 100, (600, 420), (200, 420)),  # right to left, in front of a
               Walker('a', 100, (1040, 300), (1040, 300)))  # standing behind the pillar
    monkeypatch.setattr('hobot_npu_infer.bench.tracking_bench.SCRIPT', walkers)
    monkeypatch.setattr('hobot_npu_infer.bench.tracking_bench.BOB_PX', 0.0)
    scene = Scene({'a': block_sprite('a'), 'b': block_sprite('b')}, frames=11, objects=3,
                  seed=0)
    frame, truth = scene.render(0)
    boxes = {t.object_id: t.box for t in truth}
    assert boxes == {0: (180.0, 300.0, 220.0, 400.0), 1: (580.0, 320.0, 620.0, 420.0)}
    x1, y1, x2, y2 = (int(v) for v in boxes[0])
    assert np.abs(frame[y1:y2, x1:x2].astype(int) - (40, 200, 240)).mean() < 4  # noise only
    _, truth = scene.render(5)  # mid-run: b covers a (same size, in front): a is left out
    assert [(t.object_id, t.box) for t in truth] == [(1, (380.0, 320.0, 420.0, 420.0))]
    _, truth = scene.render(10)
    assert {t.object_id: t.box for t in truth} == {0: (580.0, 300.0, 620.0, 400.0),
                                                   1: (180.0, 320.0, 220.0, 420.0)}
    assert all(t.visible == 1.0 for t in truth)


def test_box_iou():
    assert box_iou([(0, 0, 10, 10)], [(5, 0, 15, 10), (20, 20, 30, 30)]).tolist() == \
        [[1 / 3, 0.0]]


def test_tracking_bench_scores_every_configuration(fetched_models, tmp_path):
    out, frames = tmp_path / 'tracking.json', tmp_path / 'frames'
    env = dict(os.environ, HOBOT_NPU_INFER_MODELS=os.path.dirname(fetched_models['bus.jpg']))
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.tracking_bench',
                           '--frames', '24', '--objects', '3', '--agnostic', '--json', str(out),
                           '--save-frames', str(frames)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout[proc.stdout.index('\n{'):]) == result
    assert result['frames'] == 24 and result['detector']['ms_per_frame']['mean'] > 0
    assert result['detector']['agnostic_nms'] and not result['tracker']['per_class']
    rows = {row['config']: row for row in result['rows']}
    assert set(rows) == {'detector only'} | {f'1/{k} {s}' for k in RATES
                                             for s in ('shadow', 'no shadow')}
    for name, row in rows.items():
        assert {'mota', 'idf1', 'id_switches', 'fp', 'fn', 'gt'} <= set(row), name
        assert row['gt'] == rows['detector only']['gt'] > 0
        assert row['mota'] <= 1
        if name != 'detector only':
            assert row['update_ms']['mean'] > 0
            assert (row['predict_ms']['mean'] is not None) == (row['shadow'] and row['every'] > 1)
    # without shadow boxes two frames in three have no output at all
    assert rows['1/3 shadow']['fn'] < rows['1/3 no shadow']['fn']
    assert rows['1/2 shadow']['fn'] < rows['1/2 no shadow']['fn']
    # every frame a detector frame: shadow tracking changes nothing
    assert rows['1/1 shadow']['fn'] == rows['1/1 no shadow']['fn']
    assert rows['1/1 shadow']['id_switches'] <= 3
    assert rows['1/1 shadow']['idf1'] > 0.5
    assert len(list(frames.glob('frame_*.png'))) == len(result['saved_frames']) >= 5
    assert 'MOTA' in proc.stdout and f'{FPS:g} fps' in proc.stdout


@pytest.mark.parametrize('args, message', [
    (['--frames', '1'], '--frames must be >= 2'),
    (['--objects', '0'], '--objects >= 1'),
])
def test_bad_settings_are_one_line_errors(args, message):
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.bench.tracking_bench', *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith('error: ') and message in proc.stderr
