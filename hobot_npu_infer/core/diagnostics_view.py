"""What diag_monitor shows: the latest diagnostic status of each name, as rows, JSON or a table.

ROS-free: it takes plain data (name, level, message, values), so a ``StatusReport`` of
:mod:`.health`, a ``(name, level, message, values)`` tuple, or a converted
``diagnostic_msgs/DiagnosticStatus`` all fit. It reads back the keys :mod:`.health` writes
(``frames_in``, ``input_rate_hz``, ``e2e.p99_ms``, ...) and the status names infer_node gives
(``<node>: input <topic>``, ``<node>: model <model>``). Missing or malformed values become
``None`` (``null`` in JSON, ``-`` in the table).
"""

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .health import STAGES, SUMMARY_FIELDS, Level, stage_key
from .stats import Clock

INPUT_TAG = 'input '
MODEL_TAG = 'model '
# Short names for the table header; every stage of STAGES has one.
STAGE_ABBREVIATIONS = {'e2e': 'e2e', 'queue_wait': 'queue', 'preprocess': 'pre',
                       'inference': 'infer', 'postprocess': 'post', 'publish': 'pub'}
# When the terminal is too narrow, stage columns go in this order (e2e last).
STAGE_DROP_ORDER = ('publish', 'queue_wait', 'postprocess', 'preprocess', 'inference', 'e2e')
MIN_WIDTH = 40
MIN_TOPIC_WIDTH = 24

Number = Optional[Union[int, float]]


@dataclass
class StatusEntry:
    """One diagnostic status as plain data."""
    name: str
    level: int
    message: str = ''
    values: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: Any) -> 'StatusEntry':
        """From a StatusEntry, a ``(name, level, message, values)`` tuple or anything with those
        attributes (a health.StatusReport); ``values`` may be a dict or (key, value) pairs."""
        if isinstance(status, StatusEntry):
            return status
        if isinstance(status, (tuple, list)):
            name, level, message, values = (list(status) + ['', {}])[:4]
        else:
            name, level, message, values = (status.name, status.level, status.message,
                                            status.values)
        if not isinstance(values, dict):
            values = dict(values or ())
        try:
            level = int(level)
        except (TypeError, ValueError):
            level = -1
        return cls(str(name), level, str(message or ''),
                   {str(k): str(v) for k, v in values.items()})


def level_name(level: int) -> str:
    try:
        return Level(level).name
    except ValueError:
        return 'UNKNOWN' if level < 0 else f'LEVEL{level}'


def split_name(name: str) -> Tuple[Optional[str], str, str]:
    """``'infer_node: input /cam'`` -> ``('input', 'infer_node', '/cam')``; a name not written
    by infer_node -> ``(None, '', name)``."""
    node, sep, task = name.partition(': ')
    if sep and node:
        for kind, tag in (('input', INPUT_TAG), ('model', MODEL_TAG)):
            if task.startswith(tag) and len(task) > len(tag):
                return kind, node, task[len(tag):]
    return None, '', name


def grouped(values: Dict[str, str], prefix: str, integer: bool = False) -> Dict[str, Number]:
    """The numbers of the keys ``<prefix><name>``, by name (per-cause counts, per-core load)."""
    return {key[len(prefix):]: parse_number(text, integer)
            for key, text in sorted(values.items()) if key.startswith(prefix)}


def parse_number(text: Optional[str], integer: bool = False) -> Number:
    """A finite number from a value string, or None when it is missing or malformed."""
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


def latency_of(values: Dict[str, str], stage: str) -> Dict[str, Number]:
    return {stat: parse_number(values.get(stage_key(stage, stat)), integer=stat == 'count')
            for stat in SUMMARY_FIELDS}


def _row_json(row) -> Dict[str, Any]:
    """A row as plain JSON data (nested dicts copied), its age rounded to milliseconds."""
    data = asdict(row)
    data['age_s'] = round(row.age_s, 3)
    return data


