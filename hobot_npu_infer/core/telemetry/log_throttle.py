"""One log line per cause: the first at once, then at most one per period with a count."""

import threading
import time
from typing import Dict, Hashable, Optional, Tuple


class LogThrottle:

    def __init__(self, period_s: float = 30.0, clock=time.monotonic):
        self.period_s = period_s
        self._clock = clock
        self._last: Dict[Hashable, float] = {}
        self._suppressed: Dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def admit(self, key: Hashable, now: Optional[float] = None) -> Tuple[bool, int]:
        """(log it?, how many of this key were suppressed since the last line)."""
        now = self._clock() if now is None else now
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False, 0
            self._last[key] = now
            return True, self._suppressed.pop(key, 0)
