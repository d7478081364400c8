"""
When to act on repeated failures: reload a failing model, pause an input sending only refusals.

After a few failures in a row, then again with a doubling delay while it keeps failing, so a
broken backend is retried without being hammered.
"""

import threading
import time
from typing import Callable


class ReloadBackoff:
    def __init__(self, after_failures: int = 3, first_delay_s: float = 1.0,
                 max_delay_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.after_failures = after_failures
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0  # in a row
        self.delay_s = first_delay_s
        self._not_before = float('-inf')

    def record_failure(self) -> bool:
        """Count a failed run; True when a reload should be tried now."""
        with self._lock:
            self.failures += 1
            now = self._clock()
            if self.failures < self.after_failures or now < self._not_before:
                return False
            self._not_before = now + self.delay_s
            self.delay_s = min(self.delay_s * 2, self.max_delay_s)
            return True

    @property
    def retry_at(self) -> float:
        """When the back-off allows the next attempt (the clock's time)."""
        with self._lock:
            return self._not_before

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.delay_s = self.first_delay_s
            self._not_before = float('-inf')
