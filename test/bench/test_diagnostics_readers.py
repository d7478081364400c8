"""What the benchmarks read of /diagnostics: the newest input statuses of the node they run."""

from builtin_interfaces.msg import Time
from hobot_npu_infer.bench.node_bench import stage_p50s
from hobot_npu_infer.bench.soak_bench import dropped
from hobot_npu_infer.core.telemetry.health_reports import (
    HealthThresholds,
    ModelStats,
    SourceStats,
    STAGES,
)
from hobot_npu_infer.core.telemetry.status_names import input_status, model_status
from hobot_npu_infer.ros.diagnostics import to_array

STAGE_MS = {'e2e': 20.0, 'queue_wait': 1.0, 'preprocess': 3.0, 'inference': 10.0,
            'postprocess': 2.0, 'publish': 0.5}


def array(*inputs):
    """Build a DiagnosticArray as infer_node publishes it, from ``(topic, dropped, extra_ms)``."""
    now = [100.0]
    reports = []
    for topic, drops, extra_ms in inputs:
        stats = SourceStats(topic, clock=lambda: now[0])
        for _ in range(5):
            now[0] += 0.1
            stats.on_received()
            stats.on_published({s: ms + extra_ms for s, ms in STAGE_MS.items()})
        for _ in range(drops):
            stats.on_dropped()
        reports.append(stats.report(input_status('infer_node', topic), HealthThresholds()))
    model = ModelStats('centerface', clock=lambda: now[0])
    reports.append(model.report(model_status('infer_node', 'centerface')))  # not an input
    return to_array(Time(), reports, '/infer_node')


def test_stage_p50s_are_those_of_the_newest_status_of_the_topic():
    arrays = [array(('/bench/image_raw', 0, 0.0)), array(('/bench/image_raw', 0, 5.0),
                                                         ('/other', 0, 50.0))]
    assert stage_p50s(arrays, '/bench/image_raw') == {s: STAGE_MS[s] + 5.0 for s in STAGES}
    assert stage_p50s(arrays, '/bench') == {}  # not a prefix or suffix match
    assert stage_p50s([], '/bench/image_raw') == {}


def test_dropped_sums_the_newest_count_of_each_input():
    arrays = [array(('/a', 7, 0.0), ('/b', 2, 0.0)), array(('/a', 9, 0.0)), array()]
    assert dropped(arrays, ['/a', '/b']) == 11
    assert dropped(arrays, ['/a', '/c']) == 9
    assert dropped([], ['/a']) == 0
