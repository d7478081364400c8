"""
The model file under a running node: the watch, the reloads on change, and the runner's swap.

The watch is driven check by check (no thread) with its clocks injected: the file's times are
set explicitly, and the wall clock stands well after them unless a test says otherwise, so
which checks hash is known exactly.
"""

import os
import threading
import time

from hobot_npu_infer.core.decoders import create_decoder
from hobot_npu_infer.core.models.model_file_watch import (
    CHANGED,
    ChangeReloads,
    file_report,
    GONE,
    ModelFileWatch,
    RACY_S,
    STEADY_CHECKS,
    UNCHANGED,
)
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
import pytest
from stream_harness import check_result, FakeModel, INPUT

LOADED = b'the loaded model' * 100
T0 = 1_700_000_000  # the file's times, seconds since the epoch


class Clock:

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def write(path, data: bytes, mtime: float) -> None:
    with open(path, 'wb') as f:
        f.write(data)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / 'model.onnx'
    write(path, LOADED, T0)
    return path


def watch_of(path, clock=None, wall=None):
    """Watch ``path`` with a wall clock far after every file time (no hash is racy)."""
    return ModelFileWatch(str(path), clock or Clock(), wall_clock=wall or (lambda: 4e9))


# --- the watch ---------------------------------------------------------------------------------

def test_the_baseline_is_hashed_once_and_an_untouched_file_never_again(model_file):
    watch = watch_of(model_file)
    assert watch.status().state == UNCHANGED and watch.status().hashes == 1
    for _ in range(5):
        status = watch.check()
    assert status.state == UNCHANGED and status.hashes == 1 and status.checks == 5
    assert status.seen == status.loaded


def test_a_touch_without_a_change_of_content_is_hashed_once_and_is_no_change(model_file):
    watch = watch_of(model_file)
    os.utime(model_file, (T0 + 60, T0 + 60))
    status = watch.check()
    assert status.state == UNCHANGED and status.hashes == 2
    assert watch.check().hashes == 2  # the new times are known now


def test_new_content_is_changed_and_says_how(model_file):
    watch = watch_of(model_file)
    write(model_file, b'garbage', T0 + 60)
    status = watch.check()
    assert status.state == CHANGED and status.hashes == 2
    assert status.describe() == (f'size {len(LOADED)} -> 7, mtime 2023-11-14T22:13:20Z -> '
                                 f'2023-11-14T22:14:20Z')


def test_the_same_size_with_other_content_and_the_same_times_is_seen_by_its_inode(model_file,
                                                                                  tmp_path):
    watch = watch_of(model_file)
    other = tmp_path / 'other.onnx'
    write(other, LOADED.upper(), T0)  # same size and mtime, other content
    os.replace(other, model_file)  # as an atomic copy-in does
    assert watch.check().state == CHANGED


def test_a_missing_file_is_gone_not_changed_and_back_as_loaded_is_unchanged(model_file):
    watch = watch_of(model_file)
    os.unlink(model_file)
    status = watch.check()
    assert (status.state, status.reason, status.seen) == (GONE, 'missing', None)
    assert status.describe() == 'missing'
    assert watch.check().state == GONE and watch.status().hashes == 1
    write(model_file, LOADED, T0 + 120)
    status = watch.check()
    assert status.state == UNCHANGED and status.hashes == 2


def test_a_file_back_with_other_content_is_changed(model_file):
    watch = watch_of(model_file)
    os.unlink(model_file)
    assert watch.check().state == GONE
    write(model_file, b'another model', T0 + 120)
    assert watch.check().state == CHANGED


def test_a_directory_in_its_place_is_gone(model_file):
    watch = watch_of(model_file)
    os.unlink(model_file)
    os.mkdir(model_file)
    status = watch.check()
    assert (status.state, status.reason) == (GONE, 'not a file')


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file')
def test_an_unreadable_file_is_gone(model_file):
    watch = watch_of(model_file)
    os.chmod(model_file, 0)
    os.utime(model_file, (T0 + 60, T0 + 60))
    try:
        status = watch.check()
    finally:
        os.chmod(model_file, 0o644)
    assert status.state == GONE and status.reason.startswith('unreadable')


