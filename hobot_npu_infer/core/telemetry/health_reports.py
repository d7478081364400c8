"""
Per-source and per-model statistics, and the status each one reports (OK, WARN, ERROR, STALE).

ROS-free: the ROS layer turns a :class:`StatusReport` into a ``diagnostic_msgs/DiagnosticStatus``
and ``diag_monitor`` reads the same keys back, so the key names below are the contract.
"""

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
import threading
import time
from typing import Callable, Dict, List, Optional

from hobot_npu_infer.core.telemetry.rolling_stats import (
    Clock,
    LatencySummary,
    LatencyWindow,
    RateMeter,
)

STAGES = ('e2e', 'queue_wait', 'preprocess', 'inference', 'postprocess', 'publish')
HEAD_STAGES = ('inference', 'postprocess')  # the stages of each head of a packed model
SUMMARY_FIELDS = ('count', 'mean', 'p50', 'p90', 'p99', 'max')
CLOCK_SKEW = 'clock_skew'  # the cause of frames stamped in the future or long ago


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass
class HealthThresholds:
    expected_rate_hz: float = 0.0  # WARN when the output rate is below; 0 disables
    latency_budget_ms: float = 0.0  # WARN when end-to-end p99 is above; 0 disables
    stale_timeout_s: float = 3.0  # STALE when no input arrived for this long


@dataclass
class StatusReport:
    name: str
    level: Level
    message: str
    values: Dict[str, str] = field(default_factory=dict)


def stage_key(stage: str, stat: str) -> str:
    """'e2e', 'p99' -> 'e2e.p99_ms'; the count has no unit."""
    return f'{stage}.{stat}' if stat == 'count' else f'{stage}.{stat}_ms'


def _fmt(value: float) -> str:
    return f'{value:.2f}'


def summary_values(stage: str, summary: LatencySummary) -> Dict[str, str]:
    """
    Return a stage's latency summary as status values, one key per statistic (see stage_key).

    Every status that reports a latency writes it this way, so diag_monitor reads it back alike.
    """
    values = {}
    for stat in SUMMARY_FIELDS:
        value = getattr(summary, stat)
        values[stage_key(stage, stat)] = str(value) if stat == 'count' else _fmt(value)
    return values


