"""
What diag_monitor shows: the latest diagnostic status of each name, as rows, JSON or a table.

ROS-free: it takes plain data (name, level, message, values), so a ``StatusReport`` of
:mod:`.health_reports`, a ``(name, level, message, values)`` tuple, or a
``diagnostic_msgs/DiagnosticStatus`` (read by its fields, with no ROS import) all fit; this is
the one reader of /diagnostics that diag_monitor, the demo and the benchmarks share. It reads
back the keys :mod:`.health_reports` writes (``frames_in``, ``input_rate_hz``, ``e2e.p99_ms``,
...) and the status names of :mod:`.status_names` (inputs, models and the heads of a packed
model). Missing or malformed values become ``None`` (``null`` in JSON, ``-`` in the table).
"""

from dataclasses import asdict, dataclass, field
import math
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from hobot_npu_infer.core.telemetry.health_reports import (
    HEAD_STAGES,
    Level,
    stage_key,
    STAGES,
    SUMMARY_FIELDS,
)
from hobot_npu_infer.core.telemetry.rolling_stats import Clock
from hobot_npu_infer.core.telemetry.status_names import (
    HEAD,
    INPUT,
    MODEL,
    parse_status_name,
    StatusName,
)

# Short names for the table header; every stage of STAGES has one.
STAGE_ABBREVIATIONS = {'e2e': 'e2e', 'queue_wait': 'queue', 'preprocess': 'pre',
                       'inference': 'infer', 'postprocess': 'post', 'publish': 'pub'}
# When the terminal is too narrow, stage columns go in this order (e2e last).
STAGE_DROP_ORDER = ('publish', 'queue_wait', 'postprocess', 'preprocess', 'inference', 'e2e')
MIN_WIDTH = 40
MIN_TOPIC_WIDTH = 24

Number = Optional[Union[int, float]]


def level_number(level: Any) -> int:
    """
    Return a status level as a number, from a number or the one byte diagnostic_msgs carries.

    An empty or malformed level is -1 (shown UNKNOWN).
    """
    if isinstance(level, (bytes, bytearray)):
        return level[0] if level else -1
    try:
        return int(level)
    except (TypeError, ValueError):
        return -1


def _values_dict(values: Any) -> Dict[str, str]:
    """Key-value strings from a dict or (key, value) pairs."""
    items: Iterable = values.items() if isinstance(values, dict) else values or ()
    return {str(k): str(v) for k, v in items}


@dataclass
class StatusEntry:
    """One diagnostic status as plain data."""

    name: str
    level: int
    message: str = ''
    values: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: Any) -> 'StatusEntry':
        """
        Build a StatusEntry from any of the forms a status comes in.

        From a StatusEntry, a ``(name, level, message, values)`` tuple or anything with those
        attributes (a StatusReport); ``values`` may be a dict or (key, value) pairs. The ROS
        layer reads diagnostic_msgs messages into entries (``ros/diagnostics.py``).
        """
        if isinstance(status, StatusEntry):
            return status
        if isinstance(status, (tuple, list)):
            name, level, message, values = (list(status) + ['', {}])[:4]
        else:
            name, level, message, values = (status.name, status.level, status.message,
                                            status.values)
        return cls(str(name), level_number(level), str(message or ''), _values_dict(values))


def level_name(level: int) -> str:
    try:
        return Level(level).name
    except ValueError:
        return 'UNKNOWN' if level < 0 else f'LEVEL{level}'


def grouped(values: Dict[str, str], prefix: str, integer: bool = False) -> Dict[str, Number]:
    """
    Return the numbers of the keys ``<prefix><name>``, by name.

    Such as per-cause counts or per-core load.
    """
    return {key[len(prefix):]: parse_number(text, integer)
            for key, text in sorted(values.items()) if key.startswith(prefix)}


def parse_number(text: Optional[str], integer: bool = False) -> Number:
    """Parse a finite number from a value string, or None when it is missing or malformed."""
    if text is None:
        return None
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if integer:
        return int(value) if value.is_integer() else None
    return value


