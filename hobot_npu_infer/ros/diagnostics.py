"""Status reports of the core as diagnostic_msgs, named ``<node>: <task>`` as diagnostic_updater does."""

from typing import Iterable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ..core.health import StatusReport


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
    level = status.level
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)
