"""
The newest frame of each source, and nothing older.

A frame replaced before it was taken is dropped and counted, so a slow model never builds a
backlog.
"""

from dataclasses import dataclass, field
import threading
import time
from typing import AbstractSet, Any, Dict, List, Optional


@dataclass
class Frame:
    source: str
    payload: Any  # the message or array as received; converted later, off the receive path
    received: float = field(default_factory=time.monotonic)
    meta: Any = None  # carried untouched to the result (e.g. the message header)
    stamp_usable: bool = True  # False: its stamp is too far off the clock to time it by


class FrameBatcher:
    """
    One slot per source; takers get sources round-robin so every camera is served.

    ``take`` forms batches as Triton's dynamic batcher does: it returns as soon as
    ``max_frames`` sources have a frame waiting, or when the oldest waiting frame has waited
    ``max_delay_s``, whichever comes first.
    """

    def __init__(self, sources: List[str]):
        self._order = list(sources)
        self._slots: Dict[str, Optional[Frame]] = dict.fromkeys(sources)
        self._count = 0
        self._next = 0
        self._cond = threading.Condition()
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Store ``frame``; True when it replaced a frame nobody had taken (now dropped)."""
        with self._cond:
            replaced = self._slots[frame.source] is not None
            self._slots[frame.source] = frame
            if not replaced:
                self._count += 1
            self._cond.notify_all()
            return replaced

    def take_source(self, source: str) -> Optional[Frame]:
        """Take the pending frame of ``source``, if one arrived, removing it from its slot."""
        with self._cond:
            frame, self._slots[source] = self._slots[source], None
            if frame is not None:
                self._count -= 1
            return frame

    def pending(self) -> int:
        with self._cond:
            return self._count

    def take(self, max_frames: int = 1, timeout: Optional[float] = None,
             max_delay_s: float = 0.0, exclude: AbstractSet[str] = frozenset()) -> List[Frame]:
        """
        Take up to ``max_frames`` frames of distinct sources, none of ``exclude``.

        Waits until one is there, then up to ``max_delay_s`` after the oldest one's arrival for
        the batch to fill. An excluded source's frame stays in its slot (a newer one replaces
        it as usual).

        Returns an empty list on timeout or once closed.
        """
        def waiting() -> List[Frame]:
            return [f for s, f in self._slots.items() if f is not None and s not in exclude]

        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or waiting(), timeout) \
                    or self._closed:
                return []
            if max_frames > 1 and max_delay_s > 0 and len(waiting()) < max_frames:
                left = min(f.received for f in waiting()) + max_delay_s - time.monotonic()
                if left > 0:
                    self._cond.wait_for(
                        lambda: self._closed or len(waiting()) >= max_frames, left)
            if self._closed:
                return []
            frames = []
            n = len(self._order)
            for i in range(n):
                source = self._order[(self._next + i) % n]
                frame = self._slots[source]
                if frame is not None and source not in exclude:
                    frames.append(frame)
                    self._slots[source] = None
                    if len(frames) == max_frames:
                        self._next = (self._next + i + 1) % n
                        break
            else:
                self._next = (self._next + 1) % n
            self._count -= len(frames)
            return frames

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