def parse_flag(text: Optional[str]) -> Optional[bool]:
    """``'true'``/``'false'`` (as the head statuses write them) as a bool, else None."""
    return {'true': True, 'false': False}.get(str(text).strip().lower()) if text else None


def latency_of(values: Dict[str, str], stage: str) -> Dict[str, Number]:
    return {stat: parse_number(values.get(stage_key(stage, stat)), integer=stat == 'count')
            for stat in SUMMARY_FIELDS}


class _JsonRow:
    """What every row shares: it is shown as JSON."""

    def to_json(self) -> Dict[str, Any]:
        """
        Return the row as plain JSON data (nested dicts copied).

        Its age is rounded to milliseconds.
        """
        data = asdict(self)
        data['age_s'] = round(self.age_s, 3)
        return data


class _Row(_JsonRow):
    """
    What the rows of infer_node's statuses share: each is built from a status and its name.

    Each kind of row says in ``_fields`` what it reads of the status name and values; the node,
    level, message, age and name are filled in here.
    """

    @classmethod
    def from_entry(cls, entry: StatusEntry, parsed: StatusName, level: str, message: str,
                   age_s: float) -> Any:
        fields = {'node': parsed.node, 'level': level, 'message': message, 'age_s': age_s,
                  'name': entry.name}
        fields.update(cls._fields(parsed, entry.values))
        return cls(**fields)

    @staticmethod
    def _fields(parsed: StatusName, values: Dict[str, str]) -> Dict[str, Any]:
        raise NotImplementedError


@dataclass
class InputRow(_Row):
    """One input topic of a node: its rates, frame counts and latency per stage."""

    node: str
    input: str  # noqa: A003 (public field: the topic, read by benchmarks and tests)
    level: str
    message: str
    input_rate_hz: Number
    output_rate_hz: Number
    frames_in: Number
    frames_out: Number
    dropped_stale: Number
    conversion_errors: Number
    conversion_errors_by_cause: Dict[str, Number]
    latency_ms: Dict[str, Dict[str, Number]]
    age_s: float
    name: str

    @staticmethod
    def _fields(parsed: StatusName, v: Dict[str, str]) -> Dict[str, Any]:
        return {'input': parsed.subject,
                'input_rate_hz': parse_number(v.get('input_rate_hz')),
                'output_rate_hz': parse_number(v.get('output_rate_hz')),
                'frames_in': parse_number(v.get('frames_in'), True),
                'frames_out': parse_number(v.get('frames_out'), True),
                'dropped_stale': parse_number(v.get('dropped_stale'), True),
                'conversion_errors': parse_number(v.get('conversion_errors'), True),
                'conversion_errors_by_cause': grouped(v, 'conversion_errors.', integer=True),
                'latency_ms': {s: latency_of(v, s) for s in STAGES}}


@dataclass
class ModelRow(_Row):
    """The model a node runs: its runs, errors, batching and inference latency."""

    node: str
    model: str
    level: str
    message: str
    runs: Number
    backend_errors: Number
    backend: Optional[str]
    batch: Optional[str]
    batch_size_mean: Number
    batch_fill_ratio: Number
    padding_slots: Number
    runtime_busy_fraction: Number
    npu_load: Dict[str, Number]  # percent per NPU core, where the board exposes it
    last_error: str
    latency_ms: Dict[str, Dict[str, Number]]
    age_s: float
    name: str

    @staticmethod
    def _fields(parsed: StatusName, v: Dict[str, str]) -> Dict[str, Any]:
        return {'model': v.get('model') or parsed.subject,
                'runs': parse_number(v.get('runs'), True),
                'backend_errors': parse_number(v.get('backend_errors'), True),
                'backend': v.get('backend'), 'batch': v.get('batch'),
                'batch_size_mean': parse_number(v.get('batch_size.mean')),
                'batch_fill_ratio': parse_number(v.get('batch_fill_ratio')),
                'padding_slots': parse_number(v.get('padding_slots'), True),
                'runtime_busy_fraction': parse_number(v.get('runtime_busy_fraction')),
                'npu_load': grouped(v, 'npu_load.'),
                'last_error': v.get('last_error', ''),
                'latency_ms': {'inference': latency_of(v, 'inference')}}


