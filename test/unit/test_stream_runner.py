"""
StreamRunner on a real DetectionPipeline whose fake model encodes each image's content in its box.

Every frame is a constant image of one value; the fake model writes, per batch slot, a box whose x
position is that slot's pixel value, and the yolov8 decoder plus the pipeline's mapping back give
a detection whose x1 tells which image it came from. So a result that belongs to another frame
(cross-talk between batch slots or sources) cannot go unnoticed.
"""

import threading
import time

from hobot_npu_infer.core.backends.tensors import BatchCapability
from hobot_npu_infer.core.errors import ImageError, InferError
import pytest
from stream_harness import (
    check_result,
    DelayedTakeSource,
    FakeModel,
    GARBAGE,
    INPUT,
    runner_threads,
    TIMEOUT,
)

# --- delivery ------------------------------------------------------------------------------------

SIZES = {'a': (64, 64), 'b': (128, 64), 'c': (32, 96)}


def test_each_result_is_its_own_frames_with_source_meta_and_stage_times(make_harness):
    h = make_harness(sources=('a', 'b', 'c'), max_batch=3, start=False)
    metas = {}
    value = 0
    for round_ in range(6):
        for source in ('a', 'b', 'c'):
            value += 7
            metas[value] = {'source': source, 'stamp': value}
            h.put(source, value, SIZES[source], meta=metas[value])
        if round_ == 0:
            h.runner.start()  # the first take finds all three pending: one batch of 3
        h.delivered.wait_count(3 * (round_ + 1))
    results = h.delivered.items
    assert len(results) == 18
    assert sorted(r.frame.payload.value for r in results) == list(range(7, 127, 7))
    for result in results:
        check_result(result)
        assert result.frame.source == metas[result.frame.payload.value]['source']
        assert result.frame.meta is metas[result.frame.payload.value]  # passed through untouched
    for source in ('a', 'b', 'c'):  # in order within each source
        values = h.delivered_values(source)
        assert values == sorted(values) and len(values) == 6
    runs = h.model.runs.items
    assert runs[0][0] == (3, 3, INPUT[1], INPUT[0])  # a real batch of three images
    assert sorted(runs[0][1]) == [7, 14, 21]
    assert sum(len(values) for _, values in runs) == 18
    assert h.model_stats.runs == len(runs)
    assert h.model_stats.current_error() is None
    assert h.bad_frames.items == []


def test_a_frame_superseded_while_waiting_is_dropped_and_the_newer_delivered(make_harness):
    gate = threading.Event()
    h = make_harness(model=FakeModel(gate=gate))
    h.put('a', 1)
    h.model.runs.wait_count(1)  # frame 1 is in the (blocked) model
    h.put('a', 2)
    h.converted.wait_for(lambda values: 2 in values, 'frame 2 to be prepared')
    assert h.put('a', 3) is False  # 2 was already taken from its slot: not a replacement
    gate.set()
    h.delivered.wait_count(2)
    h.put('a', 4)  # a later frame flushes out anything still queued
    h.delivered.wait_count(3)
    assert h.delivered_values() == [1, 3, 4]
    assert [values for _, values in h.model.runs.items] == [[1], [3], [4]]  # 2 never ran
    assert h.source_stats['a'].dropped_stale == 1
    for result in h.delivered.items:
        check_result(result)


def test_the_prepare_thread_cannot_take_the_newer_frame_from_under_the_stale_check(make_harness):
    """
    A preempted infer thread must still find the newer frame.

    It is taken before the prepared one is released, or the prepare thread could take it
    first and the stale frame would run.
    """
    gate = threading.Event()
    h = make_harness(model=FakeModel(gate=gate), slots_type=DelayedTakeSource)
    h.put('a', 1)
    h.model.runs.wait_count(1)
    h.put('a', 2)
    h.converted.wait_for(lambda values: 2 in values, 'frame 2 to be prepared')
    h.put('a', 3)
    gate.set()
    h.delivered.wait_count(2)
    h.put('a', 4)
    h.delivered.wait_count(3)
    assert h.delivered_values() == [1, 3, 4]
    assert h.source_stats['a'].dropped_stale == 1