@dataclass
class InputRow:
    node: str
    input: str
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

    @classmethod
    def from_entry(cls, entry: StatusEntry, node: str, topic: str, level: str, message: str,
                   age_s: float) -> 'InputRow':
        v = entry.values
        return cls(node=node, input=topic, level=level, message=message,
                   input_rate_hz=parse_number(v.get('input_rate_hz')),
                   output_rate_hz=parse_number(v.get('output_rate_hz')),
                   frames_in=parse_number(v.get('frames_in'), True),
                   frames_out=parse_number(v.get('frames_out'), True),
                   dropped_stale=parse_number(v.get('dropped_stale'), True),
                   conversion_errors=parse_number(v.get('conversion_errors'), True),
                   conversion_errors_by_cause=grouped(v, 'conversion_errors.', integer=True),
                   latency_ms={s: latency_of(v, s) for s in STAGES},
                   age_s=age_s, name=entry.name)

    to_json = _row_json


@dataclass
class ModelRow:
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

    @classmethod
    def from_entry(cls, entry: StatusEntry, node: str, model: str, level: str, message: str,
                   age_s: float) -> 'ModelRow':
        v = entry.values
        return cls(node=node, model=v.get('model') or model, level=level, message=message,
                   runs=parse_number(v.get('runs'), True),
                   backend_errors=parse_number(v.get('backend_errors'), True),
                   backend=v.get('backend'), batch=v.get('batch'),
                   batch_size_mean=parse_number(v.get('batch_size.mean')),
                   batch_fill_ratio=parse_number(v.get('batch_fill_ratio')),
                   padding_slots=parse_number(v.get('padding_slots'), True),
                   runtime_busy_fraction=parse_number(v.get('runtime_busy_fraction')),
                   npu_load=grouped(v, 'npu_load.'),
                   last_error=v.get('last_error', ''),
                   latency_ms={'inference': latency_of(v, 'inference')},
                   age_s=age_s, name=entry.name)

    to_json = _row_json


@dataclass
class OtherRow:
    name: str
    level: str
    message: str
    values: Dict[str, str]
    age_s: float

    to_json = _row_json


Row = Union[InputRow, ModelRow, OtherRow]


