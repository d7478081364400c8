"""Threads named for the OS and their CPU read back from /proc, in this process."""

import threading
import time

from hobot_npu_infer.core.telemetry.thread_cpu import (
    name_new_threads,
    name_thread,
    thread_ids,
    thread_table,
)


def busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_named_thread_shows_its_name_and_its_cpu():
    done = threading.Event()

    def work():
        name_thread('bench-worker-with-a-long-name')  # the kernel keeps 15 characters
        busy(0.2)
        done.wait(10)
    thread = threading.Thread(target=work)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = [t for t in thread_table() if t.tid == thread.native_id]
            if rows and rows[0].cpu_s >= 0.15:
                break
            time.sleep(0.05)
        assert rows[0].name == 'bench-worker-wi' and rows[0].cpu_s >= 0.15, rows
    finally:
        done.set()
        thread.join()


def test_threads_a_library_starts_are_named_and_named_ones_are_left_alone():
    before = thread_ids()
    go = threading.Event()
    started = []

    def pool_worker(own_name):
        if own_name:
            name_thread(own_name)
        started.append(threading.get_native_id())
        go.wait(10)
    threads = [threading.Thread(target=pool_worker, args=(n,)) for n in ('', '', 'dds.ev.0')]
    for thread in threads:
        thread.start()
    try:
        while len(started) < 3:
            time.sleep(0.01)
        assert name_new_threads(before, 'ort') == 2
        names = {t.tid: t.name for t in thread_table()}
        assert sorted(names[t.native_id] for t in threads) == ['dds.ev.0', 'ort', 'ort']
    finally:
        go.set()
        for thread in threads:
            thread.join()
