"""Per-head rates of packed multi-head models, on a simulated frame clock (no sleeping)."""

import random

from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.multi_head.head_scheduler import HeadRate, HeadScheduler, HeadStats
from hypothesis import given, settings, strategies as st
import pytest

FPS = 30.0


def camera(seconds, fps=FPS, start=0.0):
    """Frame stamps of a steady camera; computed per frame so no error builds up."""
    return [start + i / fps for i in range(round(seconds * fps))]


def jittery_camera(seconds, seed, jitter=0.3, drop=0.0, fps=FPS):
    """Intervals of 1/fps +- jitter, each frame lost with probability ``drop``."""
    rng = random.Random(seed)
    stamps, t = [], 0.0
    while t < seconds:
        if rng.random() >= drop:
            stamps.append(t)
        t += rng.uniform(1 - jitter, 1 + jitter) / fps
    return stamps


def run(scheduler, stamps):
    """Which heads ran on each frame, as a list of due-lists."""
    return [scheduler.due(t) for t in stamps]


def runs_of(name, due_lists, stamps=None):
    """Frame indices (or stamps, if given) on which ``name`` ran."""
    return [i if stamps is None else stamps[i] for i, due in enumerate(due_lists) if name in due]


def assert_within(achieved, target, fraction=0.05):
    assert abs(achieved - target) <= fraction * target, (achieved, target)


# --- steady rates ------------------------------------------------------------------------------

def test_heads_hold_their_rates_on_a_steady_camera():
    scheduler = HeadScheduler([HeadRate('seg', 30.0), HeadRate('det', 10.0),
                               HeadRate('pose', 5.0)])
    stamps = camera(20)
    due = run(scheduler, stamps)
    counts = {name: len(runs_of(name, due)) for name in ('seg', 'det', 'pose')}
    assert counts == pytest.approx({'seg': 600, 'det': 200, 'pose': 100}, abs=1)
    assert runs_of('det', due) == list(range(0, 600, 3))
    stats = scheduler.stats(stamps[-1])
    for name, target in (('seg', 30.0), ('det', 10.0), ('pose', 5.0)):
        assert stats[name].target_hz == target
        assert_within(stats[name].achieved_hz, target)
        assert stats[name].runs == counts[name]
        assert stats[name].runs + stats[name].skipped == 600
        assert stats[name].enabled


def test_every_head_is_due_on_the_first_frame_in_declaration_order():
    scheduler = HeadScheduler([HeadRate('b', 0.5), HeadRate('a', every_n_frames=7),
                               HeadRate('c')])
    assert scheduler.due(100.0) == ['b', 'a', 'c']


def test_a_head_faster_than_the_camera_runs_on_every_frame():
    scheduler = HeadScheduler([HeadRate('fast', 50.0), HeadRate('slow', 10.0)])
    stamps = camera(20)
    due = run(scheduler, stamps)
    assert runs_of('fast', due) == list(range(len(stamps)))
    stats = scheduler.stats(stamps[-1])['fast']
    assert stats.target_hz == 50.0
    assert_within(stats.achieved_hz, FPS)
    assert stats.skipped == 0


def test_every_n_frames_runs_on_frames_0_n_2n():
    scheduler = HeadScheduler([HeadRate('lane', every_n_frames=3), HeadRate('all')])
    stamps = camera(10)
    due = run(scheduler, stamps)
    assert runs_of('lane', due) == list(range(0, 300, 3))
    assert runs_of('all', due) == list(range(300))
    stats = scheduler.stats(stamps[-1])
    assert_within(stats['lane'].target_hz, FPS / 3)
    assert_within(stats['lane'].achieved_hz, FPS / 3)
    assert_within(stats['all'].target_hz, FPS)


def test_every_n_frames_counts_frames_not_time():
    scheduler = HeadScheduler([HeadRate('lane', every_n_frames=2)])
    due = run(scheduler, [0.0, 0.01, 5.0, 5.01, 5.02])
    assert runs_of('lane', due) == [0, 2, 4]


# --- jitter, drops and stalls --------------------------------------------------------------------

