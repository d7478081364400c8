"""diag_monitor: the ROS-free snapshot, JSON and table, then the command on real /diagnostics."""

import json
import signal
import subprocess
import sys
import threading
import time

from conftest import REPO
from hobot_npu_infer.core.telemetry.diagnostics_view import (
    DiagnosticsSnapshot,
    HeadRow,
    InputRow,
    ModelRow,
    OtherRow,
    render_table,
    StatusEntry,
)
from hobot_npu_infer.core.telemetry.health_reports import (
    HEAD_STAGES,
    HealthThresholds,
    Level,
    ModelStats,
    SourceStats,
    STAGES,
    StatusReport,
    SUMMARY_FIELDS,
)
from hobot_npu_infer.core.telemetry.status_names import (
    head_status,
    input_status,
    model_status,
    parse_status_name,
    StatusName,
)
import numpy as np
import pytest

TOPIC = '/camera/front/image_raw'
STAGE_MS = {'e2e': 20.0, 'queue_wait': 1.0, 'preprocess': 3.0, 'inference': 10.0,
            'postprocess': 2.0, 'publish': 0.5}


class FakeClock:

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def source_report(topic=TOPIC, frames=40, period=0.05, extra_ms=0.0, thresholds=None,
                  node='infer_node', bad=0):
    """Make a real SourceStats report: ``frames`` frames at 1/period Hz, e2e 20..24 ms."""
    clock = FakeClock()
    stats = SourceStats(topic, window_s=10.0, clock=clock)
    for i in range(frames):
        clock.now += period
        stats.on_received()
        stats.on_published({s: ms + extra_ms + (i % 5 if s == 'e2e' else 0)
                            for s, ms in STAGE_MS.items()})
    for _ in range(bad):
        stats.on_conversion_error('encoding')
    return stats.report(input_status(node, topic), thresholds or HealthThresholds())


def model_report(node='infer_node', fail=False):
    clock = FakeClock()
    stats = ModelStats('centerface', clock=clock)
    for i in range(10):
        clock.now += 0.1
        stats.on_run(10.0 + i)
    if fail:
        stats.on_error('NPU timeout')
    return stats.report(model_status(node, 'centerface'),
                        {'backend': 'onnxruntime', 'batch': '1'})


HEAD_STATS = {'faces': (10.0, 9.8, 49, 98, True), 'landmarks': (0.0, 0.0, 0, 147, False)}
HEAD_MS = {'faces': (4.0, 1.0), 'landmarks': (6.0, 0.5)}  # inference, postprocess


def head_reports(node='infer_heads', topic=TOPIC):
    """
    Real head statuses, as the node's HeadOutputs writes them.

    ``faces`` is at 10 Hz with a few frames' latencies, ``landmarks`` is disabled.
    """
    from hobot_npu_infer.core.multi_head.head_scheduler import HeadStats
    from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig, HeadOutput
    from hobot_npu_infer.ros.head_outputs import HeadOutputs

    class Publisher:

        def publish(self, msg):
            pass

    class Scheduler:

        def stats(self, now):
            return {head: HeadStats(*stats) for head, stats in HEAD_STATS.items()}

    class Pipeline:

        def scheduler(self, source):
            return Scheduler()

    outputs = HeadOutputs(lambda *args: Publisher(), [topic],
                          [HeadConfig(head) for head in HEAD_STATS], 'json',
                          dict.fromkeys(HEAD_STATS, 1), window_s=10.0)
    for _ in range(3):
        outputs.publish(topic, None, (64, 48), [
            HeadOutput('faces', None, [np.zeros((1, 4), np.float32)], *HEAD_MS['faces'])])
    return outputs.reports(node, Pipeline())


# ------------------------------------------------------------------------------------ ROS-free

