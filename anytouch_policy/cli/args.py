"""Command-line flags built from a config class: each flag's type, range, choices, default and help come from its
field (anytouch_policy.schema), so a default and its range are written once, in the config.

    FLAGS = Flags(TrainConfig, Flag("bags", metavar="DIR"), Flag("token_mode", "--token"), "lr", ...,
                  one_of=[("encoder", "preset")])
    FLAGS.add_to(parser)         # add_arguments(parser)
    config = FLAGS.build(args)   # run(args): a TrainConfig; a rule between fields is a ConfigError naming them

A field `lr` becomes `--lr`, `decoder.width` becomes `--decoder-width`; a boolean that defaults to true becomes
`--no-<name>`. Numbers refuse NaN, inf and out-of-range values while parsing, naming the flag, and exit with
status 2 before any work:

    $ anytouch train ... --lr nan
    anytouch train: error: argument --lr: must be a finite number in (0, 1], got 'nan'
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from anytouch_policy.bounds import ANY, Interval
from anytouch_policy.schema import default_of, fields_of

_NOTHING: Any = object()


def number(kind: type[int] | type[float], within: Interval = ANY) -> Callable[[str], int | float]:
    """A `type=` callable: `kind(text)`, finite and `within` the interval."""
    noun = "an integer" if kind is int else "a finite number"
    wanted = " ".join(part for part in (noun, within.phrase) if part)

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if value not in within:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted  # argparse's usage errors quote a type's name
    parse.interval = within  # type: ignore[attr-defined]  # what the flag tests probe
    return parse


def number_range(one: Callable[[str], float]) -> Callable[[str], tuple[float, float]]:
    """A `type=` callable for "A" (the range [A, A]) or "A:B" with A <= B, each end parsed and checked by `one`."""
    wanted = f"A or A:B with A <= B, each {one.__name__}"

    def parse(text: str) -> tuple[float, float]:
        parts = text.split(":")
        if len(parts) > 2:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        lo, hi = one(parts[0]), one(parts[-1])
        if lo > hi:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r} (low end above high end)")
        return float(lo), float(hi)

    parse.__name__ = wanted
    parse.interval = getattr(one, "interval", None)  # type: ignore[attr-defined]  # as number()'s
    return parse


def _member(parse: Callable[[str], Any], values: Sequence[Any]) -> Callable[[str], Any]:
    """`parse`, refusing anything but one of `values` (the items of a list flag)."""

    def check(text: str) -> Any:
        value = parse(text)
        if value not in values:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(map(str, values))}")
        return value

    check.__name__ = f"one of {', '.join(map(str, values))}"
    return check


def _named(kind: Any) -> Callable[[str], Any]:
    """An enum read by name with its `from_name` (sensor types), whose error lists the valid names."""

    def parse(text: str) -> Any:
        try:
            return kind.from_name(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = f"a {kind.__name__} name"
    return parse


def _split(item: Callable[[str], Any], sep: str) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        return tuple(item(part.strip()) for part in text.split(sep) if part.strip())

    parse.__name__ = f"a {sep!r}-separated list"
    return parse


class _Repeat(argparse.Action):
    """A repeatable flag whose first use replaces the default (argparse's append adds to it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = getattr(namespace, self.dest)
        items = [] if items is None or items is self.default else list(items)
        setattr(namespace, self.dest, items + (list(values) if isinstance(values, list) else [values]))


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one config field is set on the command line, where the defaults (module docstring) do not fit."""

    field: str  # a field of the config class, or `parent.field` of a nested config
    name: str | None = None  # the flag; default --field-name (--no-field-name for a boolean that defaults to true)
    const: Any = _NOTHING  # a switch without argument that sets the field to this value ("--no-reference")
    help: str | None = None  # default: the field's description
    metavar: str | None = None
    sep: str | None = None  # a list given as one argument, e.g. "video,static"
    optional: bool = False  # no default on the command line: when not given the config (or the verb) decides
    many: bool = False  # a list flag takes several values at once (`--bags a b`), and may be repeated


def _unwrap(hint: Any) -> tuple[Any, list[Any], bool]:
    """(type, Annotated metadata, whether None is allowed) of a field's annotation."""
    metadata: list[Any] = []
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else hint
    if typing.get_origin(hint) is Annotated:
        metadata = list(hint.__metadata__)
        hint = typing.get_args(hint)[0]
    return hint, metadata, optional


def _scalar(hint: Any, metadata: list[Any]) -> tuple[Callable[[str], Any], list[Any] | None]:
    """The `type=` callable (and the choices, if any) of one value of type `hint`."""
    hint, more, _ = _unwrap(hint)
    metadata = [*metadata, *more]
    values = None
    if typing.get_origin(hint) is Literal:
        values = list(typing.get_args(hint))
    elif isinstance(hint, type) and issubclass(hint, enum.Enum) and hasattr(hint, "from_name"):
        return _named(hint), None
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
    if values is not None:
        return type(values[0]), values
    if hint in (int, float):
        intervals = [m for m in metadata if isinstance(m, Interval)]
        return number(hint, intervals[0] if intervals else ANY), None
    if hint in (str, Path):
        return str, None
    raise TypeError(f"no command-line form for {hint!r}")


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(getattr(value, "label", value.value))
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value) if value else "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _field(kind: type, path: str) -> tuple[Any, Any]:
    """(FieldInfo, default) of a field, `parent.field` included."""
    parent, _, child = path.rpartition(".")
    if parent:
        info = fields_of(kind)[parent]
        owner = _unwrap(info.annotation)[0]
        return fields_of(owner)[child], default_of(owner, child)
    return fields_of(kind)[path], default_of(kind, path)


