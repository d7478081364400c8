"""
Node parameters declared from one table: type, default, description, range, read-only.

Values are validated when declared and again on every runtime change, with a reason that names
the parameter; a runtime change is checked whole before any of it applies.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.errors import InferError
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

Check = Callable[[Any], Optional[str]]  # value -> reason it is invalid, or None


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
        descriptor = ParameterDescriptor(name=self.name, type=self.type.value,
                                         description=self.description,
                                         read_only=self.read_only)
        if self.range is not None:
            low, high = self.range
            if self.type == Parameter.Type.INTEGER:
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high),
                                                         step=0)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(low), to_value=float(high), step=0.0)]
        return descriptor

    def problem(self, value: Any) -> Optional[str]:
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            return f'{self.name}={value!r} is outside {self.range[0]}..{self.range[1]}'
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
        return next((f'{v} is outside {low}..{high}' for v in values if not low <= v <= high),
                    None)
    return ParamSpec(name, list(default), description, Parameter.Type.INTEGER_ARRAY, read_only,
                     None, in_range)


def integer(name, default, description, low, high, read_only=True) -> ParamSpec:
    return ParamSpec(name, default, description, Parameter.Type.INTEGER, read_only, (low, high))


def number(name, default, description, low, high, read_only=True) -> ParamSpec:
    return ParamSpec(name, float(default), description, Parameter.Type.DOUBLE, read_only,
                     (low, high))


def boolean(name, default, description, read_only=True) -> ParamSpec:
    return ParamSpec(name, default, description, Parameter.Type.BOOL, read_only)


class InvalidParameter(ValueError):
    """A parameter value given at start-up is invalid; the message names it."""


def declare(node: Node, specs: List[ParamSpec]) -> Dict[str, Any]:
    """Declare every parameter of ``specs`` and return the start-up values, each validated."""
    values = {}
    for spec in specs:
        # An empty list cannot tell its element type; declare the type, then read the override.
        try:
            if isinstance(spec.default, list) and not spec.default:
                param = node.declare_parameter(spec.name, spec.type, spec.descriptor())
                value = param.value if param.type_ != Parameter.Type.NOT_SET else []
            else:
                value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        except Exception as exc:  # rclpy's type and range errors, with their own wording
            raise InvalidParameter(f'parameter {spec.name}: {exc}') from None
        reason = spec.problem(value)
        if reason:
            raise InvalidParameter(reason)
        values[spec.name] = value
    return values


def current_values(node: Node, specs: List[ParamSpec]) -> Dict[str, Any]:
    """
    Return the values the parameters of ``specs`` have now.

    A list declared empty and never set reads as empty.
    """
    values = {}
    for spec in specs:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            values[spec.name] = []
    return values


Changes = Dict[str, Any]  # parameter name -> new value, for one set request
# rclpy's post-set callback (Iron and later); Humble has only the on-set callback.
HAS_POST_SET = hasattr(Node, 'add_post_set_parameters_callback')


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

    ``check`` returns the reason to refuse the set (naming the parameter), or None; ``apply``
    runs once the values are stored: in rclpy's post-set callback, or on Humble, which lacks
    it, at the end of the on-set callback once every check has passed.
    """
    def on_set(params: List[Parameter]) -> SetParametersResult:
        changes = {param.name: param.value for param in params}
        reason = check(changes)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if not HAS_POST_SET:
            apply(changes)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    if HAS_POST_SET:
        node.add_post_set_parameters_callback(
            lambda params: apply({param.name: param.value for param in params}))