def test_a_recently_written_file_is_hashed_at_each_check_until_its_times_settle(model_file):
    wall = Clock(time.time())
    watch = watch_of(model_file, wall=wall)
    write(model_file, b'half copied', time.time())
    assert watch.check().hashes == 2
    assert watch.check().hashes == 3  # racy: a same-size write in the same tick would hide
    wall.now += RACY_S + 2
    assert watch.check().hashes == 4  # hashed once more, now late enough to trust the times
    assert watch.check().hashes == 4


def test_since_and_steady_follow_each_version_of_the_file(model_file):
    clock = Clock(10.0)
    watch = watch_of(model_file, clock)
    clock.now = 11.0
    write(model_file, b'new', T0 + 60)
    first = watch.check()
    clock.now = 12.0
    second = watch.check()
    assert (first.since, first.steady) == (11.0, 1)
    assert (second.since, second.steady) == (11.0, 2)
    clock.now = 13.0
    write(model_file, b'newer', T0 + 120)
    assert (watch.check().since, watch.status().steady) == (13.0, 1)


def test_rebase_makes_the_version_on_disk_the_loaded_one(model_file):
    watch = watch_of(model_file)
    write(model_file, b'new model', T0 + 60)
    seen = watch.check().seen
    status = watch.rebase(seen)
    assert status.state == UNCHANGED and status.loaded == seen
    assert watch.check().state == UNCHANGED
    write(model_file, LOADED, T0 + 120)  # the first version is a change now
    assert watch.check().state == CHANGED


def test_current_rehashes_only_when_the_times_moved(model_file):
    watch = watch_of(model_file)
    loaded = watch.status().loaded
    assert watch.current(loaded) == loaded and watch.status().hashes == 1
    write(model_file, b'changed meanwhile', T0 + 60)
    assert watch.current(loaded) != loaded and watch.status().state == UNCHANGED  # untouched


def test_checks_from_several_threads_are_consistent(model_file):
    watch = watch_of(model_file)
    errors = []

    def checker():
        try:
            for _ in range(50):
                assert watch.check().state in (UNCHANGED, CHANGED, GONE)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=checker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(20):
        write(model_file, b'x' * i, T0 + i)
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert watch.check().state == CHANGED and watch.status().checks == 201


def test_the_thread_checks_until_stopped(model_file):
    watch = watch_of(model_file)
    seen = []
    done = threading.Event()

    def on_check(status):
        seen.append(status.state)
        if status.state == CHANGED:
            done.set()
    watch.start(0.01, on_check)
    assert watch.running
    write(model_file, b'new', T0 + 60)
    assert done.wait(10)
    watch.stop()
    assert not watch.running
    assert not any(t.name == 'model-watch' for t in threading.enumerate())
    assert seen[-1] == CHANGED


# --- reloads on change -------------------------------------------------------------------------

def changed_twice(watch, data, mtime):
    write(watch.path, data, mtime)
    watch.check()
    return watch.check()


def test_a_changed_file_is_loaded_once_two_checks_saw_it_alike(model_file):
    watch, reloads = watch_of(model_file), ChangeReloads(True)
    write(model_file, b'copying', T0 + 60)
    assert reloads.begin(watch.check()) is None  # might still be being copied
    assert STEADY_CHECKS == 2
    status = watch.check()
    assert reloads.begin(status) == status.seen
    assert reloads.loading and reloads.begin(status) is None  # one load at a time
    values, warning = file_report(status, reloads)
    assert warning.endswith('serving the loaded model while the new one loads')