def test_rows_and_json_numbers_from_real_reports():
    source, model = source_report(), model_report()
    snapshot = DiagnosticsSnapshot()
    assert snapshot.update([source, model]) == 2
    inputs, models = snapshot.rows()
    assert isinstance(inputs, InputRow) and isinstance(models, ModelRow)
    assert (inputs.node, inputs.input, inputs.level) == ('infer_node', TOPIC, 'OK')
    assert (inputs.frames_in, inputs.frames_out, inputs.dropped_stale,
            inputs.conversion_errors) == (40, 40, 0, 0)
    assert inputs.output_rate_hz == float(source.values['output_rate_hz']) > 0
    assert inputs.latency_ms['e2e']['p50'] == float(source.values['e2e.p50_ms'])
    assert inputs.latency_ms['inference']['p99'] == 10.0
    assert (models.model, models.runs, models.backend_errors, models.backend) == \
        ('centerface', 10, 0, 'onnxruntime')
    assert models.latency_ms['inference']['count'] == 10

    data = json.loads(json.dumps(snapshot.to_json(), allow_nan=False))
    [row] = data['inputs']
    assert {k: row[k] for k in ('node', 'input', 'level', 'frames_in', 'frames_out',
                                'dropped_stale', 'conversion_errors')} == {
        'node': 'infer_node', 'input': TOPIC, 'level': 'OK', 'frames_in': 40,
        'frames_out': 40, 'dropped_stale': 0, 'conversion_errors': 0}
    assert isinstance(row['input_rate_hz'], float) and isinstance(row['output_rate_hz'], float)
    assert set(row['latency_ms']) == set(STAGES)
    for stage in STAGES:
        summary = row['latency_ms'][stage]
        assert set(summary) >= {'p50', 'p99', 'mean', 'max', 'count'}
        assert summary['count'] == 40 and isinstance(summary['count'], int)
        assert summary['p99'] == float(source.values[f'{stage}.p99_ms'])
    assert row['latency_ms']['e2e']['max'] == 24.0
    [m] = data['models']
    assert (m['model'], m['level'], m['runs'], m['backend_errors']) == ('centerface', 'OK', 10, 0)
    assert m['latency_ms']['inference']['p50'] == float(model.values['inference.p50_ms'])
    assert 'others' not in data


def test_latest_status_of_each_name_wins_and_time_last_seen_is_kept():
    clock = FakeClock(50.0)
    snapshot = DiagnosticsSnapshot(clock=clock)
    snapshot.update([source_report(frames=10), source_report('/cam2', frames=5)])
    clock.now = 52.0
    snapshot.update([source_report(frames=30)])  # only the first input again
    clock.now = 53.0
    rows = snapshot.rows()
    assert [(r.input, r.frames_in) for r in rows] == [('/cam2', 5), (TOPIC, 30)]
    assert [r.age_s for r in rows] == [3.0, 1.0]
    assert snapshot.names() == ['infer_node: input /cam2', f'infer_node: input {TOPIC}']


def test_other_statuses_are_ignored_unless_all_and_node_filters():
    other = ('cpu_monitor: load', 1, 'load high', {'load': '3.5'})
    statuses = [source_report(), source_report(node='infer_node2'), model_report(), other]

    default = DiagnosticsSnapshot()
    default.update(statuses)
    assert not any(isinstance(r, OtherRow) for r in default.rows())
    assert [r.node for r in default.rows()] == ['infer_node', 'infer_node2', 'infer_node']
    assert default.has_input()

    everything = DiagnosticsSnapshot(include_all=True)
    everything.update(statuses)
    [o] = [r for r in everything.rows() if isinstance(r, OtherRow)]
    assert (o.name, o.level, o.message) == ('cpu_monitor: load', 'WARN', 'load high')
    assert everything.to_json()['others'][0]['values'] == {'load': '3.5'}
    table = render_table(everything, 120)
    assert 'cpu_monitor: load' in table and 'load high' in table

    one_node = DiagnosticsSnapshot(node='infer_node2')
    one_node.update(statuses)
    assert [(r.node, r.input) for r in one_node.rows()] == [('infer_node2', TOPIC)]
    models_only = DiagnosticsSnapshot()
    models_only.update([model_report()])
    assert not models_only.has_input()


