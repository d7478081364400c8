"""Rolling latency and rate statistics for diagnostics and benchmarks; thread-safe."""

from collections import deque
from dataclasses import asdict, dataclass
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, Optional, Tuple

from hobot_npu_infer.core.telemetry.thread_cpu import stat_cpu_s
import numpy as np

Clock = Callable[[], float]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float  # noqa: A003 (public field, also a key of as_dict())

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


EMPTY_SUMMARY = LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)


def summarize(samples: Iterable[float]) -> LatencySummary:
    values = np.fromiter(samples, np.float64)
    if values.size == 0:
        return EMPTY_SUMMARY
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencySummary(int(values.size), float(values.mean()), float(p50), float(p90),
                          float(p99), float(values.max()))


def expire(entries: Deque[Any], horizon: float,
           stamp: Callable[[Any], float] = lambda entry: entry) -> None:
    """
    Drop the entries stamped before ``horizon`` from the front of ``entries``.

    Every rolling window appends entries in time order, so the expired ones are the oldest, at
    the front. ``stamp`` gives an entry's time; by default the entry is its time.
    """
    while entries and stamp(entries[0]) < horizon:
        entries.popleft()


class LatencyWindow:
    """Samples of the last ``window_s`` seconds (at most ``max_samples``), summarised on demand."""

    def __init__(self, window_s: float = 10.0, max_samples: int = 10000,
                 clock: Clock = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._samples: Deque[Tuple[float, float]] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def add(self, value: float, now: Optional[float] = None) -> None:
        with self._lock:
            self._samples.append((self._clock() if now is None else now, value))

    def summary(self, now: Optional[float] = None) -> LatencySummary:
        with self._lock:
            self._expire(self._clock() if now is None else now)
            return summarize(v for _, v in self._samples)

    def _expire(self, now: float) -> None:
        expire(self._samples, now - self.window_s, lambda sample: sample[0])


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 10.0, clock: Clock = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._events: Deque[float] = deque()
        self._last: Optional[float] = None  # kept after the event has left the window
        self._started = clock()
        self._lock = threading.Lock()

    def tick(self, now: Optional[float] = None) -> None:
        with self._lock:
            now = self._clock() if now is None else now
            self._events.append(now)
            self._last = now if self._last is None else max(self._last, now)

    def count(self, now: Optional[float] = None) -> int:
        """How many events the last ``window_s`` seconds hold."""
        now = self._clock() if now is None else now
        with self._lock:
            self._expire(now)
            return len(self._events)

    def rate_hz(self, now: Optional[float] = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            self._expire(now)
            span = min(self.window_s, now - self._started)
            return len(self._events) / span if span > 0 else 0.0

    def last_event(self) -> Optional[float]:
        """Time of the latest event ever ticked, even one older than the window."""
        with self._lock:
            return self._last

    def _expire(self, now: float) -> None:
        expire(self._events, now - self.window_s)


def process_rss_mb(pid='self') -> float:
    """Resident memory of a process (this one by default), from /proc, in MB."""
    with open(f'/proc/{pid}/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:')) / 1024.0


def process_cpu_s(pid='self') -> float:
    """Return the CPU time (user and system) a process has used so far, from /proc, in s."""
    return stat_cpu_s(f'/proc/{pid}/stat')
