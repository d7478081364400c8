"""
Rolling statistics, health reports and log throttling.

Rolling statistics, per-source and per-model health reports, and log throttling, on fake
clocks.
"""

from hobot_npu_infer.core.telemetry.health_reports import (
    HealthThresholds,
    Level,
    ModelStats,
    SourceStats,
    stage_key,
    STAGES,
    SUMMARY_FIELDS,
    summary_values,
)
from hobot_npu_infer.core.telemetry.log_throttle import LogThrottle
from hobot_npu_infer.core.telemetry.rolling_stats import (
    EMPTY_SUMMARY,
    LatencyWindow,
    RateMeter,
    summarize,
)
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest


class FakeClock:

    def __init__(self, t=0.0):
        self.t = float(t)

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def all_stages(ms):
    return {stage: ms for stage in STAGES}


# --- summarize, LatencyWindow, RateMeter ---------------------------------------------------------

def expected_summary(values):
    values = np.asarray(values, np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return values.size, values.mean(), p50, p90, p99, values.max()


def as_tuple(summary):
    return tuple(getattr(summary, f) for f in SUMMARY_FIELDS)


def test_summarize_matches_numpy_on_known_data():
    values = list(range(1, 101))  # 1..100 ms
    summary = summarize(values)
    assert summary.count == 100
    assert summary.mean == pytest.approx(50.5)
    assert summary.p50 == pytest.approx(50.5)
    assert summary.p90 == pytest.approx(90.1)
    assert summary.p99 == pytest.approx(99.01)
    assert summary.max == 100
    assert as_tuple(summary) == pytest.approx(expected_summary(values))


def test_summarize_of_nothing_is_the_empty_summary():
    assert summarize([]) == EMPTY_SUMMARY
    assert as_tuple(EMPTY_SUMMARY) == (0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_summary_as_dict_has_the_summary_fields():
    summary = summarize([3.0, 1.0, 2.0])
    assert list(summary.as_dict()) == list(SUMMARY_FIELDS)
    assert summary.as_dict()['max'] == 3.0


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_summarize_matches_numpy_on_any_data(values):
    summary = summarize(values)
    assert isinstance(summary.count, int)
    assert as_tuple(summary) == pytest.approx(expected_summary(values), rel=1e-9, abs=1e-9)
    assert summary.p50 <= summary.p90 <= summary.p99 <= summary.max


def test_latency_window_summarises_only_the_last_window_of_samples():
    clock = FakeClock(100.0)
    window = LatencyWindow(10.0, clock=clock)
    for value in (1000.0, 2000.0):  # two slow samples, soon to expire
        window.add(value)
    clock.advance(5)
    recent = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    for value in recent:
        window.add(value)
    assert window.summary().count == 12
    assert as_tuple(window.summary()) == pytest.approx(expected_summary([1000.0, 2000.0] + recent))
    clock.advance(6)  # t=111: the samples of t=100 are older than 10 s
    assert as_tuple(window.summary()) == pytest.approx(expected_summary(recent))
    clock.advance(5)  # t=116: everything is older than 10 s
    assert window.summary() == EMPTY_SUMMARY


def test_latency_window_takes_explicit_times():
    window = LatencyWindow(10.0, clock=FakeClock(0.0))
    window.add(50.0, now=0.0)
    window.add(70.0, now=8.0)
    assert window.summary(now=9.0).count == 2
    assert window.summary(now=15.0).count == 1
    assert window.summary(now=15.0).max == 70.0
    assert window.summary(now=18.5) == EMPTY_SUMMARY


def test_latency_window_keeps_at_most_max_samples():
    window = LatencyWindow(10.0, max_samples=5, clock=FakeClock(0.0))
    for value in range(20):
        window.add(float(value))
    summary = window.summary()
    assert summary.count == 5
    assert summary.max == 19.0
    assert summary.mean == pytest.approx(17.0)


def test_rate_meter_counts_events_per_second_over_its_window():
    clock = FakeClock(0.0)
    meter = RateMeter(10.0, clock)
    assert meter.rate_hz() == 0.0  # no time has passed
    assert meter.last_event() is None
    for _ in range(40):  # 4 Hz for 10 s
        clock.advance(0.25)
        meter.tick()
    assert meter.rate_hz() == pytest.approx(4.0)
    assert meter.last_event() == pytest.approx(10.0)
    for _ in range(10):  # then 1 Hz for 10 s: the 4 Hz events leave the window
        clock.advance(1.0)
        meter.tick()
    clock.advance(0.5)  # t=20.5: the window holds the ticks of t=11..20
    assert meter.rate_hz() == pytest.approx(1.0)
    clock.advance(30.0)
    assert meter.rate_hz() == 0.0


def test_rate_meter_divides_by_the_time_elapsed_before_a_full_window():
    clock = FakeClock(50.0)
    meter = RateMeter(10.0, clock)
    clock.advance(1.0)
    meter.tick()
    clock.advance(1.0)
    meter.tick()
    assert meter.rate_hz() == pytest.approx(1.0)  # 2 events in the 2 s since it started
    assert meter.rate_hz(now=54.0) == pytest.approx(0.5)


def test_rate_meter_remembers_the_last_event_after_it_left_the_window():
    clock = FakeClock(0.0)
    meter = RateMeter(10.0, clock)
    meter.tick(now=3.0)
    assert meter.rate_hz(now=30.0) == 0.0
    assert meter.last_event() == 3.0


def test_rate_meter_counts_the_events_in_its_window():
    clock = FakeClock(0.0)
    meter = RateMeter(10.0, clock)
    clock.advance(0.5)  # long before a full window: a count, not a rate times the window
    meter.tick()
    assert meter.count() == 1
    for t in (2.0, 4.0, 6.0):
        meter.tick(now=t)
    assert meter.count(now=6.0) == 4
    assert meter.count(now=13.0) == 2  # the ticks of 0.5 and 2.0 are older than 10 s
    assert meter.count(now=100.0) == 0


# --- SourceStats ---------------------------------------------------------------------------------

THRESHOLDS = HealthThresholds(expected_rate_hz=0.0, latency_budget_ms=0.0, stale_timeout_s=3.0)


def feed(stats, clock, seconds, rate_hz=10.0, e2e_ms=20.0, publish=True):
    """Frames in (and out) at ``rate_hz`` for ``seconds``."""
    for _ in range(int(round(seconds * rate_hz))):
        clock.advance(1.0 / rate_hz)
        stats.on_received()
        if publish:
            stats.on_published(dict(all_stages(5.0), e2e=e2e_ms))


def make_stats(window_s=10.0):
    clock = FakeClock(1000.0)
    return SourceStats('/cam', window_s, clock), clock


def test_stale_before_any_input_once_the_stale_timeout_has_passed():
    stats, clock = make_stats()
    clock.advance(2.9)
    assert stats.report('cam', THRESHOLDS).level == Level.OK
    clock.advance(0.2)
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.STALE
    assert report.message.startswith('no input received yet')
    assert '3.1 s' in report.message


@pytest.mark.parametrize('window_s, stale_timeout_s, ok_after_s, stale_after_s', [
    (10.0, 3.0, 0.0, 3.5),  # input stops
    (10.0, 3.0, 0.0, 25.0),  # the message still names the last input, long after the window
    (5.0, 20.0, 15.0, 21.0),  # silent longer than the window, not yet for the stale timeout
])
def test_stale_once_input_stopped_for_the_stale_timeout(window_s, stale_timeout_s, ok_after_s,
                                                        stale_after_s):
    stats, clock = make_stats(window_s=window_s)
    thresholds = HealthThresholds(stale_timeout_s=stale_timeout_s)
    feed(stats, clock, 5.0)
    clock.advance(ok_after_s)
    assert stats.report('cam', thresholds).level == Level.OK
    clock.advance(stale_after_s - ok_after_s)
    report = stats.report('cam', thresholds)
    assert report.level == Level.STALE
    assert report.message == f'no input for {stale_after_s:.1f} s'


def test_error_when_the_model_is_failing():
    stats, clock = make_stats()
    feed(stats, clock, 2.0)
    report = stats.report('cam', THRESHOLDS, model_error='RuntimeError: device lost')
    assert report.level == Level.ERROR
    assert 'RuntimeError: device lost' in report.message


def test_ok_with_input_flowing_and_no_thresholds():
    stats, clock = make_stats()
    feed(stats, clock, 10.0, rate_hz=10.0, e2e_ms=20.0)
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.OK
    assert report.name == 'cam'
    assert report.message == '10.0 Hz out, e2e p50 20.0 ms'


def test_warn_when_the_output_rate_is_below_the_expected_rate():
    stats, clock = make_stats()
    feed(stats, clock, 10.0, rate_hz=5.0)
    assert stats.report('cam', HealthThresholds(expected_rate_hz=4.0)).level == Level.OK
    report = stats.report('cam', HealthThresholds(expected_rate_hz=8.0))
    assert report.level == Level.WARN
    assert 'output 5.0 Hz below expected 8.0 Hz' in report.message


def test_warn_when_frames_come_in_but_none_go_out():
    stats, clock = make_stats()
    feed(stats, clock, 10.0, rate_hz=10.0, publish=False)
    report = stats.report('cam', HealthThresholds(expected_rate_hz=5.0))
    assert report.level == Level.WARN
    assert 'output 0.0 Hz below expected 5.0 Hz' in report.message


def test_warn_when_e2e_p99_is_over_the_latency_budget():
    stats, clock = make_stats()
    feed(stats, clock, 5.0, e2e_ms=80.0)
    assert stats.report('cam', HealthThresholds(latency_budget_ms=100.0)).level == Level.OK
    feed(stats, clock, 1.0, e2e_ms=250.0)  # 10 slow frames out of 60: p99 is slow
    report = stats.report('cam', HealthThresholds(latency_budget_ms=100.0))
    assert report.level == Level.WARN
    assert 'e2e p99 250.0 ms over budget 100.0 ms' in report.message


def test_several_warnings_are_joined_in_one_message():
    stats, clock = make_stats()
    feed(stats, clock, 10.0, rate_hz=2.0, e2e_ms=500.0)
    report = stats.report('cam', HealthThresholds(expected_rate_hz=5.0, latency_budget_ms=100.0))
    assert report.level == Level.WARN
    assert 'below expected' in report.message and 'over budget' in report.message
    assert '; ' in report.message


def test_warn_on_recent_conversion_errors_then_ok_once_they_leave_the_window():
    stats, clock = make_stats(window_s=10.0)
    feed(stats, clock, 1.0)
    stats.on_conversion_error('encoding')
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.WARN
    assert report.message == '1 bad frame(s) in the last 10 s (encoding: 1)'
    feed(stats, clock, 5.0)
    stats.on_conversion_error('encoding')
    stats.on_conversion_error('size')
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.WARN
    assert report.message == '3 bad frame(s) in the last 10 s (encoding: 2, size: 1)'
    feed(stats, clock, 10.5)  # input keeps flowing; the errors age out of the 10 s window
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.OK
    assert report.values['conversion_errors'] == '3'  # the totals are kept


def test_a_warn_names_only_the_causes_within_the_window():
    stats, clock = make_stats(window_s=10.0)
    stats.on_conversion_error('encoding')
    feed(stats, clock, 8.0)
    stats.on_conversion_error('too_large')
    feed(stats, clock, 3.0)  # the encoding error has left the window, too_large has not
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.WARN
    assert report.message == '1 bad frame(s) in the last 10 s (too_large: 1)'
    assert report.values['conversion_errors.encoding'] == '1'  # totals stay


def test_clock_skew_is_its_own_cause_and_leaves_the_latency_alone():
    stats, clock = make_stats(window_s=10.0)
    feed(stats, clock, 2.0, e2e_ms=20.0)
    stats.on_clock_skew(3600.0)
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.WARN
    assert report.message.startswith(
        'clock_skew: 1 frame(s) in the last 10 s stamped too far from this clock (last '
        '3600.000 s ahead)')
    assert report.values['clock_skew'] == '1'
    assert report.values['clock_skew.last_ahead_s'] == '3600.000'
    assert report.values['conversion_errors'] == '0'  # a skewed frame is not a bad frame
    assert report.values['e2e.max_ms'] == '20.00'
    feed(stats, clock, 10.5)
    assert stats.report('cam', THRESHOLDS).level == Level.OK


def test_stale_takes_precedence_over_an_incompatible_qos_and_names_it():
    stats, clock = make_stats()
    feed(stats, clock, 2.0)
    stats.on_qos_incompatible('RELIABILITY', 1)
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.WARN
    assert report.message.startswith('incompatible QoS with a publisher of /cam: RELIABILITY')
    clock.advance(THRESHOLDS.stale_timeout_s + 1.0)
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.STALE
    assert report.message.startswith('no input for ')
    assert report.message.endswith('; incompatible QoS with a publisher of /cam: RELIABILITY')
    stats.clear_qos_incompatible()  # the graph has no incompatible publisher any more
    report = stats.report('cam', THRESHOLDS)
    assert report.level == Level.STALE and 'QoS' not in report.message
    assert 'qos_incompatible_policy' not in report.values


def test_report_values_hold_every_key_of_the_contract():
    stats, clock = make_stats()
    stats.on_received()
    report = stats.report('cam', THRESHOLDS)
    expected = {stage_key(stage, stat) for stage in STAGES for stat in SUMMARY_FIELDS}
    expected |= {'frames_in', 'frames_out', 'dropped_stale', 'conversion_errors',
                 'clock_skew', 'input_paused', 'input_rate_hz', 'output_rate_hz'}
    assert set(report.values) == expected  # no per-cause key before the first error
    assert all(isinstance(v, str) for v in report.values.values())
    assert report.values['e2e.count'] == '0'
    assert report.values['e2e.p99_ms'] == '0.00'


def test_report_values_count_what_happened():
    stats, clock = make_stats()
    feed(stats, clock, 10.0, rate_hz=10.0, e2e_ms=20.0)  # 100 frames in and out
    for _ in range(5):  # 5 more in, each replaced before it was taken
        stats.on_received()
        stats.on_dropped()
    stats.on_conversion_error('encoding')
    stats.on_conversion_error('encoding')
    stats.on_conversion_error('size')
    values = stats.report('cam', THRESHOLDS).values
    assert values['frames_in'] == '105'
    assert values['frames_out'] == '100'
    assert values['dropped_stale'] == '5'
    assert values['conversion_errors'] == '3'
    assert values['conversion_errors.encoding'] == '2'
    assert values['conversion_errors.size'] == '1'
    assert values['input_rate_hz'] == '10.50'  # 105 received in the last 10 s
    assert values['output_rate_hz'] == '10.00'  # 100 published in the last 10 s
    for stage in STAGES:
        for stat in SUMMARY_FIELDS:
            assert stage_key(stage, stat) in values
    assert values['e2e.count'] == '100'
    assert values['e2e.p50_ms'] == '20.00'
    assert values['inference.max_ms'] == '5.00'
    assert values['publish.mean_ms'] == '5.00'


def test_stage_key_names():
    assert stage_key('e2e', 'p99') == 'e2e.p99_ms'
    assert stage_key('inference', 'mean') == 'inference.mean_ms'
    assert stage_key('e2e', 'count') == 'e2e.count'


def test_summary_values_give_each_statistic_its_key_and_two_decimals():
    assert summary_values('inference', summarize([1.0, 2.0, 4.0])) == {
        'inference.count': '3', 'inference.mean_ms': '2.33', 'inference.p50_ms': '2.00',
        'inference.p90_ms': '3.60', 'inference.p99_ms': '3.96', 'inference.max_ms': '4.00'}
    assert summary_values('e2e', EMPTY_SUMMARY) == {
        stage_key('e2e', stat): '0' if stat == 'count' else '0.00' for stat in SUMMARY_FIELDS}


def test_source_and_model_reports_write_their_latencies_as_summary_values():
    stats, clock = make_stats()
    feed(stats, clock, 2.0, rate_hz=10.0, e2e_ms=20.0)
    report = stats.report('cam', THRESHOLDS)
    for stage, window in stats.stages.items():
        assert summary_values(stage, window.summary(clock())).items() <= report.values.items()
    model = ModelStats('m', clock=clock)
    model.on_run(7.5)
    assert summary_values('inference', model.inference.summary(clock())).items() <= \
        model.report('m: model').values.items()


# --- ModelStats ----------------------------------------------------------------------------------

def test_model_stats_add_up_the_cpu_of_each_stage_since_start():
    stats = ModelStats('m', clock=FakeClock(0.0))
    assert not any(k.startswith('cpu_s.') for k in stats.report('m: model').values)
    stats.on_run(12.0, cpu_ms={'inference': 1500.0, 'decode': 250.0})
    stats.on_run(12.0, cpu_ms={'inference': 500.0, 'decode': 250.0})
    stats.on_cpu('publish', 125.0)
    values = stats.report('m: model').values
    assert (values['cpu_s.inference'], values['cpu_s.decode'], values['cpu_s.publish']) == \
        ('2.000', '0.500', '0.125')


def test_model_stats_fail_until_the_next_good_run():
    clock = FakeClock(0.0)
    stats = ModelStats('yolov8n', 10.0, clock)
    assert stats.current_error() is None
    assert stats.report('model').level == Level.OK
    stats.on_run(12.0)
    stats.on_error('RuntimeError: device lost')
    assert stats.failing
    assert stats.current_error() == 'RuntimeError: device lost'
    report = stats.report('model')
    assert report.level == Level.ERROR
    assert 'RuntimeError: device lost' in report.message
    stats.on_error('RuntimeError: still lost')
    assert stats.current_error() == 'RuntimeError: still lost'
    stats.on_run(10.0)
    assert not stats.failing
    assert stats.current_error() is None
    report = stats.report('model', {'backend': 'onnxruntime'})
    assert report.level == Level.OK
    assert report.values['runs'] == '2'
    assert report.values['backend_errors'] == '2'
    assert report.values['last_error'] == 'RuntimeError: still lost'  # kept for the record
    assert report.values['model'] == 'yolov8n'
    assert report.values['backend'] == 'onnxruntime'
    assert report.values['inference.count'] == '2'
    assert report.values['inference.mean_ms'] == '11.00'
    assert {stage_key('inference', s) for s in SUMMARY_FIELDS} <= set(report.values)


def test_model_stats_inference_window_expires_on_its_clock():
    clock = FakeClock(0.0)
    stats = ModelStats('m', 10.0, clock)
    stats.on_run(100.0)
    clock.advance(11.0)
    stats.on_run(5.0)
    values = stats.report('model').values
    assert values['inference.count'] == '1'
    assert values['inference.max_ms'] == '5.00'
    assert values['runs'] == '2'


# --- LogThrottle ---------------------------------------------------------------------------------

def test_log_throttle_admits_the_first_then_one_per_period_with_the_suppressed_count():
    clock = FakeClock(0.0)
    throttle = LogThrottle(30.0, clock)
    assert throttle.admit('cam1') == (True, 0)
    for t in (1.0, 10.0, 29.9):
        clock.t = t
        assert throttle.admit('cam1') == (False, 0)
    clock.t = 30.0
    assert throttle.admit('cam1') == (True, 3)
    clock.t = 31.0
    assert throttle.admit('cam1') == (False, 0)
    clock.t = 100.0
    assert throttle.admit('cam1') == (True, 1)
    clock.t = 200.0
    assert throttle.admit('cam1') == (True, 0)  # nothing suppressed in between


def test_log_throttle_keys_are_independent():
    clock = FakeClock(0.0)
    throttle = LogThrottle(30.0, clock)
    assert throttle.admit(('cam1', 'encoding')) == (True, 0)
    assert throttle.admit(('cam1', 'size')) == (True, 0)
    assert throttle.admit(('cam2', 'encoding')) == (True, 0)
    assert throttle.admit(('cam1', 'encoding')) == (False, 0)
    clock.t = 30.0
    assert throttle.admit(('cam1', 'encoding')) == (True, 1)
    assert throttle.admit(('cam1', 'size')) == (True, 0)


def test_log_throttle_takes_an_explicit_time():
    throttle = LogThrottle(5.0, FakeClock(1e9))  # the clock is not used when now is given
    assert throttle.admit('k', now=0.0) == (True, 0)
    assert throttle.admit('k', now=4.0) == (False, 0)
    assert throttle.admit('k', now=5.0) == (True, 1)


def test_model_status_carries_the_npu_load_where_the_board_exposes_it():
    stats = ModelStats('m', clock=FakeClock())
    stats.on_run(10.0)
    assert not any(k.startswith('npu_load') for k in stats.report('m: model').values)
    stats.npu_load = lambda: {'core0': 12.0, 'core1': 80.0, 'core2': 0.0}
    report = stats.report('m: model')
    assert report.values['npu_load.core1'] == '80.00' and report.message.endswith('NPU 80 %')