def test_names_of_infer_node():
    assert parse_status_name('infer_node: input /a/b') == StatusName('input', 'infer_node', '/a/b')
    assert parse_status_name('n: model yolo: v8') == StatusName('model', 'n', 'yolo: v8')
    assert parse_status_name('n: head faces on /cam/image_raw') == \
        StatusName('head', 'n', '/cam/image_raw', 'faces')
    assert parse_status_name('cpu: load') is None
    assert parse_status_name('input /a') is None
    assert parse_status_name('n: input ') is None
    assert parse_status_name(': input /a') is None
    assert parse_status_name('n: inputs /a') is None
    for name in ('n: head ', 'n: head faces', 'n: head faces on ', 'n: head  on /cam'):
        assert parse_status_name(name) is None, name


def test_names_built_are_the_names_read_back():
    assert input_status('infer_node', '/a/b') == 'infer_node: input /a/b'
    assert model_status('n', 'yolo: v8') == 'n: model yolo: v8'
    assert head_status('n', 'faces', '/cam') == 'n: head faces on /cam'
    assert parse_status_name(input_status('n', '/cam')) == StatusName('input', 'n', '/cam')
    assert parse_status_name(model_status('n', 'm')) == StatusName('model', 'n', 'm')
    assert parse_status_name(head_status('n', 'faces', '/cam')) == \
        StatusName('head', 'n', '/cam', 'faces')


def test_table_shows_topic_level_numbers_and_messages_of_non_ok_rows():
    slow = source_report('/camera/rear/image_raw', extra_ms=30.0,
                         thresholds=HealthThresholds(expected_rate_hz=30.0))
    snapshot = DiagnosticsSnapshot()
    snapshot.update([source_report(), slow, model_report(fail=True)])
    table = render_table(snapshot, 160)
    lines = table.splitlines()
    header = lines[0]
    for column in ('LEVEL', 'INPUT', 'IN Hz', 'OUT Hz', 'DROP', 'ERR', 'e2e p50/p99',
                   'infer p50/p99'):
        assert column in header
    [ok_line] = [ln for ln in lines if TOPIC in ln]
    assert ok_line.split()[0] == 'OK'
    p50, p99 = source_report().values['e2e.p50_ms'], source_report().values['e2e.p99_ms']
    assert f'{float(p50):.1f}/{float(p99):.1f}' in ok_line
    assert '10.0/10.0' in ok_line  # inference p50/p99
    assert '20.0' in ok_line  # the rates
    ok_message = source_report().message
    assert ok_message not in table  # messages only for rows that are not OK

    [slow_index] = [i for i, ln in enumerate(lines) if '/camera/rear/image_raw' in ln]
    assert lines[slow_index].split()[0] == 'WARN'
    assert 'below expected 30.0 Hz' in lines[slow_index + 1]
    model_lines = [ln for ln in lines if 'centerface' in ln]
    assert model_lines[0].split()[0] == 'ERROR'
    assert any('backend failing: NPU timeout' in ln for ln in lines)


def test_table_fits_narrow_and_wide_terminals_keeping_the_end_of_long_topics():
    long_topic = '/robot_with_a_long_name/sensors/cameras/rear_left/color/image_raw_compressed'
    snapshot = DiagnosticsSnapshot()
    snapshot.update([source_report(long_topic, thresholds=HealthThresholds(
        expected_rate_hz=1000.0)), model_report()])
    for width in (80, 100, 120, 160):
        table = render_table(snapshot, width)
        assert all(len(line) <= width for line in table.splitlines()), (width, table)
        assert 'e2e p50/p99' in table and 'image_raw_compressed' in table
    assert 'pub p50/p99' in render_table(snapshot, 400)
    assert long_topic in render_table(snapshot, 400)
    narrow = render_table(snapshot, 80)
    assert 'hidden:' in narrow and long_topic not in narrow