def test_a_version_that_fails_is_not_tried_again_but_the_next_one_is(model_file):
    watch, reloads = watch_of(model_file), ChangeReloads(True)
    status = changed_twice(watch, b'garbage', T0 + 60)
    reloads.failed(reloads.begin(status), 'ModelLoadError: not an ONNX file')
    assert reloads.begin(watch.check()) is None
    values, warning = file_report(watch.status(), reloads)
    assert values == {'model_file_state': CHANGED, 'model_reloads_on_change': '0',
                      'model_reload_failures': '1'}
    assert warning == ('model file changed but the new one does not load: ModelLoadError: not '
                       'an ONNX file; serving the loaded model')
    status = changed_twice(watch, b'a good model', T0 + 120)
    assert 'changed on disk' in file_report(status, reloads)[1]
    assert reloads.begin(status) == status.seen
    reloads.succeeded(status.seen)
    assert reloads.begin(status) is None  # a status checked before the swap: not again
    watch.rebase(status.seen)
    values, warning = file_report(watch.check(), reloads)
    assert warning == '' and values['model_reloads_on_change'] == '1'
    assert values['model_file_state'] == UNCHANGED


def test_a_refused_swap_says_a_restart_serves_it(model_file):
    watch, reloads = watch_of(model_file), ChangeReloads(True)
    status = changed_twice(watch, b'a pose model', T0 + 60)
    reloads.failed(reloads.begin(status), 'its task is pose', refused=True)
    warning = file_report(watch.check(), reloads)[1]
    assert 'cannot replace the loaded one while running: its task is pose' in warning
    assert 'restart the node' in warning


def test_an_abandoned_load_is_tried_again(model_file):
    watch, reloads = watch_of(model_file), ChangeReloads(True)
    status = changed_twice(watch, b'new', T0 + 60)
    assert reloads.begin(status) is not None
    reloads.abandoned()
    assert reloads.begin(watch.check()) == status.seen


def test_without_reload_on_change_nothing_is_tried_and_the_change_is_reported(model_file):
    watch, reloads = watch_of(model_file), ChangeReloads(False)
    status = changed_twice(watch, b'new', T0 + 60)
    assert reloads.begin(status) is None
    values, warning = file_report(status, reloads)
    assert values['model_file_state'] == CHANGED
    assert warning.startswith(f'model file {model_file} changed on disk since it was loaded '
                              f'(size {len(LOADED)} -> 3, mtime ')
    assert warning.endswith('; serving the loaded model')


def test_gone_and_unchanged_have_no_warning_of_their_own(model_file):
    watch, reloads = watch_of(model_file), ChangeReloads(True)
    assert file_report(watch.check(), reloads)[1] == ''
    os.unlink(model_file)
    values, warning = file_report(watch.check(), reloads)
    assert values['model_file_state'] == GONE and warning == ''


# --- the runner's swap -------------------------------------------------------------------------

def pipeline_of(model):
    return DetectionPipeline(
        model, Preprocessor(PreprocessConfig(input_size=INPUT, resize='stretch'),
                            model.inputs[0]),
        create_decoder('yolov8'), ['person', 'car'], 0.5, [model])


def test_a_swap_runs_the_next_batch_on_the_new_pipeline_and_one_taken_before_on_the_old(
        make_harness):
    gate = threading.Event()
    old = FakeModel(gate=gate)
    harness = make_harness(model=old)
    harness.put('a', 1)
    old.runs.wait_count(1)  # running, held at the gate
    harness.put('a', 2)
    harness.converted.wait_count(2)  # taken and prepared for the old pipeline, waiting
    new = FakeModel()
    harness.runner.swap_pipeline(pipeline_of(new))
    gate.set()
    harness.delivered.wait_count(2)
    harness.put('a', 3)
    results = harness.delivered.wait_count(3)
    for result in results:
        check_result(result)
    assert [values for _, values in old.runs.items] == [[1], [2]]
    assert [values for _, values in new.runs.items] == [[3]]
    assert harness.runner.pipeline.model is new


def test_a_swap_to_another_number_of_runtimes_is_refused(make_harness):
    harness = make_harness()
    two = FakeModel()
    with pytest.raises(ValueError, match='2 runtime'):
        harness.runner.swap_pipeline(DetectionPipeline(
            two, Preprocessor(PreprocessConfig(input_size=INPUT), two.inputs[0]),
            create_decoder('yolov8'), ['person', 'car'], 0.5, [two, FakeModel()]))
    harness.put('a', 1)
    check_result(harness.delivered.wait_count(1)[0])
    assert harness.model.runs.items  # still the old one
