"""Node parameters declared from one table: type, default, description, range, read-only.

Values are validated when declared and again on every runtime change, with a reason that names
the parameter.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..core.errors import InferError

Check = Callable[[Any], Optional[str]]  # value -> reason it is invalid, or None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    type: Parameter.Type
    read_only: bool = True
    range: Optional[Tuple[float, float]] = None
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
    from ..core.backends.selection import parse_options
    try:
        parse_options(items)
    except InferError as exc:
        return str(exc)
    return None


def size_text(text: str) -> Optional[str]:
    """Problem with a 'WxH' size parameter (empty means unset), or None."""
    if not text:
        return None
    from ..core.geometry import parse_size
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


def declare(node: Node, specs: List[ParamSpec],
            apply: Optional[Callable[[str, Any], None]] = None) -> Dict[str, Any]:
    """Declare every parameter, validate the start-up values, and guard runtime changes.

    ``apply(name, value)`` is called for each accepted runtime change (read-only parameters are
    refused by rclpy before that).
    """
    by_name = {s.name: s for s in specs}
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

    def on_set(params: List[Parameter]) -> SetParametersResult:
        for param in params:
            spec = by_name.get(param.name)
            reason = spec.problem(param.value) if spec else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        if apply is not None:
            for param in params:
                if param.name in by_name:
                    try:
                        apply(param.name, param.value)
                    except InferError as exc:
                        return SetParametersResult(successful=False,
                                                   reason=f'{param.name}: {exc}')
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values