def test_a_stale_frame_in_a_batch_is_swapped_and_the_rest_kept(make_harness):
    gate = threading.Event()
    h = make_harness(sources=('a', 'b'), model=FakeModel(gate=gate), max_batch=2)
    h.put('a', 1)
    h.model.runs.wait_count(1)
    h.put('a', 10)
    h.put('b', 20)
    h.converted.wait_for(lambda values: {10, 20} <= set(values), 'frames 10 and 20 prepared')
    h.put('b', 21)  # supersedes b's 20 while it waits; a's 10 stays current
    gate.set()
    h.delivered.wait_count(3)
    assert h.delivered_values('a') == [1, 10]
    assert h.delivered_values('b') == [21]
    assert h.source_stats['a'].dropped_stale == 0
    assert h.source_stats['b'].dropped_stale == 1
    for result in h.delivered.items:
        check_result(result)


# --- bad frames, model failures ------------------------------------------------------------------

@pytest.mark.parametrize('max_batch', [1, 3])
def test_a_bad_frame_is_reported_and_the_other_sources_keep_being_delivered(make_harness,
                                                                            max_batch):
    h = make_harness(sources=('a', 'b', 'c'), max_batch=max_batch, start=False)
    h.put('a', 1, bad=True)
    h.put('b', 2)
    h.put('c', 3)
    h.runner.start()
    h.delivered.wait_count(2)
    h.bad_frames.wait_count(1)
    for round_ in range(1, 5):
        h.put('a', 10 * round_ + 1, bad=True)
        h.put('b', 10 * round_ + 2)
        h.put('c', 10 * round_ + 3)
        h.delivered.wait_count(2 * (round_ + 1))
        h.bad_frames.wait_count(round_ + 1)
    bad = h.bad_frames.items
    assert [(f.source, f.payload.value) for f, _ in bad] == [('a', 1), ('a', 11), ('a', 21),
                                                             ('a', 31), ('a', 41)]
    assert all(isinstance(e, ImageError) and isinstance(e, InferError) for _, e in bad)
    assert 'unsupported encoding' in str(bad[0][1])
    assert h.delivered_values('b') == [2, 12, 22, 32, 42]
    assert h.delivered_values('c') == [3, 13, 23, 33, 43]
    h.put('a', 50)  # the source recovers as soon as it sends a good frame
    h.delivered.wait_for(lambda rs: any(r.frame.source == 'a' for r in rs), 'a frame of a')
    assert h.delivered_values('a') == [50]
    assert not any(1 in values or 11 in values for _, values in h.model.runs.items)
    for result in h.delivered.items:
        check_result(result)


def test_a_failing_model_is_counted_and_the_next_good_run_clears_it(make_harness):
    h = make_harness(model=FakeModel(fail={13}))
    h.put('a', 13)
    h.model_stats.errors.wait_count(1)
    assert h.model_stats.failing
    assert h.model_stats.current_error() == 'RuntimeError: device lost'  # first line only
    assert h.model_stats.backend_errors == 1
    assert h.delivered.items == []
    assert h.runner.running
    h.put('a', 14)
    h.delivered.wait_count(1)
    assert h.delivered_values() == [14]
    assert not h.model_stats.failing
    assert h.model_stats.current_error() is None
    assert h.model_stats.runs == 1
    assert h.model_stats.backend_errors == 1
    h.put('a', 13)  # and it can fail again
    h.model_stats.errors.wait_count(2)
    assert h.model_stats.failing
    h.put('a', 15)
    h.delivered.wait_count(2)
    assert h.delivered_values() == [14, 15]
    assert h.model_stats.current_error() is None