class Flags:
    """The flags of one verb: fields of `kind` (names or Flag), in the order given."""

    def __init__(self, kind: type, *flags: Flag | str, one_of: Sequence[tuple[str, ...]] = ()) -> None:
        self.kind = kind
        self.flags = [f if isinstance(f, Flag) else Flag(f) for f in flags]
        self.one_of = [tuple(group) for group in one_of]
        for flag in self.flags:
            _field(kind, flag.field)  # a misspelt field fails at import, not when the flag is used

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        groups = {}
        for group in self.one_of:
            required = all(_field(self.kind, name)[1] is None for name in group)
            ex = parser.add_mutually_exclusive_group(required=required)
            groups.update(dict.fromkeys(group, ex))
        for flag in self.flags:
            info, default = _field(self.kind, flag.field)
            target = groups.get(flag.field, parser)
            name, options = self._options(flag, info, default, in_group=flag.field in groups)
            action = target.add_argument(name, **options)
            action.config_field = (self.kind, flag.field)  # type: ignore[attr-defined]  # for the flag tests

    def _options(self, flag: Flag, info: Any, default: Any, *, in_group: bool) -> tuple[str, dict[str, Any]]:
        hint, metadata, optional = _unwrap(info.annotation)
        metadata = [*info.metadata, *metadata]  # pydantic keeps a field's own Annotated metadata apart
        given = default is not dataclasses.MISSING
        options: dict[str, Any] = {"dest": flag.field, "default": default if given and not flag.optional else None}
        name = flag.name or "--" + flag.field.replace(".", "-").replace("_", "-")
        help_text = flag.help if flag.help is not None else (info.description or "")
        shown = _text(default) if given and default is not None else ""
        if flag.const is not _NOTHING:
            options.update(action="store_const", const=flag.const)
            shown = ""
        elif hint is bool and optional:
            options.update(action=argparse.BooleanOptionalAction)
            shown = ""
        elif hint is bool:
            options.update(action="store_false" if default else "store_true")
            name = "--no-" + name[2:] if default and flag.name is None else name
            shown = ""
        else:
            origin, args = typing.get_origin(hint), typing.get_args(hint)
            if origin in (list, tuple) and len(args) == 2 and args[1] is not Ellipsis:  # a range: "A" or "A:B"
                options.update(type=number_range(_scalar(args[0], metadata)[0]))
                shown = ":".join(dict.fromkeys(_text(v) for v in default)) if given else ""
            elif origin in (list, tuple):
                parse, choices = _scalar(args[0], [])
                parse = _member(parse, choices) if choices else parse
                if flag.sep:
                    options.update(type=_split(parse, flag.sep))
                else:
                    options.update(action=_Repeat, type=parse, nargs="+" if flag.many else None)
            else:
                parse, choices = _scalar(hint, metadata)
                options.update(type=parse, choices=choices)
                within = getattr(parse, "interval", ANY).phrase
                shown = ", ".join(part for part in (f"default: {shown}" if shown else "", within) if part)
                shown = f"({shown})" if shown else ""
            options.update(required=not given and not flag.optional and not in_group,
                           metavar=flag.metavar or (None if options.get("choices") else
                                                    name[2:].upper().replace("-", "_")))
        if shown:
            help_text += f" {shown}" if shown.startswith("(") else f" (default: {shown})"
        options["help"] = help_text.strip().replace("%", "%%")
        return name, options

    def values(self, args: argparse.Namespace) -> dict[str, Any]:
        """The config fields the flags give, nested configs updated from their defaults (keyword arguments)."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for flag in self.flags:
            value = getattr(args, flag.field)
            if flag.optional and value is None:
                continue
            parent, _, child = flag.field.rpartition(".")
            if parent:
                nested.setdefault(parent, {})[child] = value
            else:
                top[flag.field] = value
        for parent, children in nested.items():
            base = top.get(parent, default_of(self.kind, parent))
            if base is not None:  # None: a switch turned the nested config off (--no-augment): its flags do not apply
                top[parent] = dataclasses.replace(base, **children)
        return top

    def build(self, args: argparse.Namespace, **extra: Any) -> Any:
        """The config the flags describe, with `extra` fields from the verb."""
        return self.kind(**self.values(args), **extra)
