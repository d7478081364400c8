"""
Which heads of a packed multi-head model run on each frame, each at its own rate.

A packed model shares one backbone (trunk) between its heads: the caller runs the trunk once for
each frame on which ``HeadScheduler.due`` names any head, and only the named heads on its
features, so a frame that no head needs costs nothing. Rates are kept on the frame clock (the
frames' own stamps), not by sleeping, so they hold on average whatever the camera's jitter and
tests can drive a simulated clock.
"""

from collections import deque
from dataclasses import dataclass, replace
import math
import threading
from typing import Deque, Dict, List, Optional

from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.telemetry.rolling_stats import expire

# Credit summed from float frame intervals lands a hair under a whole run (3 x 10 Hz x 1/30 s).
_EPS = 1e-9


@dataclass
class HeadRate:
    """
    How often one head runs.

    ``rate_hz`` or every ``every_n_frames``-th frame; both 0 is every frame.
    """

    name: str
    rate_hz: float = 0.0
    every_n_frames: int = 0
    enabled: bool = True


@dataclass(frozen=True)
class HeadStats:
    target_hz: float  # 0 while disabled
    achieved_hz: float  # over the rolling window, on the frame clock
    runs: int
    skipped: int  # frames seen while enabled on which the head was not due
    enabled: bool


def validate_head(head: HeadRate) -> None:
    rate, n = head.rate_hz, head.every_n_frames
    if not math.isfinite(rate) or rate < 0:
        raise ConfigError(f"head '{head.name}': rate_hz must be a finite number >= 0, got {rate}")
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"head '{head.name}': every_n_frames must be an integer >= 0, got {n}")
    if rate and n:
        raise ConfigError(f"head '{head.name}': set rate_hz or every_n_frames, not both "
                          f'(rate_hz={rate}, every_n_frames={n})')


class _Head:
    """One head's rate, phase and counts."""

    def __init__(self, config: HeadRate):
        self.config = config
        self.credit = 0.0  # fraction of a run earned since the last one (rate heads)
        self.seen = 0  # frames seen since the head was (re-)enabled; 0 means a fresh start
        self.runs = 0
        self.skipped = 0
        self.run_times: Deque[float] = deque()

    def on_frame(self, frame_time: float, dt: float) -> bool:
        due = self._is_due(dt)
        self.seen += 1
        if due:
            self.runs += 1
            self.run_times.append(frame_time)
        else:
            self.skipped += 1
        return due

    def _is_due(self, dt: float) -> bool:
        rate, n = self.config.rate_hz, self.config.every_n_frames
        if self.seen == 0:
            self.credit = 0.0
            return True
        if n:
            return self.seen % n == 0
        if not rate:
            return True
        self.credit += rate * max(dt, 0.0)
        whole = math.floor(self.credit + _EPS)
        if whole < 1:
            return False
        # One run per frame whatever the credit. A gap that held several runs (a stall) drops
        # them and restarts the phase here, so the head keeps its period instead of catching up.
        self.credit = max(0.0, self.credit - 1.0) if whole == 1 else 0.0
        return True

    def stats(self, frame_hz: float, span: float) -> HeadStats:
        config = self.config
        if not config.enabled:
            target = 0.0
        elif config.rate_hz:
            target = config.rate_hz
        else:
            target = frame_hz / (config.every_n_frames or 1)
        achieved = len(self.run_times) / span if span > 0 else 0.0
        return HeadStats(target, achieved, self.runs, self.skipped, config.enabled)


class HeadScheduler:
    """
    Decides per frame which heads are due; thread-safe.

    A rate head earns ``rate_hz x (frame interval)`` credit per frame and runs when it holds a
    whole run; the fraction left over carries to the next frame, so jitter and dropped frames
    average out, but it never runs twice on one frame or bursts to catch up after a stall. A
    head faster than the camera runs on every frame. Every head is due on the first frame and on
    the first frame after it is re-enabled; a disabled head earns nothing.
    """

    def __init__(self, heads: List[HeadRate], window_s: float = 10.0):
        if not heads:
            raise ConfigError('heads must list at least one head')
        names = set()
        for head in heads:
            validate_head(head)
            if head.name in names:
                raise ConfigError(f"heads: duplicate head name '{head.name}'")
            names.add(head.name)
        self.window_s = window_s
        self._heads = [_Head(replace(head)) for head in heads]
        self._by_name = {h.config.name: h for h in self._heads}
        self._last: Optional[float] = None
        self._start = 0.0  # first frame of the stream, for rates before a whole window
        self._frame_times: Deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def heads(self) -> List[HeadRate]:
        with self._lock:
            return [replace(h.config) for h in self._heads]

    def due(self, frame_time: float) -> List[str]:
        """
        Return the heads to run on the frame stamped ``frame_time`` (s), in declaration order.

        Run the trunk only when this is non-empty. A frame not newer than the last adds no
        credit; an older one also restarts the rate windows (a replayed or restarted stream).
        """
        with self._lock:
            if self._last is None or frame_time < self._last:
                self._restart_windows(frame_time)
            dt = 0.0 if self._last is None else frame_time - self._last
            self._last = frame_time
            self._frame_times.append(frame_time)
            self._expire(frame_time)
            return [h.config.name for h in self._heads
                    if h.config.enabled and h.on_frame(frame_time, dt)]

    def set_rate(self, name: str, rate_hz: Optional[float] = None,
                 every_n_frames: Optional[int] = None) -> None:
        """
        Set how often ``name`` runs, from the next frame on; its phase carries over.

        At ``rate_hz``, or every ``every_n_frames``-th frame, or (neither) on every frame.
        """
        with self._lock:
            head = self._head(name)
            config = replace(head.config, rate_hz=0.0 if rate_hz is None else rate_hz,
                             every_n_frames=0 if every_n_frames is None else every_n_frames)
            validate_head(config)
            head.config = config

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Re-enabling starts the head afresh: it is due on the next frame."""
        with self._lock:
            head = self._head(name)
            if enabled and not head.config.enabled:
                head.seen = 0
            head.config = replace(head.config, enabled=bool(enabled))

    def stats(self, now: float) -> Dict[str, HeadStats]:
        """Per head, over the last ``window_s`` seconds of the frame clock ending at ``now``."""
        with self._lock:
            self._expire(now)
            span = min(self.window_s, now - self._start) if self._last is not None else 0.0
            frame_hz = len(self._frame_times) / span if span > 0 else 0.0
            return {h.config.name: h.stats(frame_hz, span) for h in self._heads}

    def _head(self, name: str) -> _Head:
        head = self._by_name.get(name)
        if head is None:
            raise ConfigError(f"unknown head '{name}' (known: {', '.join(self._by_name)})")
        return head

    def _restart_windows(self, frame_time: float) -> None:
        self._start = frame_time
        self._frame_times.clear()
        for head in self._heads:
            head.run_times.clear()

    def _expire(self, now: float) -> None:
        for times in [self._frame_times] + [h.run_times for h in self._heads]:
            expire(times, now - self.window_s)