@pytest.mark.parametrize('kind', sorted(GARBAGE))
def test_garbage_model_output_is_a_model_error_not_a_crash(make_harness, kind):
    h = make_harness(model=FakeModel(garbage={7: kind}))
    h.put('a', 7)
    [message] = h.model_stats.errors.wait_count(1)
    assert message.startswith('OutputLayoutError: ')
    assert h.model_stats.failing
    assert h.delivered.items == []
    h.put('a', 8)
    h.delivered.wait_count(1)
    assert h.delivered_values() == [8]
    check_result(h.delivered.items[0])
    assert not h.model_stats.failing
    # the fixture checks that on_internal_error was never called


def test_an_exception_in_deliver_is_reported_and_the_stream_goes_on(make_harness):
    h = make_harness()
    h.fail_delivery.add(5)
    h.put('a', 5)
    [message] = h.internal_errors.wait_count(1)
    assert message == 'infer: ValueError: cannot publish 5'
    h.put('a', 6)
    h.delivered.wait_count(1)
    assert h.delivered_values() == [6]
    h.internal_errors._items.clear()  # expected here; the fixture checks for unexpected ones


# --- stopping ------------------------------------------------------------------------------------

def test_stop_joins_both_threads_while_they_wait_for_frames(make_harness):
    before = threading.enumerate()
    h = make_harness()
    threads = runner_threads(before)
    assert sorted(t.name for t in threads) == ['infer', 'prepare']
    h.put('a', 1)
    h.delivered.wait_count(1)  # both threads are back to waiting
    h.runner.stop()
    assert not h.runner.running
    assert not any(t.is_alive() for t in threads)
    assert not any(t in threading.enumerate() for t in threads)


def test_stop_ends_a_prepare_thread_blocked_on_a_busy_model(make_harness):
    gate = threading.Event()
    before = threading.enumerate()
    h = make_harness(model=FakeModel(gate=gate))
    threads = {t.name: t for t in runner_threads(before)}
    h.put('a', 1)
    h.model.runs.wait_count(1)  # the infer thread is blocked in the model
    h.put('a', 2)
    h.converted.wait_for(lambda values: 2 in values, 'frame 2 to be prepared')  # prepare waits
    stopping = threading.Event()

    def stop():
        stopping.set()
        h.runner.stop(timeout=TIMEOUT)

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    assert stopping.wait(TIMEOUT)
    threads['prepare'].join(TIMEOUT)  # woken by stop() although the handoff is still full
    assert not threads['prepare'].is_alive()
    assert threads['infer'].is_alive()  # still inside the model's run
    gate.set()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()
    assert not any(t.is_alive() for t in threads.values())
    assert not any(t in threading.enumerate() for t in threads.values())
    assert 2 not in h.delivered_values()  # prepared but never run


# --- fixed batch ---------------------------------------------------------------------------------

def test_a_fixed_batch_model_gets_full_batches_from_fewer_sources(make_harness):
    h = make_harness(sources=('a', 'b', 'c'), model=FakeModel(BatchCapability(4)), max_batch=4,
                     start=False)
    assert h.runner.max_batch == 4
    h.put('a', 11)
    h.put('b', 22)
    h.put('c', 33)
    h.runner.start()
    h.delivered.wait_count(3)
    [(shape, values)] = h.model.runs.items  # one run for the three pending sources
    assert shape == (4, 3, INPUT[1], INPUT[0])
    assert sorted(values[:3]) == [11, 22, 33] and values[3] == 0  # padded with a zero slot
    for round_ in range(1, 4):
        h.put('b', 22 + round_)
        h.delivered.wait_count(3 + round_)
    assert h.delivered_values('b') == [22, 23, 24, 25]
    assert all(shape == (4, 3, INPUT[1], INPUT[0]) for shape, _ in h.model.runs.items)
    for result in h.delivered.items:
        check_result(result)


def test_a_fixed_batch_model_sets_the_runners_batch_size(make_harness):
    h = make_harness(model=FakeModel(BatchCapability(4)), max_batch=1, start=False)
    assert h.runner.max_batch == 4
    h = make_harness(model=FakeModel(), max_batch=3, start=False)
    assert h.runner.max_batch == 3


