"""FrameBatcher: newest frame per source only, distinct sources per take, round-robin, close()."""

from collections import Counter
import threading
import time

from hobot_npu_infer.core.streaming.batcher import Frame, FrameBatcher
from hypothesis import given, settings, strategies as st
import pytest

TIMEOUT = 10.0  # only ever reached by a broken test
SOURCES = ['a', 'b', 'c']


def frame(source, value=0):
    return Frame(source, value)


def test_a_frame_records_when_it_arrived_and_carries_its_meta():
    before = time.monotonic()
    f = Frame('a', 'payload', meta={'stamp': 1})
    assert before <= f.received <= time.monotonic()
    assert f.meta == {'stamp': 1}
    assert Frame('a', 'payload').meta is None


def test_put_keeps_only_the_newest_frame_of_a_source():
    slots = FrameBatcher(SOURCES)
    assert slots.put(frame('a', 1)) is False  # the slot was empty
    assert slots.put(frame('a', 2)) is True  # replaced frame 1, which nobody took
    assert slots.put(frame('a', 3)) is True
    taken = slots.take(3, timeout=0)
    assert [(f.source, f.payload) for f in taken] == [('a', 3)]
    assert slots.put(frame('a', 4)) is False  # frame 3 was taken, so nothing was dropped


def test_sources_do_not_replace_each_other():
    slots = FrameBatcher(SOURCES)
    assert slots.put(frame('a', 1)) is False
    assert slots.put(frame('b', 1)) is False
    assert slots.put(frame('c', 1)) is False
    assert slots.put(frame('b', 2)) is True
    taken = slots.take(3, timeout=0)
    assert sorted((f.source, f.payload) for f in taken) == [('a', 1), ('b', 2), ('c', 1)]


def test_take_returns_frames_of_distinct_sources_up_to_max_frames():
    slots = FrameBatcher(SOURCES)
    for s in SOURCES:
        slots.put(frame(s))
    first = slots.take(2, timeout=0)
    assert len(first) == 2
    assert len({f.source for f in first}) == 2
    rest = slots.take(2, timeout=0)
    assert len(rest) == 1
    assert {f.source for f in first + rest} == set(SOURCES)
    assert slots.take(2, timeout=0) == []


def test_take_one_at_a_time_serves_every_source_in_turn_when_all_are_always_pending():
    slots = FrameBatcher(SOURCES)
    served = []
    for i in range(30):
        for s in SOURCES:  # every source always has a newer frame waiting
            slots.put(frame(s, i))
        [taken] = slots.take(1, timeout=0)
        served.append(taken.source)
    assert served == SOURCES * 10


@pytest.mark.parametrize('max_frames', [1, 2, 3])
def test_no_source_starves_when_all_are_always_pending(max_frames):
    sources = ['s0', 's1', 's2', 's3', 's4']
    slots = FrameBatcher(sources)
    counts = Counter()
    for i in range(50):
        for s in sources:
            slots.put(frame(s, i))
        taken = slots.take(max_frames, timeout=0)
        assert len(taken) == max_frames
        assert len({f.source for f in taken}) == max_frames
        counts.update(f.source for f in taken)
    # 50 * max_frames frames handed out over 5 sources, evenly.
    assert counts == {s: 10 * max_frames for s in sources}


def test_a_lone_pending_source_is_served_wherever_the_turn_is():
    slots = FrameBatcher(SOURCES)
    for s in ('c', 'b', 'c', 'a', 'a'):
        slots.put(frame(s))
        assert [f.source for f in slots.take(1, timeout=0)] == [s]


def test_take_with_a_timeout_returns_an_empty_list_when_nothing_arrives():
    slots = FrameBatcher(SOURCES)
    assert slots.take(1, timeout=0) == []
    assert slots.take(3, timeout=0.01) == []


def test_take_without_waiting_returns_pending_frames_at_once():
    slots = FrameBatcher(SOURCES)
    slots.put(frame('b', 7))
    assert [(f.source, f.payload) for f in slots.take(1, timeout=0)] == [('b', 7)]


def test_take_source_takes_only_that_sources_frame():
    slots = FrameBatcher(SOURCES)
    assert slots.take_source('a') is None
    slots.put(frame('a', 1))
    slots.put(frame('b', 2))
    taken = slots.take_source('a')
    assert (taken.source, taken.payload) == ('a', 1)
    assert slots.take_source('a') is None
    assert slots.put(frame('a', 3)) is False  # taken, so not counted as replaced
    assert sorted((f.source, f.payload) for f in slots.take(3, timeout=0)) == [('a', 3), ('b', 2)]


def test_a_blocked_take_wakes_up_when_a_frame_arrives():
    slots = FrameBatcher(SOURCES)
    result = []
    taker = threading.Thread(target=lambda: result.extend(slots.take(3, timeout=TIMEOUT)))
    taker.start()
    slots.put(frame('c', 5))
    taker.join(TIMEOUT)
    assert not taker.is_alive()
    assert [(f.source, f.payload) for f in result] == [('c', 5)]


def test_close_wakes_a_take_blocked_in_another_thread_which_returns_nothing():
    slots = FrameBatcher(SOURCES)
    started, result = threading.Event(), []

    def take():
        started.set()
        result.append(slots.take(1, timeout=None))  # no timeout: only close() can end it

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    assert started.wait(TIMEOUT)
    time.sleep(0.05)  # let it reach the wait; the outcome is the same if it has not yet
    slots.close()
    taker.join(TIMEOUT)
    assert not taker.is_alive()
    assert result == [[]]


def test_take_after_close_returns_nothing_even_with_pending_frames():
    slots = FrameBatcher(SOURCES)
    slots.put(frame('a'))
    slots.close()
    assert slots.take(1, timeout=None) == []
    assert slots.take(1, timeout=0) == []


# --- the same guarantees over arbitrary interleavings --------------------------------------------

OPERATIONS = st.lists(st.one_of(st.tuples(st.just('put'), st.integers(0, 3)),
                                st.tuples(st.just('take'), st.integers(1, 4))),
                      max_size=80)


@settings(max_examples=300, deadline=None, database=None)
@given(OPERATIONS)
def test_model_newest_frame_distinct_sources_and_bounded_wait(operations):
    """
    Check the batcher against a plain model.

    Against a plain model: put's return, the newest payload, and every pending source served
    within as many takes as there are sources.
    """
    sources = ['s0', 's1', 's2', 's3']
    slots = FrameBatcher(sources)
    pending = {}  # source -> newest payload not yet taken
    waited = Counter()  # takes a pending source has sat through unserved
    for serial, (op, arg) in enumerate(operations):
        if op == 'put':
            s = sources[arg]
            assert slots.put(Frame(s, serial)) is (s in pending)
            pending[s] = serial
            continue
        taken = slots.take(arg, timeout=0)
        assert len(taken) == min(arg, len(pending))
        assert len({f.source for f in taken}) == len(taken)
        for f in taken:
            assert pending.pop(f.source) == f.payload
            waited.pop(f.source, None)
        for s in pending:
            waited[s] += 1
            assert waited[s] < len(sources), f'{s} starved'