def test_malformed_and_missing_values_become_null():
    values = {'frames_in': 'many', 'frames_out': '12', 'input_rate_hz': 'nan',
              'output_rate_hz': '', 'e2e.p50_ms': '1e400', 'e2e.p99_ms': 'x',
              'e2e.count': '3.5', 'inference.p50_ms': ' 7.25 ', 'dropped_stale': '-1'}
    snapshot = DiagnosticsSnapshot()
    snapshot.update([('n: input /cam', 2, 'broken', values),
                     StatusEntry('n: model m', 9, 'odd level', {'runs': '??'}),
                     ('n: input /cam2', 'bad-level', None, None)])
    data = json.loads(json.dumps(snapshot.to_json(), allow_nan=False))
    cam, cam2 = data['inputs']
    assert (cam['frames_in'], cam['frames_out'], cam['input_rate_hz'],
            cam['output_rate_hz'], cam['dropped_stale']) == (None, 12, None, None, -1)
    assert cam['latency_ms']['e2e'] == dict.fromkeys(SUMMARY_FIELDS, None)
    assert cam['latency_ms']['inference']['p50'] == 7.25
    assert cam['conversion_errors'] is None and cam['level'] == 'ERROR'
    assert cam2['level'] == 'UNKNOWN' and cam2['message'] == '' and cam2['frames_in'] is None
    [model] = data['models']
    assert (model['level'], model['runs'], model['model']) == ('LEVEL9', None, 'm')
    table = render_table(snapshot, 120)
    assert '-/-' in table and 'broken' in table and 'odd level' in table


def test_a_status_not_seen_again_turns_stale():
    clock = FakeClock(10.0)
    snapshot = DiagnosticsSnapshot(stale_after_s=5.0, clock=clock)
    snapshot.update([source_report()])
    clock.now = 14.0
    assert snapshot.rows()[0].level == 'OK'
    clock.now = 16.0
    [row] = snapshot.rows()
    assert row.level == Level.STALE.name
    assert row.message.startswith('no diagnostics for 6.0 s')
    assert 'no diagnostics for 6.0 s' in render_table(snapshot, 120)


def test_status_entry_from_tuples_and_reports():
    report = StatusReport('n: input /a', Level.WARN, 'w', {'frames_in': '1'})
    assert StatusEntry.of(report) == StatusEntry('n: input /a', 1, 'w', {'frames_in': '1'})
    assert StatusEntry.of(('x', 0, 'm', [('k', 'v')])) == StatusEntry('x', 0, 'm', {'k': 'v'})


def test_empty_snapshot_renders_a_header():
    snapshot = DiagnosticsSnapshot()
    assert snapshot.to_json() == {'inputs': [], 'models': [], 'heads': []}
    table = render_table(snapshot, 80)
    assert table.splitlines()[0].startswith('LEVEL') and 'no infer_node' in table


def test_head_statuses_are_rows_of_their_own_without_all():
    heads = head_reports()
    snapshot = DiagnosticsSnapshot()
    assert snapshot.update([source_report(node='infer_heads'), model_report('infer_heads'),
                            *heads]) == 4
    rows = snapshot.rows()
    assert [type(r) for r in rows] == [InputRow, ModelRow, HeadRow, HeadRow]
    faces, landmarks = rows[2:]
    assert (faces.node, faces.head, faces.input, faces.level, faces.name) == \
        ('infer_heads', 'faces', TOPIC, 'OK', f'infer_heads: head faces on {TOPIC}')
    assert faces.message == 'target 10.0 Hz, achieved 9.8 Hz'
    assert (faces.enabled, faces.target_hz, faces.achieved_hz, faces.runs,
            faces.skipped_frames) == (True, 10.0, 9.8, 49, 98)
    assert set(faces.latency_ms) == set(HEAD_STAGES)
    assert faces.latency_ms['inference'] == {'count': 3, 'mean': 4.0, 'p50': 4.0, 'p90': 4.0,
                                             'p99': 4.0, 'max': 4.0}
    assert faces.latency_ms['postprocess']['p99'] == 1.0
    assert (landmarks.head, landmarks.enabled, landmarks.message, landmarks.runs) == \
        ('landmarks', False, 'disabled', 0)
    assert landmarks.latency_ms['inference']['count'] == 0

    data = json.loads(json.dumps(snapshot.to_json(), allow_nan=False))
    assert [h['head'] for h in data['heads']] == ['faces', 'landmarks']
    assert data['heads'][0] == {**faces.to_json(), 'age_s': 0.0}
    assert {k: data['heads'][0][k] for k in ('node', 'input', 'enabled', 'target_hz',
                                             'achieved_hz', 'runs', 'skipped_frames')} == {
        'node': 'infer_heads', 'input': TOPIC, 'enabled': True, 'target_hz': 10.0,
        'achieved_hz': 9.8, 'runs': 49, 'skipped_frames': 98}
    assert data['heads'][0]['latency_ms']['inference']['p50'] == 4.0
    assert len(data['inputs']) == 1 and len(data['models']) == 1 and 'others' not in data

    only_heads = DiagnosticsSnapshot(node='infer_heads')
    only_heads.update(heads + head_reports(node='other'))
    assert [(r.node, r.head) for r in only_heads.rows()] == [('infer_heads', 'faces'),
                                                             ('infer_heads', 'landmarks')]
    assert not only_heads.has_input()


