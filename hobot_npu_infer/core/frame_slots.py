"""The newest frame of each source, and nothing older: a frame replaced before it was taken is
dropped and counted, so a slow model never builds a backlog."""

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class Frame:
    source: str
    payload: Any  # the message or array as received; converted later, off the receive path
    received: float = field(default_factory=time.monotonic)
    meta: Any = None  # carried untouched to the result (e.g. the message header)


class FrameSlots:
    """One slot per source; takers get sources round-robin so every camera is served."""

    def __init__(self, sources: List[str]):
        self._order = list(sources)
        self._slots: Dict[str, Optional[Frame]] = {s: None for s in sources}
        self._next = 0
        self._cond = threading.Condition()
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Store ``frame``; True when it replaced a frame nobody had taken (now dropped)."""
        with self._cond:
            replaced = self._slots[frame.source] is not None
            self._slots[frame.source] = frame
            self._cond.notify()
            return replaced

    def take_source(self, source: str) -> Optional[Frame]:
        """The pending frame of ``source``, if one arrived, removing it from its slot."""
        with self._cond:
            frame, self._slots[source] = self._slots[source], None
            return frame

    def take(self, max_frames: int = 1, timeout: Optional[float] = None) -> List[Frame]:
        """Up to ``max_frames`` frames of distinct sources, waiting until one is there.

        Returns an empty list on timeout or once closed.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._pending(), timeout):
                return []
            if self._closed:
                return []
            frames = []
            n = len(self._order)
            for i in range(n):
                source = self._order[(self._next + i) % n]
                frame = self._slots[source]
                if frame is not None:
                    frames.append(frame)
                    self._slots[source] = None
                    if len(frames) == max_frames:
                        self._next = (self._next + i + 1) % n
                        break
            else:
                self._next = (self._next + 1) % n
            return frames

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _pending(self) -> bool:
        return any(f is not None for f in self._slots.values())