class SourceStats:
    """What happened to one input's frames over a rolling window."""

    def __init__(self, source: str, window_s: float = 10.0, clock: Clock = time.monotonic):
        self.source = source
        self._clock = clock
        self._started = clock()
        self.stages = {s: LatencyWindow(window_s, clock=clock) for s in STAGES}
        self.input_rate = RateMeter(window_s, clock)
        self.output_rate = RateMeter(window_s, clock)
        self._window_s = window_s
        self._recent: Dict[str, RateMeter] = {}  # cause -> its bad frames in the window
        self._lock = threading.Lock()
        self.frames_in = 0
        self.frames_out = 0
        self.dropped_stale = 0
        self.conversion_errors: Counter = Counter()
        self.clock_skew = 0  # frames whose stamp was too far from the receive clock
        self.clock_skew_s = 0.0  # the last one's stamp minus the clock (ahead: positive)
        self.qos_incompatible = ''  # the policy a publisher's QoS last clashed on
        self.paused = ''  # why the node is not taking this input's frames now ('' when it is)
        self.qos_incompatible_count = 0

    def on_received(self) -> None:
        self.input_rate.tick()
        with self._lock:
            self.frames_in += 1

    def on_dropped(self) -> None:
        with self._lock:
            self.dropped_stale += 1

    def on_conversion_error(self, cause: str) -> None:
        """Count a frame refused or not convertible, by cause ('too_large', 'decode', ...)."""
        self._meter(cause).tick()
        with self._lock:
            self.conversion_errors[cause] += 1

    def on_clock_skew(self, ahead_s: float) -> None:
        """Count a frame stamped ``ahead_s`` seconds off the clock (behind: negative)."""
        self._meter(CLOCK_SKEW).tick()
        with self._lock:
            self.clock_skew += 1
            self.clock_skew_s = ahead_s

    def _meter(self, cause: str) -> RateMeter:
        with self._lock:
            meter = self._recent.get(cause)
            if meter is None:
                meter = self._recent[cause] = RateMeter(self._window_s, self._clock)
            return meter

    def recent_causes(self, now: Optional[float] = None) -> Dict[str, int]:
        """Return how many frames each cause took within the window, for the causes that did."""
        with self._lock:
            meters = dict(self._recent)
        counts = {cause: meter.count(now) for cause, meter in sorted(meters.items())}
        return {cause: n for cause, n in counts.items() if n}

    def on_qos_incompatible(self, policy: str, total: int) -> None:
        """Record that a publisher on this input offers a QoS our subscription cannot match."""
        with self._lock:
            self.qos_incompatible = policy
            self.qos_incompatible_count = total

    def on_paused(self, why: str) -> None:
        """Record that the node stopped taking this input's frames, for ``why`` ('': resumed)."""
        with self._lock:
            self.paused = why

    def clear_qos_incompatible(self) -> None:
        """No incompatible publisher remains (the graph says so): stop reporting one."""
        with self._lock:
            self.qos_incompatible = ''

    def on_published(self, stage_ms: Dict[str, float]) -> None:
        now = self._clock()
        self.output_rate.tick(now)
        for stage, ms in stage_ms.items():
            self.stages[stage].add(ms, now)
        with self._lock:
            self.frames_out += 1

    def report(self, name: str, thresholds: HealthThresholds,
               model_error: Optional[str] = None) -> StatusReport:
        now = self._clock()
        with self._lock:
            values = {'frames_in': str(self.frames_in), 'frames_out': str(self.frames_out),
                      'dropped_stale': str(self.dropped_stale),
                      'conversion_errors': str(sum(self.conversion_errors.values())),
                      CLOCK_SKEW: str(self.clock_skew)}
            values.update({f'conversion_errors.{cause}': str(n)
                           for cause, n in sorted(self.conversion_errors.items())})
            if self.clock_skew:
                values['clock_skew.last_ahead_s'] = f'{self.clock_skew_s:.3f}'
            qos, paused = self.qos_incompatible, self.paused
            values['input_paused'] = str(bool(paused)).lower()
            if qos:
                values['qos_incompatible_policy'] = qos
                values['qos_incompatible_count'] = str(self.qos_incompatible_count)
        rate_in, rate_out = self.input_rate.rate_hz(now), self.output_rate.rate_hz(now)
        values['input_rate_hz'] = _fmt(rate_in)
        values['output_rate_hz'] = _fmt(rate_out)
        summaries = {s: w.summary(now) for s, w in self.stages.items()}
        for stage, summary in summaries.items():
            values.update(summary_values(stage, summary))
        level, message = self._level(now, thresholds, model_error, rate_out, summaries['e2e'].p99,
                                     summaries['e2e'].p50)
        if paused:  # not listening: STALE stays STALE, and says why
            message = f'{message}; {paused}'
            level = Level.WARN if level == Level.OK else level
        if qos:  # silent no-output has a cause worth naming: a publisher we cannot match
            clash = f'incompatible QoS with a publisher of {self.source}: {qos}'
            if level == Level.STALE:  # nothing arrives: STALE, and why it may be
                message = f'{message}; {clash}'
            elif level == Level.OK:
                level, message = Level.WARN, f'{clash} ({message})'
        return StatusReport(name, level, message, values)

    def _level(self, now, thresholds, model_error, rate_out, e2e_p99, e2e_p50):
        last = self.input_rate.last_event()
        idle = now - (last if last is not None else self._started)
        if idle > thresholds.stale_timeout_s:
            return Level.STALE, (f'no input for {idle:.1f} s' if last is not None
                                 else f'no input received yet ({idle:.1f} s)')
        if model_error:
            return Level.ERROR, f'backend failing: {model_error}'
        warnings: List[str] = []
        if thresholds.expected_rate_hz > 0 and rate_out < thresholds.expected_rate_hz:
            warnings.append(f'output {rate_out:.1f} Hz below expected '
                            f'{thresholds.expected_rate_hz:.1f} Hz')
        if thresholds.latency_budget_ms > 0 and e2e_p99 > thresholds.latency_budget_ms:
            warnings.append(f'e2e p99 {e2e_p99:.1f} ms over budget '
                            f'{thresholds.latency_budget_ms:.1f} ms')
        recent = self.recent_causes(now)
        skewed = recent.pop(CLOCK_SKEW, 0)
        if recent:
            warnings.append(f'{sum(recent.values())} bad frame(s) in the last '
                            f'{self._window_s:g} s ('
                            + ', '.join(f'{cause}: {n}' for cause, n in recent.items()) + ')')
        if skewed:
            with self._lock:
                ahead = self.clock_skew_s
            warnings.append(f'{CLOCK_SKEW}: {skewed} frame(s) in the last {self._window_s:g} s '
                            f'stamped too far from this clock (last {abs(ahead):.3f} s '
                            f'{"ahead" if ahead > 0 else "behind"}); their latency is not '
                            f'counted')
        if warnings:
            return Level.WARN, '; '.join(warnings)
        return Level.OK, f'{rate_out:.1f} Hz out, e2e p50 {e2e_p50:.1f} ms'


