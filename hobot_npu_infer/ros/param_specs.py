"""
Node parameters declared from one table: type, default, description, range, read-only.

Every parameter holds a value of its declared type from the start, an empty list too, so
``ros2 param dump`` and ``ros2 param get`` see all of them. A number of the other kind is taken
where nothing is lost: an integer for a double, a whole double for an integer (and lists of
them); the node then holds it as the declared type. Values are validated when declared and again
on every runtime change, with a reason that names the parameter; a runtime change is checked
whole before any of it applies.

How, on Humble and Jazzy alike: rclpy checks a static type before any callback can convert the
value (Iron added pre-set callbacks, which Humble lacks and which declaring skips), so every
parameter is declared with ``dynamic_typing`` and its declared type is enforced here, by the
node's one on-set callback. It converts each value and puts the converted parameter in the list
rclpy then stores and announces (both distros store the list their on-set callbacks received),
and puts back the declared type in the descriptor, which rclpy's dynamic typing sets to the type
of each value offered.
"""

from dataclasses import dataclass
import difflib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
import weakref

from hobot_npu_infer.core.errors import InferError
from hobot_npu_infer.ros.rmw_check import require_rmw

require_rmw()  # before rclpy loads: see rmw_check

from rcl_interfaces.msg import (  # noqa: E402 (after require_rmw)
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterValueException  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

Check = Callable[[Any], Optional[str]]  # value -> reason it is invalid, or None
ARRAYS = frozenset((Parameter.Type.BYTE_ARRAY, Parameter.Type.BOOL_ARRAY,
                    Parameter.Type.INTEGER_ARRAY, Parameter.Type.DOUBLE_ARRAY,
                    Parameter.Type.STRING_ARRAY))


class InvalidParameter(ValueError):
    """A parameter value is invalid; the message names the parameter."""


def is_whole(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer()


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    type: Parameter.Type  # noqa: A003 (public field: spec.type, read by declare)
    read_only: bool = True
    range: Optional[Tuple[float, float]] = None  # noqa: A003 (public field, read by test_docs)
    check: Optional[Check] = None

    def descriptor(self) -> ParameterDescriptor:
        """Describe the parameter; dynamically typed, as its type is enforced by ``typed``."""
        descriptor = ParameterDescriptor(name=self.name, type=self.type.value,
                                         description=self.description,
                                         read_only=self.read_only, dynamic_typing=True)
        if self.range is not None:
            low, high = self.range
            if self.type == Parameter.Type.INTEGER:
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high),
                                                         step=0)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(low), to_value=float(high), step=0.0)]
        return descriptor

    def typed(self, kind: Parameter.Type, value: Any, declaring: bool = False) -> Any:
        """
        Return ``value``, of type ``kind``, as this parameter's type; raise InvalidParameter.

        Taken without loss: an integer for a double, a whole double for an integer, the same
        for their lists, and an empty list of any kind (``ros2 param set`` sends ``[]`` as a
        bool array). When ``declaring``, no value (``-p name:=[]`` or ``name: []`` in a
        parameters file) is an empty list; later, unsetting a parameter is refused.
        """
        want = self.type
        if kind == want:
            return value
        if kind == Parameter.Type.NOT_SET:
            if declaring and want in ARRAYS:
                return []
            raise InvalidParameter(f'{self.name}: needs a value of type {want.name} (it cannot '
                                   f'be unset)')
        if want in ARRAYS and kind in ARRAYS and len(value) == 0:
            return []
        if want == Parameter.Type.DOUBLE and kind == Parameter.Type.INTEGER:
            return float(value)
        if want == Parameter.Type.INTEGER and kind == Parameter.Type.DOUBLE and is_whole(value):
            return int(value)
        if want == Parameter.Type.DOUBLE_ARRAY and kind == Parameter.Type.INTEGER_ARRAY:
            return [float(v) for v in value]
        if want == Parameter.Type.INTEGER_ARRAY and kind == Parameter.Type.DOUBLE_ARRAY and \
                all(map(is_whole, value)):
            return [int(v) for v in value]
        lossy = ' (not a whole number)' if kind in (Parameter.Type.DOUBLE,
                                                    Parameter.Type.DOUBLE_ARRAY) else ''
        shown = list(value) if kind in ARRAYS else value
        raise InvalidParameter(f'{self.name}={shown!r}: expected {want.name}, got '
                               f'{kind.name}{lossy}')

    def range_text(self) -> str:
        low, high = self.range
        if self.type == Parameter.Type.INTEGER:
            return f'{int(low)}..{int(high)}'
        return f'{low:g}..{high:g}'

    def problem(self, value: Any) -> Optional[str]:
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            return f'{self.name}={value!r} is out of range {self.range_text()}'
        if self.check is not None:
            reason = self.check(value)
            if reason:
                return f'{self.name}={value!r}: {reason}'
        return None


