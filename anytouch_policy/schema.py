"""One way to define and decode a config: a pydantic dataclass, checked wherever it comes from.

    @config
    class LoraConfig:
        rank: Annotated[int, AT_LEAST_1] = 16
        dropout: Annotated[float, DROPOUT] = 0.0

    LoraConfig(rank=0)                                 # ConfigError "LoraConfig.rank must be >= 1, got 0"
    decode(LoraConfig, {"rank": "4"}, where=path)      # ConfigError "<path>: field rank must be an integer, got '4'"
    read_json(path, PolicyConfig, error=BundleError)   # the file, parsed and decoded, or BundleError naming it
    from_params(XArmConfig, params, prefix="xarm")     # node parameters: "xarm.ip ...", "" = unset

Every refusal is one error of the project's hierarchy (ConfigError unless the class or the caller says otherwise)
that names the file, class or parameter prefix, each field at fault, what was expected and what was found; every
fault is listed, not only the first. The rules are the same everywhere:
- a number or a boolean is never made from another type: no string "5", no true for 1, no 1 for true (an integer is
  fine for a float); NaN and infinities are refused; a range is an `anytouch_policy.bounds.Interval`;
- containers and choices convert as JSON and YAML need: a list for a tuple, a string for an enum or a path;
- an unknown field is refused and the valid ones are listed (a misspelt key must not be ignored);
- a rule between fields is a `model_validator(mode="after")` raising ValueError with its own message.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from typing_extensions import dataclass_transform

from anytouch_policy.bounds import Interval
from anytouch_policy.errors import AnyTouchError, ConfigError

T = TypeVar("T")

#: What every config class shares (see the module docstring).
CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)

_STRICT: dict[Any, Any] = {bool: Annotated[bool, Strict()], int: Annotated[int, Strict()],
                           float: Annotated[float, Strict()]}


def _strict(hint: Any) -> Any:
    """`hint` with every bool, int and float made strict, inside unions, containers and Annotated too."""
    if hint in _STRICT:
        return _STRICT[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return Annotated[(_strict(args[0]), *hint.__metadata__)]
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, [_strict(a) for a in args])
    if origin in (tuple, list, dict, set, frozenset) and args:
        return origin[tuple(a if a is Ellipsis else _strict(a) for a in args)]
    return hint


@dataclass_transform(field_specifiers=(dataclasses.field, Field), frozen_default=True)
def config(cls: type[T] | None = None, /, *, frozen: bool = True, kw_only: bool = False,
           error: type[AnyTouchError] = ConfigError, foreign: bool = False) -> Any:
    """Make `cls` a pydantic dataclass with the project's rules; constructing it refuses bad values with `error`
    ("ClassName.field must be ..."), and `decode` uses `error` unless told otherwise. `kw_only` lets a required
    field follow one with a default (a file's fields keep their order). `foreign`: the class reads a part of a file
    another program owns (rosbag2's metadata.yaml), so the fields it does not name are ignored, not refused."""

    def wrap(cls: type[T]) -> type[T]:
        own = cls.__dict__.get("__annotations__", {})
        hints = typing.get_type_hints(cls, include_extras=True)
        cls.__annotations__ = {name: _strict(hints[name]) for name in own}
        settings = CONFIG | ConfigDict(extra="ignore") if foreign else CONFIG
        out: Any = pydantic_dataclass(cls, config=settings, frozen=frozen, kw_only=kw_only)
        init = out.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as exc:
                raise error(describe(exc, out, where=out.__name__, dotted=True)) from None

        out.__init__ = __init__
        out.__config_error__ = error
        return typing.cast(type[T], out)

    return wrap if cls is None else wrap(cls)


@functools.cache
def _adapter(kind: Any) -> TypeAdapter:
    return TypeAdapter(kind)


def _validator(kind: Any) -> Any:
    found = getattr(kind, "__pydantic_validator__", None)
    return found if found is not None and isinstance(kind, type) else _adapter(kind).validator


def decode(kind: type[T], data: object, *, where: str, error: type[AnyTouchError] | None = None,
           dotted: bool = False, noun: str = "field") -> T:
    """`data` (parsed JSON or YAML, a dict of parameters) as a `kind`; the error names `where` and each field.

    `dotted` writes a field as `where.field` (a parameter prefix, a class) instead of `where: field ...` (a file).
    """
    try:
        return _validator(kind).validate_python(data)
    except ValidationError as exc:
        raise _error_of(kind, error)(describe(exc, kind, where=where, dotted=dotted, noun=noun)) from None


def _error_of(kind: Any, error: type[AnyTouchError] | None) -> type[AnyTouchError]:
    """`error`, else the class's own (config(error=...)), else ConfigError."""
    if error is not None:
        return error
    own: type[AnyTouchError] = getattr(kind, "__config_error__", ConfigError)
    return own


def dump(value: Any) -> Any:
    """A config as plain JSON data (enums as their values, tuples as lists, paths as strings)."""
    serializer = getattr(value, "__pydantic_serializer__", None)
    if serializer is not None:
        return serializer.to_python(value, mode="json")
    kind: Any = type(value)  # a class (hashable) whatever `value` is: the adapter's cache key
    return _adapter(kind).dump_python(value, mode="json")


class DuplicateKeyError(ValueError):
    """A key written twice in one mapping: the parsers keep the last silently, which hides a typo or a bad merge."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise DuplicateKeyError(f"key(s) {twice} given twice in one object")
    return dict(pairs)


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key written twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden, that is its use
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(f"key {key!r} given twice in one mapping (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_json(path: Path, *, error: type[AnyTouchError] = ConfigError) -> Any:
    """The parsed content of a JSON file; `error` names the file when it cannot be read or parsed."""
    return _load(path, lambda text: json.loads(text, object_pairs_hook=_unique_pairs),
                 (json.JSONDecodeError, DuplicateKeyError), "JSON", error)


def load_yaml(path: Path, *, error: type[AnyTouchError] = ConfigError) -> Any:
    """The parsed content of a YAML file (safe loader); `error` names the file when it cannot be read or parsed."""
    return _load(path, lambda text: yaml.load(text, Loader=_UniqueKeyLoader), (yaml.YAMLError, DuplicateKeyError),
                 "YAML", error)


def _load(path: Path, parse: Callable[[str], Any], failures: tuple[type[Exception], ...], what: str,
          error: type[AnyTouchError]) -> Any:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read ({exc})") from None
    try:
        return parse(text)
    except failures as exc:
        raise error(f"{path}: not valid {what} ({exc})") from None


def read_json(path: Path | str, kind: type[T], *, error: type[AnyTouchError] | None = None) -> T:
    """A JSON file decoded as `kind`; every error names the file."""
    err = _error_of(kind, error)
    return decode(kind, load_json(Path(path), error=err), where=str(path), error=err)


def read_yaml(path: Path | str, kind: type[T], *, error: type[AnyTouchError] | None = None) -> T:
    """A YAML file decoded as `kind`; every error names the file."""
    err = _error_of(kind, error)
    return decode(kind, load_yaml(Path(path), error=err), where=str(path), error=err)


def from_params(kind: type[T], params: Mapping[str, Any], *, prefix: str) -> T:
    """A config from flat node parameters (`prefix.field`). ROS has no null: "" leaves an optional field unset."""
    hints = typing.get_type_hints(kind)
    data = {name: None if value == "" and _optional(hints.get(name)) else value for name, value in params.items()}
    return decode(kind, data, where=prefix, error=ConfigError, dotted=True, noun="parameter")


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def fields_of(kind: type) -> dict[str, Any]:
    """name -> pydantic FieldInfo of a config class (default, default_factory, description, metadata)."""
    return dict(kind.__pydantic_fields__)  # type: ignore[attr-defined]  # pydantic sets it on the class at run time


def default_of(kind: type, name: str) -> Any:
    """The default value of a field (a fresh one from its factory); dataclasses.MISSING when it has none."""
    info = fields_of(kind)[name]
    if info.default_factory is not None:
        return info.default_factory()
    return dataclasses.MISSING if info.is_required() else info.default


def every_field(kind: type) -> BeforeValidator:
    """Annotated metadata: a mapping must give every field of `kind` itself. A file that describes trained weights
    (an encoder architecture) must not lean on defaults a later version may change."""

    def check(value: object) -> object:
        if isinstance(value, Mapping):
            missing = [name for name in fields_of(kind) if name not in value]
            if missing:
                raise ValueError(f"must give every field of {kind.__name__}; missing {', '.join(missing)}")
        return value

    return BeforeValidator(check)


def interval_of(kind: type, name: str) -> Interval:
    """The range a numeric field is annotated with (ROS parameters and flags share it)."""
    found = [m for m in fields_of(kind)[name].metadata if isinstance(m, Interval)]
    if not found:
        raise TypeError(f"{kind.__name__}.{name} has no Interval")
    return found[0]


# --- messages -----------------------------------------------------------------------------------------------------

_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument", "missing_positional_only_argument"}
_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument", "unexpected_positional_argument"}
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "a string",
    "tuple_type": "a list", "list_type": "a list", "dict_type": "a mapping", "dataclass_type": "a mapping of fields",
    "model_type": "a mapping of fields", "dataclass_exact_type": "a mapping of fields",
}


#: How our messages start when they read on from the field's name ("lr must be ..."); others follow a colon.
_VERBS = ("must ", "is ", "needs ", "has ", "contradicts ", "exceeds ")


def _path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a field path: ('optics', 'leds', 1, 'rgb') -> optics.leds[1].rgb."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _class_in(annotation: object) -> type | None:
    if isinstance(annotation, type) and hasattr(annotation, "__pydantic_fields__"):
        return annotation
    for arg in typing.get_args(annotation):
        found = _class_in(arg)
        if found is not None:
            return found
    return None


def _section_at(root: Any, loc: tuple[int | str, ...]) -> type | None:
    """The config class that holds the last field of `loc` (to list its valid fields)."""
    cls = _class_in(root)
    for part in loc[:-1]:
        if cls is None:
            return None
        if isinstance(part, int):
            continue
        field = fields_of(cls).get(part)
        cls = _class_in(field.annotation) if field is not None else None
    return cls


def _shown(value: object) -> str:
    """The offending value as a message quotes it: whole when short, else cut (a 1 KB file of nested YAML aliases
    expands to hundreds of megabytes of repr)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxstring, short.maxother = 2, 6, 6, 6, 120, 120
    text = short.repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("value_error", "assertion_error"):  # our own checks quote the value
        return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in _EXPECTED:
        expected = f"must be {_EXPECTED[kind]}"
    elif kind in ("enum", "literal_error"):
        expected = f"must be one of {error['ctx']['expected']}"
    elif kind in ("too_short", "too_long"):
        bound, count = (("at least", error["ctx"]["min_length"]) if kind == "too_short"
                        else ("at most", error["ctx"]["max_length"]))
        expected = f"must hold {bound} {count} item{'' if count == 1 else 's'}"
    else:
        expected = error["msg"].replace("Input should be", "must be").replace("Input should", "must")
    return f"{expected}, got {_shown(error['input'])}"


def _label(where: str, path: str, dotted: bool, noun: str) -> str:
    return f"{where}.{path}" if dotted else f"{noun} {path}"


def describe(exc: ValidationError, root: Any, *, where: str, dotted: bool = False, noun: str = "field") -> str:
    """Every fault of `exc` in one line: missing and unknown fields grouped (with the valid ones), then each value.

    A file's message reads "<where>: field a.b must be ...; field c ..."; a `dotted` one (a class, a parameter
    prefix) reads "<where>.a.b must be ...; <where>.c ...".
    """
    errors = exc.errors(include_url=False)
    parts: list[str] = []

    def whole(problem: str) -> str:  # a fault of the whole mapping, not of one field
        return f"{where}: {problem}" if dotted and not parts else problem

    short = [e for e in errors if e["type"] in _MISSING and isinstance(e["loc"][-1], int)]  # a fixed-size tuple
    for seq in dict.fromkeys(e["loc"][:-1] for e in short):
        gaps = [int(e["loc"][-1]) for e in short if e["loc"][:-1] == seq]
        parts.append(f"{_label(where, _path(seq), dotted, noun)} must hold {max(gaps) + 1} values (items "
                     f"{', '.join(f'[{i}]' for i in gaps)} are missing)")
    missing = [_path(e["loc"]) for e in errors if e["type"] in _MISSING and e not in short]
    if missing:
        parts.append(whole(f"missing required {noun}(s) {', '.join(missing)}"))
    unknown = [e for e in errors if e["type"] in _UNKNOWN]
    for section in dict.fromkeys(e["loc"][:-1] for e in unknown):
        names = [_path(e["loc"]) for e in unknown if e["loc"][:-1] == section]
        holder = _section_at(root, (*section, ""))
        valid = f"; valid: {', '.join(fields_of(holder))}" if holder is not None else ""
        parts.append(whole(f"unknown {noun}(s) {', '.join(names)}{valid}"))
    for e in errors:
        if e["type"] in _MISSING or e["type"] in _UNKNOWN:
            continue
        path, problem = _path(e["loc"]), _problem(e)
        joint = " " if problem.startswith(_VERBS) else ": "
        parts.append(f"{_label(where, path, dotted, noun)}{joint}{problem}" if path else whole(problem))
    text = "; ".join(parts)
    return text if dotted else f"{where}: {text}"
