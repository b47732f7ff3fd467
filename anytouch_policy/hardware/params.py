"""Build a backend config dataclass from a flat parameter dict (ROS parameters, YAML, CLI).

ROS parameters arrive as bool / int / float / str and lists of them, and have no null: an optional field is
left unset by omitting it or by passing "" (empty string). Integers are accepted for float fields, lists for
tuple fields, strings for enum fields. Anything else, and a NaN or infinite float (also inside a list), is a
ConfigError naming the backend, the parameter and the expected type or the value; an unknown parameter lists the
valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

from anytouch_policy.bounds import require_finite
from anytouch_policy.errors import ConfigError

T = TypeVar("T")


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or value == "":
            if type(None) in args:
                return None
            raise ConfigError(f"{where} must be set")
        return _convert(value, inner[0], where) if len(inner) == 1 else value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return value if isinstance(value, hint) else hint(value)
        except ValueError:
            valid = ", ".join(str(m.value) for m in hint)
            raise ConfigError(f"{where}: {value!r} is not one of {valid}") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return require_finite(where, value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def config_from_params(cls: type[T], params: Mapping[str, Any], *, backend: str) -> T:
    """An instance of the dataclass `cls` from `params`; fields not given keep their defaults."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(f"{backend}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    missing = [n for n, f in fields.items() if n not in params and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{backend}: missing required parameter(s) {', '.join(missing)}")
    kwargs = {name: _convert(value, hints[name], f"{backend}.{name}") for name, value in params.items()}
    return cls(**kwargs)