def test_table_shows_a_line_per_head_after_the_models():
    snapshot = DiagnosticsSnapshot()
    snapshot.update([source_report(node='infer_heads'), model_report('infer_heads'),
                     *head_reports()])
    lines = render_table(snapshot, 160).splitlines()
    [header] = [ln for ln in lines if ln.startswith('LEVEL') and 'HEAD' in ln]
    for column in ('INPUT', 'ENABLED', 'TARGET Hz', 'ACTUAL Hz', 'RUNS', 'SKIP',
                   'infer p50/p99', 'post p50/p99'):
        assert column in header
    assert lines.index(header) > max(i for i, ln in enumerate(lines) if 'centerface' in ln)
    faces, landmarks = lines[lines.index(header) + 1:lines.index(header) + 3]
    assert faces.split()[:4] == ['OK', 'faces', TOPIC, 'yes']
    assert faces.split()[4:] == ['10.0', '9.8', '49', '98', '4.0/4.0', '1.0/1.0']
    assert landmarks.split()[:4] == ['OK', 'landmarks', TOPIC, 'no']
    for width in (80, 100, 120):
        table = render_table(snapshot, width)
        assert all(len(line) <= width for line in table.splitlines()), (width, table)
        assert 'faces' in table and 'landmarks' in table

    two_nodes = DiagnosticsSnapshot()
    two_nodes.update([source_report(), *head_reports()])
    [head_header] = [ln for ln in render_table(two_nodes, 200).splitlines() if 'HEAD' in ln]
    assert head_header.split()[:3] == ['LEVEL', 'NODE', 'HEAD']


# ------------------------------------------------------------------------- real ROS processes

def test_status_messages_convert_to_plain_data():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from hobot_npu_infer.ros.diagnostics import entries_of, level_of, status_entry
    status = DiagnosticStatus(level=DiagnosticStatus.WARN, name='n: input /a', message='m',
                              values=[KeyValue(key='frames_in', value='3')])
    assert status_entry(status) == StatusEntry('n: input /a', 1, 'm', {'frames_in': '3'})
    assert level_of(status) == 1
    assert entries_of(DiagnosticArray(status=[status])) == [status_entry(status)]
    status.level = b''
    assert status_entry(status).level == -1 and level_of(status) == -1


def test_benchmarks_read_the_newest_input_rows_of_diagnostic_arrays():
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray
    from hobot_npu_infer.ros.diagnostics import snapshot_of, to_array
    older = to_array(Time(), [source_report(frames=10), source_report('/cam2', frames=5)], 'hw')
    newer = to_array(Time(), [source_report(frames=30), model_report(), *head_reports()], 'hw')
    inputs = snapshot_of([older, newer, DiagnosticArray()]).input_rows()
    assert {topic: row.frames_in for topic, row in inputs.items()} == {TOPIC: 30, '/cam2': 5}
    assert inputs[TOPIC].latency_ms['e2e']['p50'] == float(source_report().values['e2e.p50_ms'])
    assert snapshot_of([]).input_rows() == {}