@pytest.mark.parametrize('drop', [0.0, 0.15])
def test_rates_hold_on_average_through_jitter_and_dropped_frames(drop):
    scheduler = HeadScheduler([HeadRate('det', 10.0), HeadRate('pose', 5.0)])
    stamps = jittery_camera(20, seed=7, drop=drop)
    due = run(scheduler, stamps)
    assert all(len(set(names)) == len(names) for names in due)
    duration = stamps[-1] - stamps[0]
    stats = scheduler.stats(stamps[-1])
    for name, rate in (('det', 10.0), ('pose', 5.0)):
        assert_within(len(runs_of(name, due)) / duration, rate)
        assert_within(stats[name].achieved_hz, rate)


def test_a_stall_does_not_make_a_head_burst_to_catch_up():
    scheduler = HeadScheduler([HeadRate('det', 10.0), HeadRate('pose', 5.0)])
    before, after = camera(5), camera(5, start=7.0)  # no frames for 2 s
    run(scheduler, before)
    first = scheduler.due(after[0])
    assert first == ['det', 'pose']  # once each, though 20 and 10 runs fell in the gap
    due = [first] + run(scheduler, after[1:])
    for name, rate in (('det', 10.0), ('pose', 5.0)):
        times = runs_of(name, due, after)
        assert times[1] - times[0] >= 1 / rate - 1e-9  # the period restarts at the stall
        assert len([t for t in times if t < after[0] + 1.0]) <= rate + 1


# --- runtime changes ---------------------------------------------------------------------------

def test_a_rate_change_takes_effect_from_the_next_frame():
    scheduler = HeadScheduler([HeadRate('det', 10.0)])
    stamps = camera(20)
    first = run(scheduler, stamps[:300])
    scheduler.set_rate('det', rate_hz=2.0)
    second = run(scheduler, stamps[300:])
    assert_within(len(runs_of('det', first)), 100)
    assert_within(len(runs_of('det', second)), 20)
    assert scheduler.heads[0].rate_hz == 2.0


def test_set_rate_switches_between_rate_every_n_and_every_frame():
    scheduler = HeadScheduler([HeadRate('det', 10.0)])
    run(scheduler, camera(1))
    scheduler.set_rate('det', every_n_frames=4)
    assert (scheduler.heads[0].rate_hz, scheduler.heads[0].every_n_frames) == (0.0, 4)
    due = run(scheduler, camera(1, start=1.0))
    assert runs_of('det', due) == [2, 6, 10, 14, 18, 22, 26]  # frames 32, 36, ... since enabled
    scheduler.set_rate('det')
    assert all(run(scheduler, camera(1, start=2.0)))


def test_disabled_heads_are_never_due_and_earn_nothing():
    scheduler = HeadScheduler([HeadRate('det', 10.0), HeadRate('lane', every_n_frames=3),
                               HeadRate('seg')])
    run(scheduler, camera(1))
    for name in ('det', 'lane', 'seg'):
        scheduler.set_enabled(name, False)
    assert run(scheduler, camera(5, start=1.0)) == [[]] * 150  # so the caller runs no trunk
    stats = scheduler.stats(6.0)
    assert stats['det'] == HeadStats(0.0, pytest.approx(10 / 6), 10, 20, False)  # 6 s so far
    assert stats['lane'].runs + stats['lane'].skipped == 30
    scheduler.set_enabled('det', True)
    scheduler.set_enabled('lane', True)
    due = run(scheduler, camera(1, start=6.0))
    assert runs_of('det', due) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]  # fresh, no saved credit
    assert runs_of('lane', due) == list(range(0, 30, 3))
    assert runs_of('seg', due) == []
    assert scheduler.stats(7.0)['det'].skipped == 20 + 20
    assert scheduler.stats(7.0)['seg'].skipped == 0


def test_a_head_declared_disabled_waits_until_enabled():
    scheduler = HeadScheduler([HeadRate('det', 10.0, enabled=False), HeadRate('seg')])
    assert run(scheduler, camera(1)) == [['seg']] * 30
    scheduler.set_enabled('det', True)
    scheduler.set_enabled('det', True)  # already enabled: no fresh start
    assert scheduler.due(1.0) == ['det', 'seg']
    assert scheduler.due(1.0 + 1 / FPS) == ['seg']


def test_heads_returns_copies():
    scheduler = HeadScheduler([HeadRate('det', 10.0)])
    scheduler.heads[0].rate_hz = 99.0
    assert scheduler.heads == [HeadRate('det', 10.0)]