class DiagnosticsSnapshot:
    """The latest status of each name and when it was last seen.

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
        return self.include_all or split_name(name)[0] is not None

    def update(self, statuses: Iterable[Any], now: Optional[float] = None) -> int:
        """Record statuses (later ones replace earlier ones of the same name); returns how many
        were kept."""
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
        """True once a status of an infer_node input has arrived."""
        return any(split_name(n)[0] == 'input' for n in self.names())

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
        """Input rows, then model rows, then (with include_all) other statuses; each group in
        order of node, then topic or model (or name)."""
        now = self._clock() if now is None else now
        with self._lock:
            latest = sorted(self._latest.items(), key=lambda item: split_name(item[0])[1:])
        inputs: List[Row] = []
        models: List[Row] = []
        others: List[Row] = []
        for name, (entry, seen, interval) in latest:
            level, message = self._level_and_message(entry, seen, interval, now)
            age = max(0.0, now - seen)
            kind, node, subject = split_name(name)
            if kind == 'input':
                inputs.append(InputRow.from_entry(entry, node, subject, level, message, age))
            elif kind == 'model':
                models.append(ModelRow.from_entry(entry, node, subject, level, message, age))
            elif self.include_all:
                others.append(OtherRow(name, level, message, dict(entry.values), age))
        return inputs + models + others

    def to_json(self, now: Optional[float] = None) -> Dict[str, Any]:
        rows = self.rows(now)
        out: Dict[str, Any] = {
            'inputs': [r.to_json() for r in rows if isinstance(r, InputRow)],
            'models': [r.to_json() for r in rows if isinstance(r, ModelRow)]}
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


def render_table(snapshot: DiagnosticsSnapshot, width: int = 120,
                 now: Optional[float] = None) -> str:
    """A fixed-width table: one line per input, then one per model (and, with include_all, one
    per other status); a non-OK row is followed by its message. Latencies are p50/p99 in ms;
    stage columns that do not fit in ``width`` are left out (said below the table)."""
    width = max(MIN_WIDTH, int(width))
    rows = snapshot.rows(now)
    inputs = [r for r in rows if isinstance(r, InputRow)]
    models = [r for r in rows if isinstance(r, ModelRow)]
    others = [r for r in rows if isinstance(r, OtherRow)]
    several_nodes = len({r.node for r in inputs + models}) > 1
    lines: List[str] = []

    base = [_Column('LEVEL', [r.level for r in inputs], left=True)]
    if several_nodes:
        base.append(_Column('NODE', [r.node for r in inputs], left=True, elastic=True,
                            min_width=8))
    base += [_Column('INPUT', [r.input for r in inputs], left=True, elastic=True,
                     min_width=MIN_TOPIC_WIDTH),
             _Column('IN Hz', [_fmt_rate(r.input_rate_hz) for r in inputs]),
             _Column('OUT Hz', [_fmt_rate(r.output_rate_hz) for r in inputs]),
             _Column('DROP', [_fmt_int(r.dropped_stale) for r in inputs]),
             _Column('ERR', [_fmt_int(r.conversion_errors) for r in inputs])]
    stage_columns = {s: _Column(f'{STAGE_ABBREVIATIONS[s]} p50/p99',
                                [_pair(r.latency_ms[s]) for r in inputs]) for s in STAGES}
    shown = _stages_that_fit(base, stage_columns, width)
    columns = base + [stage_columns[s] for s in shown]
    messages = [r.message if r.level != 'OK' else '' for r in inputs]
    lines += _render_columns(columns, _layout(columns, width), messages, width)
    if not inputs:
        lines.append('(no infer_node input statuses received yet on /diagnostics)')
    hidden = [STAGE_ABBREVIATIONS[s] for s in STAGES if s not in shown]
    legend = 'latency p50/p99 in ms'
    if hidden:
        legend += f'; hidden: {", ".join(hidden)} (widen or --json)'
    lines.append(truncate_right(legend, width))

    if models:
        mcols = [_Column('LEVEL', [r.level for r in models], left=True)]
        if several_nodes:
            mcols.append(_Column('NODE', [r.node for r in models], left=True, elastic=True,
                                 min_width=8))
        mcols += [_Column('MODEL', [r.model for r in models], left=True, elastic=True,
                          min_width=MIN_TOPIC_WIDTH),
                  _Column('RUNS', [_fmt_int(r.runs) for r in models]),
                  _Column('BACKEND ERR', [_fmt_int(r.backend_errors) for r in models]),
                  _Column('infer p50/p99', [_pair(r.latency_ms['inference']) for r in models]),
                  _Column('BATCH', [_fmt_number(r.batch_size_mean) for r in models]),
                  _Column('FILL', [_fmt_number(r.batch_fill_ratio) for r in models]),
                  _Column('PAD', [_fmt_int(r.padding_slots) for r in models]),
                  _Column('BUSY', [_fmt_number(r.runtime_busy_fraction) for r in models]),
                  _Column('BACKEND', [r.backend or '-' for r in models], left=True)]
        if any(r.npu_load for r in models):
            mcols.append(_Column('NPU %', ['/'.join('-' if v is None else f'{v:.0f}'
                                                    for v in r.npu_load.values()) or '-'
                                           for r in models], left=True))
        for optional in ('BACKEND', 'BUSY', 'PAD', 'FILL', 'BATCH', 'NPU %'):  # least useful first
            if _fits(mcols, width):
                break
            mcols = [c for c in mcols if c.header != optional]
        lines.append('')
        lines += _render_columns(mcols, _layout(mcols, width),
                                 [r.message if r.level != 'OK' else '' for r in models], width)

    if others:
        ocols = [_Column('LEVEL', [r.level for r in others], left=True),
                 _Column('NAME', [r.name for r in others], left=True, elastic=True,
                         min_width=MIN_TOPIC_WIDTH),
                 _Column('MESSAGE', [r.message for r in others], left=True, elastic=True,
                         min_width=8)]
        lines.append('')
        widths = _layout(ocols, width)
        lines.append(_render_columns(ocols, widths, [''] * len(others), width)[0])
        for r in others:
            lines.append('  '.join([r.level.ljust(widths[0]),
                                    truncate_left(r.name, widths[1]).ljust(widths[1]),
                                    truncate_right(r.message, widths[2])]).rstrip())
    return '\n'.join(lines)