# --- frames no head is due on (shadow tracking) ------------------------------------------------

def test_a_skipped_frame_is_told_after_the_results_of_its_sources_frames_in_flight(make_harness):
    gate = threading.Event()
    answers = [True, False, False, True]  # run 1, skip 2 and 3, run 4
    events = []
    lock = threading.Lock()

    def skipped(frame):
        with lock:
            events.append(('skipped', frame.payload.value))

    h = make_harness(model=FakeModel(gate=gate), runs=lambda: answers.pop(0),
                     on_skipped=skipped)
    original = h.runner.deliver

    def deliver(result):
        with lock:
            events.append(('result', result.frame.payload.value))
        original(result)

    h.runner.deliver = deliver
    h.put('a', 1)
    h.model.runs.wait_count(1)  # frame 1 is in the (blocked) model
    h.put('a', 2)
    wait_until(lambda: len(answers) == 2)  # frame 2 taken and found skipped
    h.put('a', 3)  # supersedes 2 while it waits for frame 1's result
    wait_until(lambda: len(answers) == 1)
    assert events == []  # held: nothing may go out before frame 1's result
    gate.set()
    h.delivered.wait_count(1)
    wait_until(lambda: len(events) == 2)
    assert events == [('result', 1), ('skipped', 3)]
    assert h.source_stats['a'].dropped_stale == 1  # frame 2, superseded while held
    h.put('a', 4)  # nothing in flight: runs and goes out in order
    h.delivered.wait_count(2)
    assert events == [('result', 1), ('skipped', 3), ('result', 4)]


def test_a_skipped_frame_with_nothing_in_flight_is_told_at_once(make_harness):
    told = []
    h = make_harness(runs=lambda: False, on_skipped=told.append)
    h.put('a', 5)
    wait_until(lambda: told)
    assert [frame.payload.value for frame in told] == [5]
    assert h.delivered.items == [] and h.model.runs.items == []  # never converted nor run
    assert h.converted.items == []


def wait_until(condition, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.005)


# --- fairness: one input's heavy frames ---------------------------------------------------------

def test_a_heavy_frame_is_parked_and_never_holds_up_the_other_inputs(make_harness):
    h = make_harness(sources=('a', 'b'), max_batch=2, start=False)
    heavy = threading.Event()
    h.put('a', 1)
    h.put('b', 2, hold=heavy)  # b's conversion takes until the test releases it
    h.runner.start()
    h.delivered.wait_for(lambda items: 1 in [r.frame.payload.value for r in items], 'a=1')
    h.put('a', 3)  # a keeps being served while b's frame converts
    h.delivered.wait_for(lambda items: 3 in [r.frame.payload.value for r in items], 'a=3')
    h.put('b', 4)  # waits in b's slot: b converts one frame at a time
    h.put('a', 5)
    h.delivered.wait_for(lambda items: 5 in [r.frame.payload.value for r in items], 'a=5')
    assert h.delivered_values('b') == []
    heavy.set()
    h.delivered.wait_for(lambda items: 4 in [r.frame.payload.value for r in items], 'b=4')
    assert h.delivered_values('a') == [1, 3, 5]
    assert h.delivered_values('b') == [2, 4]  # the parked frame ran, then b's newest
    assert h.converted.items.count(2) == 1  # converted once, not again when it ran
    for result in h.delivered.items:
        check_result(result)
    assert h.bad_frames.items == []


def test_a_parked_frame_that_fails_to_convert_is_a_bad_frame(make_harness):
    h = make_harness(sources=('a', 'b'), max_batch=2, start=False)
    heavy = threading.Event()
    h.put('a', 1)
    h.put('b', 2, bad=True, hold=heavy)
    h.runner.start()
    h.delivered.wait_count(1)
    heavy.set()
    h.bad_frames.wait_count(1)
    h.put('b', 6)
    h.delivered.wait_for(lambda items: 6 in [r.frame.payload.value for r in items], 'b=6')
    assert h.internal_errors.items == []