class ModelStats:
    """
    Runs, batches and failures of one model; a failure stays current until the next good run.

    A run of ``slots`` batch slots holding ``images`` real images pads ``slots - images``
    (fixed-batch models); the busy fraction is inference time over wall time and runtimes.
    """

    def __init__(self, model: str, window_s: float = 10.0, clock: Clock = time.monotonic,
                 runtimes: int = 1):
        self.model = model
        self.window_s = window_s
        self.runtimes = runtimes
        self._clock = clock
        self._started = clock()
        self.inference = LatencyWindow(window_s, clock=clock)
        self.batch_sizes = LatencyWindow(window_s, clock=clock)
        self.batch_slots = LatencyWindow(window_s, clock=clock)
        self._lock = threading.Lock()
        self.runs = 0
        self.reloads = 0
        self.padding_slots = 0
        self.cpu_s: Dict[str, float] = {}  # stage -> the node's threads' CPU in it, since start
        self.backend_errors = 0
        self.last_error = ''
        self.failing = False
        self.npu_load: Callable[[], Optional[Dict[str, float]]] = lambda: None  # the backend's

    def on_run(self, inference_ms: float, images: int = 1, slots: int = 1,
               cpu_ms: Optional[Dict[str, float]] = None) -> None:
        now = self._clock()
        self.inference.add(inference_ms, now)
        self.batch_sizes.add(images, now)
        self.batch_slots.add(slots, now)
        with self._lock:
            self.runs += 1
            for stage, ms in (cpu_ms or {}).items():
                self._add_cpu(stage, ms)
            self.padding_slots += max(0, slots - images)
            self.failing = False

    def on_cpu(self, stage: str, ms: float) -> None:
        """Count ``ms`` of a thread's CPU time in ``stage`` (tracking, publishing)."""
        with self._lock:
            self._add_cpu(stage, ms)

    def _add_cpu(self, stage: str, ms: float) -> None:
        self.cpu_s[stage] = self.cpu_s.get(stage, 0.0) + ms / 1e3

    def on_reload(self) -> None:
        with self._lock:
            self.reloads += 1

    def on_error(self, message: str) -> None:
        with self._lock:
            self.backend_errors += 1
            self.last_error = message
            self.failing = True

    def current_error(self) -> Optional[str]:
        with self._lock:
            return self.last_error if self.failing else None

    def report(self, name: str, extra: Optional[Dict[str, str]] = None) -> StatusReport:
        now = self._clock()
        summary = self.inference.summary(now)
        sizes, slots = self.batch_sizes.summary(now), self.batch_slots.summary(now)
        with self._lock:
            values = {'model': self.model, 'runs': str(self.runs),
                      'backend_errors': str(self.backend_errors), 'last_error': self.last_error,
                      'padding_slots': str(self.padding_slots), 'reloads': str(self.reloads),
                      **{f'cpu_s.{stage}': f'{s:.3f}' for stage, s in sorted(self.cpu_s.items())}}
            failing = self.failing
        values.update(summary_values('inference', summary))
        span = min(self.window_s, now - self._started)
        busy = summary.count * summary.mean / 1e3 / (span * self.runtimes) if span > 0 else 0.0
        values.update({
            'batch_size.mean': _fmt(sizes.mean), 'batch_size.p50': _fmt(sizes.p50),
            'batch_size.max': _fmt(sizes.max),
            'batch_fill_ratio': _fmt(sizes.mean / slots.mean if slots.mean else 0.0),
            'runtimes': str(self.runtimes), 'runtime_busy_fraction': _fmt(min(1.0, busy))})
        load = self.npu_load()
        values.update({f'npu_load.{core}': _fmt(percent)
                       for core, percent in (load or {}).items()})
        values.update(extra or {})
        if failing:
            return StatusReport(name, Level.ERROR, f'backend failing: {values["last_error"]}',
                                values)
        npu = f', NPU {max(load.values()):.0f} %' if load else ''
        return StatusReport(name, Level.OK, f'{self.runs} runs, inference p50 '
                                            f'{summary.p50:.1f} ms{npu}', values)