OFFSETS = {'mean': 1.0, 'p50': 0.4, 'p90': 3.0, 'p99': 5.6, 'max': 8.2}
PUBLISHED_INPUT = {
    'frames_in': '120', 'frames_out': '118', 'dropped_stale': '2', 'conversion_errors': '1',
    'conversion_errors.encoding': '1', 'input_rate_hz': '29.97', 'output_rate_hz': '29.50'}
for _i, _stage in enumerate(STAGES):  # e2e p50/p99 10.40/15.60, queue_wait 20.40/25.60, ...
    PUBLISHED_INPUT[f'{_stage}.count'] = '118'
    for _stat, _offset in OFFSETS.items():
        PUBLISHED_INPUT[f'{_stage}.{_stat}_ms'] = f'{10 * (_i + 1) + _offset:.2f}'
PUBLISHED_HEAD = {'target_hz': '10.00', 'achieved_hz': '9.90', 'runs': '40',
                  'skipped_frames': '80', 'enabled': 'true', 'inference.count': '40',
                  'inference.p50_ms': '3.30', 'inference.p99_ms': '5.50',
                  'postprocess.p50_ms': '0.70', 'postprocess.p99_ms': '1.20'}


def published_array():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    def status(name, level, message, values):
        return DiagnosticStatus(level=bytes([level]), name=name, message=message,
                                hardware_id='/infer_node',
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
    array = DiagnosticArray()
    array.status = [
        status(input_status('infer_node', TOPIC), 1, 'output 29.5 Hz below expected 30.0 Hz',
               PUBLISHED_INPUT),
        status(model_status('infer_node', 'centerface'), 0, '118 runs, inference p50 4.1 ms',
               {'model': 'centerface', 'runs': '118', 'backend_errors': '0',
                'inference.p50_ms': '4.05', 'inference.p99_ms': '6.50',
                'backend': 'onnxruntime'}),
        status(head_status('infer_node', 'faces', TOPIC), 0, 'target 10.0 Hz, achieved 9.9 Hz',
               PUBLISHED_HEAD),
        status('cpu_monitor: load', 0, 'fine', {'load': '0.5'}),
    ]
    return array


@pytest.fixture
def diagnostics_publisher():
    """Publish published_array() on /diagnostics five times a second until the test ends."""
    from diagnostic_msgs.msg import DiagnosticArray
    from ros_harness import Listener
    listener = Listener('diag_test_publisher')
    publisher = listener.publisher(DiagnosticArray, '/diagnostics')
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            array = published_array()
            array.header.stamp = listener.node.get_clock().now().to_msg()
            publisher.publish(array)
            stop.wait(0.2)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)
    listener.close()


