"""
Threads named for the OS, and the CPU time each has spent (Linux ``/proc``).

Python's thread names stay inside Python: ``top -H``, ``ps -L`` and a benchmark reading
``/proc`` see every thread of the node as ``python``. Named here, the node's threads show what
they do (``take ...``, ``convert``, ``prepare``, ``infer``, ``ort``), so where the CPU goes can be
read from the OS, per thread, with the node's own clocks kept out of it. Elsewhere than Linux
naming does nothing and the tables are empty.
"""

from dataclasses import dataclass
import os
import threading
from typing import Iterable, List, Optional, Set

COMM_CHARS = 15  # the kernel keeps this many characters of a thread's name
_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100


@dataclass(frozen=True)
class ThreadCpu:
    """One thread of a process: its id, its OS name and the CPU seconds it has used."""

    tid: int
    name: str
    cpu_s: float


def name_thread(name: str, tid: Optional[int] = None) -> None:
    """Give a thread of this process (default: the calling one) ``name`` as the OS shows it."""
    tid = threading.get_native_id() if tid is None else tid
    try:
        with open(f'/proc/self/task/{tid}/comm', 'w') as comm:
            comm.write(name[:COMM_CHARS])
    except OSError:
        pass  # not Linux, or the thread is gone: the name is only for people and benchmarks


def thread_ids(pid: str = 'self') -> Set[int]:
    """Return the ids of the threads of process ``pid`` (empty where /proc is missing)."""
    try:
        return {int(tid) for tid in os.listdir(f'/proc/{pid}/task')}
    except OSError:
        return set()


def _name_of(tid: int, pid: str = 'self') -> str:
    """Return a thread's OS name; '' once it has ended."""
    try:
        with open(f'/proc/{pid}/task/{tid}/comm') as comm:
            return comm.read().strip()
    except OSError:
        return ''


def name_new_threads(before: Iterable[int], name: str) -> int:
    """
    Name the threads this process started since ``before``: those a library just made.

    Only threads still bearing the process's own name are renamed (DDS names its own).
    """
    unnamed = _name_of(os.getpid())
    new = [tid for tid in thread_ids() - set(before) if _name_of(tid) == unnamed]
    for tid in new:
        name_thread(name, tid)
    return len(new)


def thread_table(pid: str = 'self') -> List[ThreadCpu]:
    """Every thread of process ``pid`` with its name and CPU seconds (user + system)."""
    table = []
    for tid in sorted(thread_ids(pid)):
        try:
            cpu_s = stat_cpu_s(f'/proc/{pid}/task/{tid}/stat')
        except OSError:
            continue  # ended meanwhile
        table.append(ThreadCpu(tid, _name_of(tid, pid), cpu_s))
    return table


def stat_cpu_s(path: str) -> float:
    """Return the CPU seconds (user + system) in a /proc ``stat`` file: a process's or thread's."""
    with open(path) as stat:
        fields = stat.read().rsplit(')', 1)[1].split()  # after the name (may hold spaces)
    return (int(fields[11]) + int(fields[12])) / _TICKS