def one_of(choices: Sequence[str]) -> Check:
    return lambda v: None if v in choices else f'must be one of {", ".join(choices)}'


def each_one_of(choices: Sequence[str]) -> Check:
    return lambda vs: next((f'{v!r} must be one of {", ".join(choices)}'
                            for v in vs if v not in choices), None)


def key_values(items: Sequence[str]) -> Optional[str]:
    """Problem with a list of 'key=value' options, or None."""
    from hobot_npu_infer.core.backends.selection import parse_options
    try:
        parse_options(items)
    except InferError as exc:
        return str(exc)
    return None


def size_text(text: str) -> Optional[str]:
    """Problem with a 'WxH' size parameter (empty means unset), or None."""
    if not text:
        return None
    from hobot_npu_infer.core.imaging.geometry import parse_size
    try:
        parse_size(text)
    except InferError as exc:
        return str(exc)
    return None


def string(name, default, description, read_only=True, check=None) -> ParamSpec:
    return ParamSpec(name, default, description, Parameter.Type.STRING, read_only, None, check)


def strings(name, default, description, read_only=True, check=None) -> ParamSpec:
    return ParamSpec(name, list(default), description, Parameter.Type.STRING_ARRAY, read_only,
                     None, check)


def integers(name, default, description, low, high, read_only=True) -> ParamSpec:
    def in_range(values):
        return next((f'{v} is out of range {low}..{high}' for v in values
                     if not low <= v <= high), None)
    return ParamSpec(name, list(default), description, Parameter.Type.INTEGER_ARRAY, read_only,
                     None, in_range)


def integer(name, default, description, low, high, read_only=True) -> ParamSpec:
    return ParamSpec(name, default, description, Parameter.Type.INTEGER, read_only, (low, high))


def number(name, default, description, low, high, read_only=True) -> ParamSpec:
    return ParamSpec(name, float(default), description, Parameter.Type.DOUBLE, read_only,
                     (low, high))


def boolean(name, default, description, read_only=True) -> ParamSpec:
    return ParamSpec(name, default, description, Parameter.Type.BOOL, read_only)


Changes = Dict[str, Any]  # parameter name -> new value, for one set request
Explain = Callable[[str], Optional[str]]  # undeclared name -> why it cannot be set, or None
Guard = Tuple[Callable[[Changes], Optional[str]], Callable[[Changes], None]]  # check, apply
# rclpy's post-set callback (Iron and later); Humble has only the on-set callback.
HAS_POST_SET = hasattr(Node, 'add_post_set_parameters_callback')


class NodeParameters:
    """
    The parameters a node declared from specs, and its one on-set callback.

    The callback refuses a name the node has not declared (:meth:`unknown`), gives each value
    the declared type (``ParamSpec.typed``), then runs the guards' checks on the whole request;
    the guards' ``apply`` runs once the values are stored. Parameters not declared from specs,
    such as rclpy's own ``use_sim_time``, pass unchanged.

    A node made with ``allow_undeclared_parameters=True`` (the infer nodes) lets a set of an
    undeclared name reach the callback, which refuses it naming it, so nothing undeclared is
    ever stored: rclpy's own refusal names nothing (``Invalid access to undeclared
    parameter(s): []``). Such a node declares its parameters with :func:`declare` only, which
    tells the callback which name it is declaring.
    """

    def __init__(self, node: Node):
        self._node = weakref.ref(node)  # the node holds this object's callbacks
        self.specs: Dict[str, ParamSpec] = {}
        self.guards: List[Guard] = []
        self.explainers: List[Explain] = []
        self.declaring: Optional[str] = None  # the name declare() is declaring
        self.refused: Optional[str] = None  # why the last request was refused, for declare
        node.add_on_set_parameters_callback(self._on_set)
        if HAS_POST_SET:
            node.add_post_set_parameters_callback(self._post_set)

    def _on_set(self, params: List[Parameter]) -> SetParametersResult:
        node = self._node()
        try:
            for param in params:
                if param.name != self.declaring and not node.has_parameter(param.name):
                    raise InvalidParameter(self.unknown(node, param.name))
            self._convert(node, params)
            changes = {param.name: param.value for param in params}
            for check, _ in self.guards:
                reason = check(changes)
                if reason:
                    raise InvalidParameter(reason)
        except InvalidParameter as exc:
            self.refused = str(exc)
            return SetParametersResult(successful=False, reason=self.refused)
        finally:
            self._restore_types(node, params)
        if not HAS_POST_SET:  # Humble: the values are stored right after this returns
            self._post_set(params)
        return SetParametersResult(successful=True)

    def unknown(self, node: Node, name: str) -> str:
        """
        Return why ``name``, which ``node`` has not declared, cannot be set, naming it.

        An explainer's reason if one knows the name (a head's parameter), else that the node
        has no such parameter, with the closest declared name when one is close.
        """
        for explain in self.explainers:
            reason = explain(name)
            if reason:
                return f'{name}: {reason}'
        names = node.list_parameters([], 0).names  # depth 0: every name
        close = difflib.get_close_matches(name, names, n=1)
        hint = f'; did you mean {close[0]}?' if close else ''
        return f'{name}: no such parameter of {node.get_name()}{hint}'

    def _convert(self, node: Node, params: List[Parameter]) -> None:
        """Replace, in the list rclpy stores from, each value by its declared type's."""
        for i, param in enumerate(params):
            spec = self.specs.get(param.name)
            if spec is None or param.type_ == spec.type:
                continue
            value = spec.typed(param.type_, param.value, not node.has_parameter(param.name))
            params[i] = Parameter(param.name, spec.type, value)

    def _restore_types(self, node: Node, params: List[Parameter]) -> None:
        """Put back the declared types rclpy's dynamic typing wrote into the descriptors."""
        for param in params:
            spec = self.specs.get(param.name)
            if spec is not None and node.has_parameter(param.name):
                node.describe_parameter(param.name).type = spec.type.value

    def _post_set(self, params: List[Parameter]) -> None:
        changes = {param.name: param.value for param in params}
        for _, apply in self.guards:
            apply(changes)