def monitor(*args, timeout=60):
    from hobot_npu_infer.harness.ros_env import child_environment
    return subprocess.run([sys.executable, '-m', 'hobot_npu_infer.tools.diag_monitor', *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env=child_environment())


def test_once_json_prints_what_was_published(diagnostics_publisher):
    proc = monitor('--once', '--json', '--timeout', '30', '--ros-args', '--log-level', 'warn')
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [row] = data['inputs']
    assert (row['node'], row['input'], row['level'], row['message']) == \
        ('infer_node', TOPIC, 'WARN', 'output 29.5 Hz below expected 30.0 Hz')
    assert (row['frames_in'], row['frames_out'], row['dropped_stale'],
            row['conversion_errors'], row['input_rate_hz'], row['output_rate_hz']) == \
        (120, 118, 2, 1, 29.97, 29.5)
    assert row['conversion_errors_by_cause'] == {'encoding': 1}
    for stage in STAGES:
        for stat in SUMMARY_FIELDS:
            key = stat if stat == 'count' else f'{stat}_ms'
            want = float(PUBLISHED_INPUT[f'{stage}.{key}'])
            assert row['latency_ms'][stage][stat] == want
    [model] = data['models']
    assert (model['model'], model['level'], model['runs'], model['backend_errors'],
            model['backend']) == ('centerface', 'OK', 118, 0, 'onnxruntime')
    assert model['latency_ms']['inference']['p50'] == 4.05
    assert model['latency_ms']['inference']['p99'] == 6.5
    assert model['latency_ms']['inference']['count'] is None  # not published
    [head] = data['heads']  # a row of its own, without --all
    assert (head['node'], head['head'], head['input'], head['level'], head['enabled'],
            head['target_hz'], head['achieved_hz'], head['runs'], head['skipped_frames']) == \
        ('infer_node', 'faces', TOPIC, 'OK', True, 10.0, 9.9, 40, 80)
    assert head['latency_ms']['inference']['p50'] == 3.3
    assert head['latency_ms']['inference']['count'] == 40
    assert head['latency_ms']['postprocess']['p99'] == 1.2
    assert 'others' not in data  # cpu_monitor is not ours


def test_once_table_with_all_and_node_filter(diagnostics_publisher):
    proc = monitor('--once', '--all', '--timeout', '30', '--width', '160')
    assert proc.returncode == 0, proc.stderr
    assert TOPIC in proc.stdout and 'e2e p50/p99' in proc.stdout
    assert '10.4/15.6' in proc.stdout and '40.4/45.6' in proc.stdout  # e2e, inference
    assert 'below expected 30.0 Hz' in proc.stdout
    assert 'cpu_monitor: load' in proc.stdout
    [faces] = [ln for ln in proc.stdout.splitlines() if ln.split()[1:2] == ['faces']]
    assert faces.split()[2:] == [TOPIC, 'yes', '10.0', '9.9', '40', '80', '3.3/5.5',
                                 '0.7/1.2']

    proc = monitor('--once', '--json', '--all', '--node', 'cpu_monitor', '--timeout', '30')
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data['inputs'] == [] and data['models'] == [] and data['heads'] == []
    assert [o['name'] for o in data['others']] == ['cpu_monitor: load']


def test_once_gives_up_after_the_timeout_with_one_line():
    proc = monitor('--once', '--timeout', '2')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        'error: no diagnostics received on /diagnostics within 2 s']
    assert proc.stdout == ''


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_live_mode_redraws_until_a_signal_and_exits_0(diagnostics_publisher, tmp_path, sig):
    from hobot_npu_infer.harness.ros_env import child_environment
    out_path = tmp_path / 'out.txt'
    with open(out_path, 'w') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'hobot_npu_infer.tools.diag_monitor',
                                 '--period', '0.5'], cwd=REPO, env=child_environment(),
                                stdout=out, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 30
            while TOPIC not in out_path.read_text() and time.monotonic() < end \
                    and proc.poll() is None:
                time.sleep(0.1)
            time.sleep(1.0)  # a few more redraws
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = out_path.read_text()
    assert proc.returncode == 0, err
    assert 'Traceback' not in err
    assert 'LEVEL' in output and 'IN Hz' in output and 'e2e p50/p99' in output
    assert TOPIC in output
    assert '\x1b[' not in output  # not a terminal: no screen clearing
    assert output.count('LEVEL  INPUT') >= 2  # redrawn, separated by blank lines
    assert '\n\n' in output


def test_npu_load_is_a_column_and_in_json_where_the_board_reports_it():
    clock = FakeClock()
    stats = ModelStats('yolov8n', clock=clock)
    stats.npu_load = lambda: {'core0': 41.0, 'core1': 38.0, 'core2': 0.0}
    clock.now += 0.1
    stats.on_run(20.0)
    snapshot = DiagnosticsSnapshot()
    snapshot.update([stats.report('infer_node: model yolov8n', {'backend': 'rknn'})])
    [row] = snapshot.rows()
    assert row.npu_load == {'core0': 41.0, 'core1': 38.0, 'core2': 0.0}
    assert json.loads(json.dumps(snapshot.to_json()))['models'][0]['npu_load']['core1'] == 38.0
    table = render_table(snapshot, width=200)
    assert 'NPU %' in table and '41/38/0' in table
    plain = DiagnosticsSnapshot()
    plain.update([model_report()])
    assert 'NPU %' not in render_table(plain, width=200)
