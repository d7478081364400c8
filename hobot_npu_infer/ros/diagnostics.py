"""
Status reports of the core as diagnostic_msgs messages.

The statuses are named ``<node>: <task>`` as diagnostic_updater does (see
:mod:`hobot_npu_infer.core.telemetry.status_names`); diag_monitor, the demo and the benchmarks
read them back with :mod:`hobot_npu_infer.core.telemetry.diagnostics_view`.
"""

from typing import Iterable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from hobot_npu_infer.core.telemetry.diagnostics_view import level_number
from hobot_npu_infer.core.telemetry.health_reports import StatusReport


def to_status(report: StatusReport, hardware_id: str) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=bytes([int(report.level)]), name=report.name, message=report.message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in report.values.items()])


def to_array(stamp, reports: Iterable[StatusReport], hardware_id: str) -> DiagnosticArray:
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [to_status(r, hardware_id) for r in reports]
    return array


def level_of(status: DiagnosticStatus) -> int:
    """Return the status's level as a number (-1 when empty), as diag_monitor reads it."""
    return level_number(status.level)
