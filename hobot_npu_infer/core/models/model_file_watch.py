"""
The model file under a running node: unchanged, changed, or gone since it was loaded.

Each check reads the file's size and times (one ``stat``, cheap) and hashes its content
(BLAKE2b, streamed in 1 MiB chunks) only when they differ from the previous check, and once
when the watch is made (the baseline: what was loaded). So a file touched without a change of
content is still unchanged, and one that comes back with the loaded content is unchanged again.
A file that is missing or cannot be read is ``gone``, never ``changed``. As git does with its
index, a hash taken less than ``RACY_S`` after the file's last write is not trusted on the
times alone (a second write of the same size within one timestamp tick leaves them alike):
such a file is hashed again at each check until its times are older than that.

The periodic checks run on a thread of the watch's own (:meth:`ModelFileWatch.start`), not on
a timer of the node: infer_node spins a single-threaded executor, where a timer in a callback
group of its own still runs on the one executor thread, so hashing a model of hundreds of MB
there would hold up every other callback for as long as it reads. The thread sleeps on an
event, so :meth:`ModelFileWatch.stop` ends it at once, and a hash in progress stops between
chunks.

:class:`ChangeReloads` keeps what the node tried with a changed file (``reload_on_change``),
and :func:`file_report` turns both into the model status's values and warning.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone
import hashlib
import os
import stat
import threading
import time
from typing import Callable, Dict, Optional, Tuple

from hobot_npu_infer.core.telemetry.thread_cpu import name_thread

UNCHANGED, CHANGED, GONE = 'unchanged', 'changed', 'gone'
CHUNK = 1 << 20
RACY_S = 2.0  # coarsest file timestamp granularity we allow for (FAT: 2 s)

StatKey = Tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


class _Stopped(Exception):
    """The watch was stopped while a hash was in progress."""


@dataclass(frozen=True)
class FileSignature:
    """One version of the file: its size, modification time and content hash."""

    size: int
    mtime_ns: int
    digest: str
    stat_key: StatKey = (0, 0, 0, 0)
    hashed_at: float = field(default=0.0, compare=False)  # wall-clock time the hash began

    @property
    def mtime(self) -> str:
        """Return the modification time, UTC to the second."""
        return datetime.fromtimestamp(self.mtime_ns / 1e9, timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%SZ')


@dataclass(frozen=True)
class WatchStatus:
    """What the last check found."""

    path: str
    state: str  # UNCHANGED, CHANGED or GONE
    loaded: Optional[FileSignature]  # the baseline: the file as loaded
    seen: Optional[FileSignature]  # the file as last seen; None while gone
    reason: str = ''  # why it is gone: missing, unreadable ...
    since: float = 0.0  # clock time this state (and this version of the file) was first seen
    steady: int = 1  # checks in a row that saw this same size and times
    checks: int = 0  # checks so far
    hashes: int = 0  # content hashes so far (the baseline's included)

    def describe(self) -> str:
        """Say how the file differs from the loaded one: sizes and times, old -> new."""
        if self.state == GONE:
            return self.reason
        if self.loaded is None or self.seen is None:
            return ''
        return (f'size {self.loaded.size} -> {self.seen.size}, '
                f'mtime {self.loaded.mtime} -> {self.seen.mtime}')


class ModelFileWatch:
    """
    Watch one file against the version of it that was loaded; thread-safe.

    ``clock`` stamps when each state began (injectable for tests). :meth:`check` may be called
    from any thread; checks are serialised, and :meth:`status` never waits for a hash.
    """

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic,
                 chunk_size: int = CHUNK, wall_clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._wall_clock = wall_clock  # against the file's times
        self._chunk_size = chunk_size
        self._check_lock = threading.Lock()  # one check (and its hash) at a time
        self._lock = threading.Lock()  # the status
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._hashes = 0
        loaded, reason = self._read(None)
        self._status = WatchStatus(path, UNCHANGED if loaded else GONE, loaded, loaded,
                                   reason, clock(), hashes=self._hashes)

    # -- checking ---------------------------------------------------------------------------

    def status(self) -> WatchStatus:
        """Return what the last check found (the baseline, before any check)."""
        with self._lock:
            return self._status

    def check(self) -> WatchStatus:
        """Look at the file now; hash it only if its size or times changed since the last look."""
        with self._check_lock:
            before = self.status()
            seen, reason = self._read(before.seen)
            with self._lock:
                self._status = self._next(self._status, seen, reason)
                return self._status

    def rebase(self, signature: FileSignature) -> WatchStatus:
        """Take ``signature`` as the loaded version (a new model was loaded from the file)."""
        with self._check_lock, self._lock:
            status = self._status
            self._status = WatchStatus(
                self.path, UNCHANGED if status.seen == signature else CHANGED, signature,
                status.seen, status.reason, self._clock(), status.steady, status.checks,
                self._hashes)
            return self._status

    def current(self, known: Optional[FileSignature]) -> Optional[FileSignature]:
        """
        Return the file's signature now; None when gone.

        It is ``known`` itself while the size and times still match it, else hashed afresh.
        Leaves the status alone.
        """
        with self._check_lock:
            return self._read(known)[0]

    def _next(self, status: WatchStatus, seen: Optional[FileSignature],
              reason: str) -> WatchStatus:
        if seen is None:
            state = GONE
        else:
            loaded = status.loaded
            state = UNCHANGED if loaded is not None and seen.digest == loaded.digest \
                else CHANGED
        same = seen == status.seen and state == status.state
        return WatchStatus(self.path, state, status.loaded, seen, reason,
                           status.since if same else self._clock(),
                           status.steady + 1 if same else 1, status.checks + 1, self._hashes)

    def _read(self, previous: Optional[FileSignature]
              ) -> Tuple[Optional[FileSignature], str]:
        """(signature, '') or (None, why it is gone); reuses ``previous``'s hash when it can."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None, 'missing'
        except OSError as exc:
            return None, f'unreadable: {exc.strerror or exc}'
        if not stat.S_ISREG(info.st_mode):
            return None, 'not a file'
        key = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        written = max(info.st_mtime_ns, info.st_ctime_ns) / 1e9
        if previous is not None and previous.stat_key == key and \
                previous.hashed_at - written > RACY_S:
            return previous, ''
        hashed_at = self._wall_clock()
        try:
            digest = self._digest()
        except FileNotFoundError:
            return None, 'missing'
        except OSError as exc:
            return None, f'unreadable: {exc.strerror or exc}'
        except _Stopped:
            return previous, ''
        return FileSignature(info.st_size, info.st_mtime_ns, digest, key, hashed_at), ''

    def _digest(self) -> str:
        self._hashes += 1
        digest = hashlib.blake2b(digest_size=16)
        with open(self.path, 'rb') as f:
            for chunk in iter(lambda: f.read(self._chunk_size), b''):
                if self._stopping.is_set():
                    raise _Stopped()
                digest.update(chunk)
        return digest.hexdigest()

    # -- the checking thread ----------------------------------------------------------------

    def start(self, period_s: float, on_check: Callable[[WatchStatus], None],
              on_error: Callable[[Exception], None] = lambda exc: None) -> None:
        """Check every ``period_s`` on a thread of its own; ``on_check`` gets each status."""
        self.stop()
        self._stopping.clear()

        def run() -> None:
            name_thread('model-watch')
            while not self._stopping.wait(period_s):
                try:
                    status = self.check()
                    if not self._stopping.is_set():
                        on_check(status)
                except Exception as exc:  # noqa: BLE001 (a bug must not end the watch)
                    on_error(exc)
        self._thread = threading.Thread(target=run, name='model-watch', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the checking thread; a hash in progress stops at its next chunk."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()


STEADY_CHECKS = 2  # checks in a row that saw a changed file alike before it is loaded


class ChangeReloads:
    """
    The reloads of a changed model file: which version is loading, which failed, the counts.

    A version that was seen alike by ``STEADY_CHECKS`` checks in a row is loaded (not a file
    still being copied); one at a time; a version that failed to load is not tried again, the
    next version of the file is. Thread-safe. ``enabled`` False (no ``reload_on_change``):
    nothing is ever tried, only counted as nothing.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._lock = threading.Lock()
        self.reloads = 0
        self.failures = 0
        self._loading: Optional[str] = None  # the digest being loaded
        self._loaded: Optional[str] = None  # the digest last swapped in
        self._failed: Optional[Tuple[str, str, bool]] = None  # (digest, why, refused)

    def begin(self, status: WatchStatus) -> Optional[FileSignature]:
        """Return the version of the file to load now, claimed; None for none."""
        seen = status.seen
        if not self.enabled or status.state != CHANGED or seen is None or \
                status.steady < STEADY_CHECKS:
            return None
        with self._lock:
            # a status checked before the last swap still calls its version a change
            if self._loading is not None or seen.digest == self._loaded or \
                    (self._failed and self._failed[0] == seen.digest):
                return None
            self._loading = seen.digest
            return seen

    @property
    def loading(self) -> bool:
        with self._lock:
            return self._loading is not None

    def succeeded(self, signature: FileSignature) -> None:
        """Record that ``signature``'s version was loaded and swapped in."""
        with self._lock:
            self.reloads += 1
            self._loading = self._failed = None
            self._loaded = signature.digest

    def failed(self, signature: FileSignature, why: str, refused: bool = False) -> None:
        """
        Record that ``signature``'s version does not load (``refused``: cannot be swapped in).

        It is not tried again.
        """
        with self._lock:
            self.failures += 1
            self._loading = None
            self._failed = (signature.digest, why, refused)

    def abandoned(self) -> None:
        """Give up the load in progress (stopped, or the file changed meanwhile)."""
        with self._lock:
            self._loading = None

    def failure(self, status: WatchStatus) -> Optional[Tuple[str, bool]]:
        """Return (why, refused) when the version on disk now is one that failed, else None."""
        with self._lock:
            failed = self._failed
        if failed is None or status.state != CHANGED or status.seen is None or \
                status.seen.digest != failed[0]:
            return None
        return failed[1], failed[2]


def file_report(status: WatchStatus, reloads: ChangeReloads) -> Tuple[Dict[str, str], str]:
    """
    Return the model status's values on the file, and its warning ('' for none).

    A file that is gone has no warning here: the node says so from ``model_file_present``.
    """
    values = {'model_file_state': status.state, 'model_reloads_on_change': str(reloads.reloads),
              'model_reload_failures': str(reloads.failures)}
    if status.state != CHANGED:
        return values, ''
    failure = reloads.failure(status)
    if failure is not None:
        why, refused = failure
        if refused:
            return values, (f'model file changed but the new one cannot replace the loaded one '
                            f'while running: {why}; serving the loaded model (restart the node '
                            f'to serve the new one)')
        return values, (f'model file changed but the new one does not load: {why}; serving the '
                        f'loaded model')
    while_loading = ' while the new one loads' if reloads.loading else ''
    return values, (f'model file {status.path} changed on disk since it was loaded '
                    f'({status.describe()}); serving the loaded model{while_loading}')