@dataclass
class HeadRow(_Row):
    """One head of a packed model on one input: its rates, runs and latencies."""

    node: str
    head: str
    input: str  # noqa: A003 (public field: the topic, read by benchmarks and tests)
    level: str
    message: str
    enabled: Optional[bool]
    target_hz: Number
    achieved_hz: Number
    runs: Number
    skipped_frames: Number
    latency_ms: Dict[str, Dict[str, Number]]  # inference and postprocess
    age_s: float
    name: str

    @staticmethod
    def _fields(parsed: StatusName, v: Dict[str, str]) -> Dict[str, Any]:
        return {'head': parsed.head or '', 'input': parsed.subject,
                'enabled': parse_flag(v.get('enabled')),
                'target_hz': parse_number(v.get('target_hz')),
                'achieved_hz': parse_number(v.get('achieved_hz')),
                'runs': parse_number(v.get('runs'), True),
                'skipped_frames': parse_number(v.get('skipped_frames'), True),
                'latency_ms': {s: latency_of(v, s) for s in HEAD_STAGES}}


@dataclass
class OtherRow(_JsonRow):
    """A status infer_node did not write (with --all): its name, level, message and values."""

    name: str
    level: str
    message: str
    values: Dict[str, str]
    age_s: float


Row = Union[InputRow, ModelRow, HeadRow, OtherRow]
# The rows of each kind of status name, in the order they are listed, with their JSON key.
ROW_TYPES = {INPUT: InputRow, MODEL: ModelRow, HEAD: HeadRow}
JSON_KEYS = {INPUT: 'inputs', MODEL: 'models', HEAD: 'heads'}


def _sort_key(name: str) -> Tuple[str, str, str]:
    """Node, then topic or model, then head; a name of no known kind by the name itself."""
    parsed = parse_status_name(name)
    if parsed is None:
        return '', name, ''
    return parsed.node, parsed.subject, parsed.head or ''


class DiagnosticsSnapshot:
    """
    The latest status of each name and when it was last seen.

    ``node``: keep only statuses named ``<node>: ...``. ``include_all``: also keep statuses that
    infer_node did not write (shown as name, level and message). ``stale_after_s``: a status not
    seen again for longer than this (and than three of its own publishing intervals) is shown
    STALE, as its publisher has probably gone; None never does.
    """

    def __init__(self, node: Optional[str] = None, include_all: bool = False,
                 stale_after_s: Optional[float] = None, clock: Clock = time.monotonic):
        self.node = node
        self.include_all = include_all
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        # name -> (entry, last seen, interval since the one before or None)
        self._latest: Dict[str, Tuple[StatusEntry, float, Optional[float]]] = {}

    def accepts(self, name: str) -> bool:
        if self.node is not None and not name.startswith(f'{self.node}:'):
            return False
        return self.include_all or parse_status_name(name) is not None

    def update(self, statuses: Iterable[Any], now: Optional[float] = None) -> int:
        """
        Record statuses (later ones replace earlier ones of the same name).

        Returns how many were kept.
        """
        now = self._clock() if now is None else now
        kept = 0
        with self._lock:
            for status in statuses:
                entry = StatusEntry.of(status)
                if not self.accepts(entry.name):
                    continue
                previous = self._latest.get(entry.name)
                interval = now - previous[1] if previous is not None else None
                self._latest[entry.name] = (entry, now, interval)
                kept += 1
        return kept

    def names(self) -> List[str]:
        with self._lock:
            return sorted(self._latest)

    def has_input(self) -> bool:
        """Return True once a status of an infer_node input has arrived."""
        parsed = (parse_status_name(n) for n in self.names())
        return any(p is not None and p.kind == INPUT for p in parsed)

    def __len__(self) -> int:
        with self._lock:
            return len(self._latest)

    def _level_and_message(self, entry: StatusEntry, seen: float, interval: Optional[float],
                           now: float) -> Tuple[str, str]:
        age = now - seen
        if self.stale_after_s is not None:
            limit = max(self.stale_after_s, 3 * interval if interval else 0.0)
            if age > limit:
                last = f' (last: {level_name(entry.level)} {entry.message})' if entry.message \
                    else ''
                return Level.STALE.name, f'no diagnostics for {age:.1f} s{last}'
        return level_name(entry.level), entry.message

    def rows(self, now: Optional[float] = None) -> List[Row]:
        """
        Return input rows, then model rows, then head rows, then (with include_all) others.

        Each group is in order of node, then topic or model (or name), then head.
        """
        now = self._clock() if now is None else now
        with self._lock:
            latest = sorted(self._latest.items(), key=lambda item: _sort_key(item[0]))
        groups: Dict[str, List[Row]] = {kind: [] for kind in ROW_TYPES}
        others: List[Row] = []
        for name, (entry, seen, interval) in latest:
            level, message = self._level_and_message(entry, seen, interval, now)
            age = max(0.0, now - seen)
            parsed = parse_status_name(name)
            if parsed is not None:
                groups[parsed.kind].append(
                    ROW_TYPES[parsed.kind].from_entry(entry, parsed, level, message, age))
            elif self.include_all:
                others.append(OtherRow(name, level, message, dict(entry.values), age))
        return [row for rows in groups.values() for row in rows] + others

    def input_rows(self, now: Optional[float] = None) -> Dict[str, InputRow]:
        """Return the input rows by topic, as a benchmark reads the one node it runs."""
        return {r.input: r for r in self.rows(now) if isinstance(r, InputRow)}

    def to_json(self, now: Optional[float] = None) -> Dict[str, Any]:
        rows = self.rows(now)
        out: Dict[str, Any] = {JSON_KEYS[kind]: [r.to_json() for r in rows if isinstance(r, cls)]
                               for kind, cls in ROW_TYPES.items()}
        if self.include_all:
            out['others'] = [r.to_json() for r in rows if isinstance(r, OtherRow)]
        return out