# --- the frame clock ---------------------------------------------------------------------------

def test_frames_that_are_not_newer_add_no_credit():
    scheduler = HeadScheduler([HeadRate('det', 10.0)])
    assert run(scheduler, [1.0] + [1.05] * 10) == [['det']] + [[]] * 10
    assert scheduler.due(1.1) == ['det']


def test_an_older_frame_restarts_the_rate_windows():
    scheduler = HeadScheduler([HeadRate('det', 10.0)])
    run(scheduler, camera(10, start=100.0))
    run(scheduler, camera(2))  # a replayed recording starts over at 0
    stats = scheduler.stats(2.0)['det']
    assert_within(stats.achieved_hz, 10.0)
    assert stats.runs == 100 + 20
    assert_within(scheduler.stats(2.0)['det'].target_hz, 10.0)


def test_stats_before_any_frame_are_zero():
    stats = HeadScheduler([HeadRate('det', 10.0), HeadRate('seg')]).stats(0.0)
    assert (stats['det'].achieved_hz, stats['det'].runs, stats['det'].skipped) == (0.0, 0, 0)
    assert stats['seg'].target_hz == 0.0


def test_achieved_rate_only_counts_the_window():
    scheduler = HeadScheduler([HeadRate('det', 10.0)], window_s=2.0)
    stamps = camera(10)
    run(scheduler, stamps[:150])
    scheduler.set_rate('det', rate_hz=2.0)
    run(scheduler, stamps[150:])
    assert_within(scheduler.stats(stamps[-1])['det'].achieved_hz, 2.0, fraction=0.25)


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize('heads, named', [
    ([], 'heads'),
    ([HeadRate('det', -1.0)], 'rate_hz'),
    ([HeadRate('det', float('nan'))], 'rate_hz'),
    ([HeadRate('det', 10.0, every_n_frames=3)], 'not both'),
    ([HeadRate('det', every_n_frames=-1)], 'every_n_frames'),
    ([HeadRate('det', every_n_frames=2.5)], 'every_n_frames'),
    ([HeadRate('det'), HeadRate('det', 5.0)], "duplicate head name 'det'"),
])
def test_invalid_heads_are_config_errors_naming_the_parameter(heads, named):
    with pytest.raises(ConfigError, match=named) as error:
        HeadScheduler(heads)
    assert '\n' not in str(error.value)


def test_invalid_runtime_changes_are_config_errors_and_change_nothing():
    scheduler = HeadScheduler([HeadRate('det', 10.0)])
    with pytest.raises(ConfigError, match="unknown head 'pose'.*det"):
        scheduler.set_rate('pose', rate_hz=1.0)
    with pytest.raises(ConfigError, match="unknown head 'pose'"):
        scheduler.set_enabled('pose', False)
    with pytest.raises(ConfigError, match="'det': rate_hz"):
        scheduler.set_rate('det', rate_hz=-2.0)
    with pytest.raises(ConfigError, match='not both'):
        scheduler.set_rate('det', rate_hz=2.0, every_n_frames=2)
    assert scheduler.heads == [HeadRate('det', 10.0)]


# --- properties --------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None, database=None)
@given(rates=st.lists(st.floats(0.0, 60.0, exclude_min=True), min_size=1, max_size=4),
       intervals=st.lists(st.floats(1e-4, 0.5), min_size=1, max_size=300),
       start=st.floats(0.0, 1e5))
def test_a_head_runs_at_most_once_per_frame_and_never_beyond_its_rate(rates, intervals, start):
    names = [f'h{i}' for i in range(len(rates))]
    scheduler = HeadScheduler([HeadRate(n, r) for n, r in zip(names, rates)])
    stamps = [start]
    for dt in intervals:
        stamps.append(stamps[-1] + dt)
    due = run(scheduler, stamps)
    assert all(len(set(d)) == len(d) for d in due)
    elapsed = stamps[-1] - stamps[0]
    for name, rate in zip(names, rates):
        runs = len(runs_of(name, due))
        assert runs <= rate * elapsed + 1 + 1e-6
        if all(rate * (b - a) < 1 for a, b in zip(stamps, stamps[1:])):
            assert runs >= rate * elapsed - 1e-6  # no gap held a whole run: no run is lost
