"""
Status reports of the core as diagnostic_msgs messages.

The statuses are named ``<node>: <task>`` as diagnostic_updater does (see
:mod:`hobot_npu_infer.core.telemetry.status_names`); diag_monitor, the demo and the benchmarks
read them back with :mod:`hobot_npu_infer.core.telemetry.diagnostics_view`.
"""

from typing import Iterable, List

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from hobot_npu_infer.core.telemetry.diagnostics_view import (
    DiagnosticsSnapshot,
    level_number,
    StatusEntry,
)
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


def status_entry(status: DiagnosticStatus) -> StatusEntry:
    """Read one diagnostic_msgs status as the plain data diag_monitor's rows are built from."""
    return StatusEntry(status.name, level_of(status), status.message,
                       {kv.key: kv.value for kv in status.values})


def entries_of(array: DiagnosticArray) -> List[StatusEntry]:
    """Return the statuses of a DiagnosticArray as plain data."""
    return [status_entry(status) for status in array.status]


def snapshot_of(arrays: Iterable[DiagnosticArray], **options) -> DiagnosticsSnapshot:
    """
    Return the latest status of each name in ``arrays``, oldest first.

    ``options`` are DiagnosticsSnapshot's; this is how the demo and the benchmarks read what a
    node published on /diagnostics.
    """
    snapshot = DiagnosticsSnapshot(**options)
    for array in arrays:
        snapshot.update(entries_of(array))
    return snapshot