TABLE_ATTRIBUTE = '_hobot_npu_infer_parameters'


def node_parameters(node: Node) -> NodeParameters:
    """
    Return the parameter table of ``node``, made (and its callbacks added) on first use.

    The node keeps it (no registry outside: the guards refer to the node, which would then
    never be freed, nor its DDS participant leave the graph).
    """
    table = getattr(node, TABLE_ATTRIBUTE, None)
    if table is None:
        table = NodeParameters(node)
        setattr(node, TABLE_ATTRIBUTE, table)
    return table


def declare(node: Node, specs: List[ParamSpec]) -> Dict[str, Any]:
    """
    Declare every parameter of ``specs`` and return the start-up values, each validated.

    A value given at start-up (``-p``, a parameters file) is converted as a runtime one is.
    """
    table = node_parameters(node)
    table.specs.update({spec.name: spec for spec in specs})
    values = {}
    for spec in specs:
        table.refused = None
        table.declaring = spec.name
        try:
            value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        except InvalidParameterValueException as exc:  # refused by a callback, or a range
            raise InvalidParameter(table.refused or f'parameter {spec.name}: {exc}') from None
        except Exception as exc:  # rclpy's own errors, with their own wording
            raise InvalidParameter(f'parameter {spec.name}: {exc}') from None
        finally:
            table.declaring = None
        node.describe_parameter(spec.name).type = spec.type.value
        reason = spec.problem(value)
        if reason:
            raise InvalidParameter(reason)
        values[spec.name] = value
    return values


def current_values(node: Node, specs: List[ParamSpec]) -> Dict[str, Any]:
    """Return the values the parameters of ``specs`` have now."""
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}


def first_problem(specs: Dict[str, ParamSpec], changes: Changes) -> Optional[str]:
    """
    Return the reason the first invalid value of ``changes`` is refused, or None.

    Parameters not in ``specs``, such as rclpy's own ``use_sim_time``, are not checked here.
    """
    for name, value in changes.items():
        spec = specs.get(name)
        reason = spec.problem(value) if spec is not None else None
        if reason:
            return reason
    return None


def guard_changes(node: Node, check: Callable[[Changes], Optional[str]],
                  apply: Callable[[Changes], None]) -> None:
    """
    Check a whole set request before any of it applies, so a refused set never half-applies.

    ``check`` returns the reason to refuse the set (naming the parameter), or None; it sees the
    values already of their declared types. ``apply`` runs once the values are stored: in
    rclpy's post-set callback, or on Humble, which lacks it, at the end of the on-set callback
    once every check has passed.
    """
    node_parameters(node).guards.append((check, apply))


def explain_unknown(node: Node, explain: Explain) -> None:
    """
    Have ``explain`` say why an undeclared name cannot be set, for the names it knows.

    It returns the reason without the name (the refusal puts the name first), or None for a
    name it knows nothing of; the node then answers that it has no such parameter.
    """
    node_parameters(node).explainers.append(explain)