# ---------------------------------------------------------------------------- table rendering

def _fmt_ms(value: Number) -> str:
    if value is None:
        return '-'
    return f'{value:.1f}' if abs(value) < 100 else f'{value:.0f}'


def _fmt_rate(value: Number) -> str:
    if value is None:
        return '-'
    return f'{value:.1f}' if abs(value) < 1000 else f'{value:.0f}'


def _fmt_int(value: Number) -> str:
    return '-' if value is None else str(value)


def _fmt_number(value: Number) -> str:
    return '-' if value is None else f'{value:.2f}'


def _fmt_flag(value: Optional[bool]) -> str:
    return '-' if value is None else ('yes' if value else 'no')


def _pair(latency: Dict[str, Number]) -> str:
    return f'{_fmt_ms(latency.get("p50"))}/{_fmt_ms(latency.get("p99"))}'


def truncate_left(text: str, width: int) -> str:
    """Keep the end of a topic name, where its distinctive part usually is."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[-width:] if width > 0 else ''
    return '...' + text[-(width - 3):]


def truncate_right(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:max(width, 0)]
    return text[:width - 3] + '...'


@dataclass
class _Column:
    header: str
    cells: List[str]
    left: bool = False  # left-aligned text, else right-aligned numbers
    elastic: bool = False  # shrinks (truncating from the left) to fit the width
    min_width: int = 0

    def natural(self) -> int:
        return max([len(self.header)] + [len(c) for c in self.cells])


def _layout(columns: List[_Column], width: int, sep: str = '  ') -> List[int]:
    """Widths of the columns: natural ones, except elastic ones that share what is left."""
    fixed = sum(c.natural() for c in columns if not c.elastic) + len(sep) * (len(columns) - 1)
    elastic = [c for c in columns if c.elastic]
    room = width - fixed
    widths = []
    for c in columns:
        if not c.elastic:
            widths.append(c.natural())
            continue
        share = max(c.min_width, room // len(elastic))
        widths.append(min(c.natural(), share))
    # give what an elastic column did not need to the others
    spare = room - sum(w for w, c in zip(widths, columns) if c.elastic)
    for i, c in enumerate(columns):
        if c.elastic and spare > 0 and widths[i] < c.natural():
            extra = min(spare, c.natural() - widths[i])
            widths[i] += extra
            spare -= extra
    return widths


def _fits(columns: List[_Column], width: int, sep: str = '  ') -> bool:
    need = sum(min(c.min_width, c.natural()) if c.elastic else c.natural() for c in columns)
    return need + len(sep) * (len(columns) - 1) <= width


def _render_columns(columns: List[_Column], widths: List[int], messages: Sequence[str],
                    width: int, sep: str = '  ') -> List[str]:
    lines = []
    header = sep.join(c.header.ljust(w) if c.left else c.header.rjust(w)
                      for c, w in zip(columns, widths))
    lines.append(header.rstrip())
    indent = ' ' * (widths[0] + len(sep))
    for i, message in enumerate(messages):
        cells = []
        for c, w in zip(columns, widths):
            text = truncate_left(c.cells[i], w) if c.elastic else c.cells[i]
            cells.append(text.ljust(w) if c.left else text.rjust(w))
        lines.append(sep.join(cells).rstrip())
        if message:
            lines.append(truncate_right(f'{indent}{message}', width))
    return lines


def _stages_that_fit(base: List[_Column], stage_columns: Dict[str, _Column],
                     width: int) -> List[str]:
    shown = list(STAGES)
    for stage in STAGE_DROP_ORDER:
        if _fits(base + [stage_columns[s] for s in shown], width) or len(shown) == 1:
            break
        shown.remove(stage)
    return shown


def _subject_column(header: str, cells: List[str]) -> _Column:
    """Make a topic or model column: it shrinks to fit, keeping the end of each name."""
    return _Column(header, cells, left=True, elastic=True, min_width=MIN_TOPIC_WIDTH)


def _lead_columns(rows: Sequence[Any], several_nodes: bool, *subjects: _Column) -> List[_Column]:
    """LEVEL, NODE where there are several, then what the rows are about."""
    columns = [_Column('LEVEL', [r.level for r in rows], left=True)]
    if several_nodes:
        columns.append(_Column('NODE', [r.node for r in rows], left=True, elastic=True,
                               min_width=8))
    return columns + list(subjects)


def _fitted(columns: List[_Column], optional: Sequence[str], width: int) -> List[_Column]:
    """
    Return ``columns`` less those of the ``optional`` headers that do not fit in ``width``.

    ``optional`` lists its headers least useful first.
    """
    for header in optional:
        if _fits(columns, width):
            break
        columns = [c for c in columns if c.header != header]
    return columns


def _render_rows(columns: List[_Column], rows: Sequence[Any], width: int) -> List[str]:
    """Render the header and a line per row; a row that is not OK is followed by its message."""
    messages = [r.message if r.level != 'OK' else '' for r in rows]
    return _render_columns(columns, _layout(columns, width), messages, width)


def _input_lines(inputs: List[InputRow], several_nodes: bool, width: int) -> List[str]:
    base = _lead_columns(inputs, several_nodes,
                         _subject_column('INPUT', [r.input for r in inputs])) + [
        _Column('IN Hz', [_fmt_rate(r.input_rate_hz) for r in inputs]),
        _Column('OUT Hz', [_fmt_rate(r.output_rate_hz) for r in inputs]),
        _Column('DROP', [_fmt_int(r.dropped_stale) for r in inputs]),
        _Column('ERR', [_fmt_int(r.conversion_errors) for r in inputs])]
    stage_columns = {s: _Column(f'{STAGE_ABBREVIATIONS[s]} p50/p99',
                                [_pair(r.latency_ms[s]) for r in inputs]) for s in STAGES}
    shown = _stages_that_fit(base, stage_columns, width)
    lines = _render_rows(base + [stage_columns[s] for s in shown], inputs, width)
    if not inputs:
        lines.append('(no infer_node input statuses received yet on /diagnostics)')
    hidden = [STAGE_ABBREVIATIONS[s] for s in STAGES if s not in shown]
    legend = 'latency p50/p99 in ms'
    if hidden:
        legend += f'; hidden: {", ".join(hidden)} (widen or --json)'
    lines.append(truncate_right(legend, width))
    return lines


def _model_lines(models: List[ModelRow], several_nodes: bool, width: int) -> List[str]:
    columns = _lead_columns(models, several_nodes,
                            _subject_column('MODEL', [r.model for r in models])) + [
        _Column('RUNS', [_fmt_int(r.runs) for r in models]),
        _Column('BACKEND ERR', [_fmt_int(r.backend_errors) for r in models]),
        _Column('infer p50/p99', [_pair(r.latency_ms['inference']) for r in models]),
        _Column('BATCH', [_fmt_number(r.batch_size_mean) for r in models]),
        _Column('FILL', [_fmt_number(r.batch_fill_ratio) for r in models]),
        _Column('PAD', [_fmt_int(r.padding_slots) for r in models]),
        _Column('BUSY', [_fmt_number(r.runtime_busy_fraction) for r in models]),
        _Column('BACKEND', [r.backend or '-' for r in models], left=True)]
    if any(r.npu_load for r in models):
        columns.append(_Column('NPU %', ['/'.join('-' if v is None else f'{v:.0f}'
                                                  for v in r.npu_load.values()) or '-'
                                         for r in models], left=True))
    optional = ('BACKEND', 'BUSY', 'PAD', 'FILL', 'BATCH', 'NPU %')  # least useful first
    return _render_rows(_fitted(columns, optional, width), models, width)


def _head_lines(heads: List[HeadRow], several_nodes: bool, width: int) -> List[str]:
    head = _Column('HEAD', [r.head for r in heads], left=True)
    columns = _lead_columns(heads, several_nodes, head,
                            _subject_column('INPUT', [r.input for r in heads])) + [
        _Column('ENABLED', [_fmt_flag(r.enabled) for r in heads], left=True),
        _Column('TARGET Hz', [_fmt_rate(r.target_hz) for r in heads]),
        _Column('ACTUAL Hz', [_fmt_rate(r.achieved_hz) for r in heads]),
        _Column('RUNS', [_fmt_int(r.runs) for r in heads]),
        _Column('SKIP', [_fmt_int(r.skipped_frames) for r in heads])] + [
        _Column(f'{STAGE_ABBREVIATIONS[s]} p50/p99', [_pair(r.latency_ms[s]) for r in heads])
        for s in HEAD_STAGES]
    optional = ('SKIP', 'RUNS', 'post p50/p99', 'TARGET Hz')  # least useful first
    return _render_rows(_fitted(columns, optional, width), heads, width)


def _other_lines(others: List[OtherRow], width: int) -> List[str]:
    columns = [_Column('LEVEL', [r.level for r in others], left=True),
               _subject_column('NAME', [r.name for r in others]),
               _Column('MESSAGE', [r.message for r in others], left=True, elastic=True,
                       min_width=8)]
    widths = _layout(columns, width)
    lines = [_render_columns(columns, widths, [''] * len(others), width)[0]]
    for r in others:
        lines.append('  '.join([r.level.ljust(widths[0]),
                                truncate_left(r.name, widths[1]).ljust(widths[1]),
                                truncate_right(r.message, widths[2])]).rstrip())
    return lines


def render_table(snapshot: DiagnosticsSnapshot, width: int = 120,
                 now: Optional[float] = None) -> str:
    """
    Render ``snapshot`` as a fixed-width table.

    One line per input, then one per model, then one per head of a packed model on an input
    (and, with include_all, one per other status); a non-OK row is followed by its message.
    Latencies are p50/p99 in ms; stage columns that do not fit in ``width`` are left out (said
    below the table).
    """
    width = max(MIN_WIDTH, int(width))
    rows = snapshot.rows(now)
    inputs = [r for r in rows if isinstance(r, InputRow)]
    models = [r for r in rows if isinstance(r, ModelRow)]
    heads = [r for r in rows if isinstance(r, HeadRow)]
    others = [r for r in rows if isinstance(r, OtherRow)]
    several_nodes = len({r.node for r in inputs + models + heads}) > 1
    lines = _input_lines(inputs, several_nodes, width)
    if models:
        lines += [''] + _model_lines(models, several_nodes, width)
    if heads:
        lines += [''] + _head_lines(heads, several_nodes, width)
    if others:
        lines += [''] + _other_lines(others, width)
    return '\n'.join(lines)
