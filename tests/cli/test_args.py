"""Flags come from config classes: every flag's default is its config field's default, and every numeric flag of
every verb refuses NaN, inf and out-of-range values while parsing, naming the flag."""

import argparse
import dataclasses
import math

import pytest

from anytouch_policy.bounds import Interval
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.cli.help import walk
from anytouch_policy.cli.main import build_parser, main
from anytouch_policy.schema import default_of, fields_of
from anytouch_policy.train.config import TrainConfig


def _verbs():
    """(prog, parser) of every verb that runs something (no sub-commands of its own)."""
    return [(prog, p) for prog, p in walk(build_parser()) if prog != "anytouch" and not any(
        isinstance(a, argparse._SubParsersAction) for a in p._actions)]


def _valid(action: argparse.Action) -> list[str]:
    """A value the action accepts."""
    if action.choices:
        return [str(next(iter(action.choices)))]
    interval = getattr(action.type, "interval", None)
    if interval is not None:
        low = interval.low if math.isfinite(interval.low) else 0
        return ["1" if 1 in interval else str(low + (1 if interval.low_open else 0))]
    return ["x"]


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """The least command line the parser accepts: every required flag and positional, one of each required group."""
    argv: list[str] = []
    grouped = set()
    for group in parser._mutually_exclusive_groups:
        if group.required:
            first = group._group_actions[0]
            argv += [first.option_strings[0], *_valid(first)]
        grouped.update(group._group_actions)
    for action in parser._actions:
        if action in grouped or isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            argv += _valid(action) * (2 if action.nargs in ("+", "*") else 1)
        elif action.required:
            argv += [action.option_strings[0], *_valid(action)]
    return argv


def _outside(interval: Interval) -> list[str]:
    """Numbers just outside each finite end of the interval (an open end itself is outside)."""
    out = []
    if math.isfinite(interval.low):
        out.append(f"{interval.low if interval.low_open else interval.low - 1:g}")
    if math.isfinite(interval.high):
        out.append(f"{interval.high if interval.high_open else interval.high + 1:g}")
    return out


def _numeric_flags():
    for prog, parser in _verbs():
        for action in parser._actions:
            interval = getattr(action.type, "interval", None)
            if interval is not None and action.option_strings:
                yield pytest.param(parser, action, interval, id=f"{prog} {action.option_strings[0]}")


def test_no_numeric_flag_takes_a_bare_int_or_float():
    """int("nan") fails, but float("nan") and float("inf") parse, and neither checks a range: every numeric flag
    goes through anytouch_policy.cli.args (a flag limited by `choices` is checked by argparse)."""
    bare = [f"{prog} {action.option_strings or action.dest}" for prog, parser in walk(build_parser())
            for action in parser._actions if action.type in (int, float) and not action.choices]
    assert bare == []


def test_every_verb_parses_its_least_command_line():
    for _, parser in _verbs():
        parser.parse_args(_required(parser))  # raises SystemExit when the helpers above miss a required argument


def test_every_flag_default_is_its_config_fields_default():
    """The default is written once, in the config class: a flag shows it, or (optional) leaves it to the config."""
    checked = set()
    for prog, parser in _verbs():
        for action in parser._actions:
            if not hasattr(action, "config_field"):
                continue
            kind, path = action.config_field
            parent, _, name = path.rpartition(".")
            owner = fields_of(kind)[parent].default_factory().__class__ if parent else kind
            expected = default_of(owner, name)
            expected = None if expected is dataclasses.MISSING else expected
            assert action.default is None or action.default == expected, (prog, action.option_strings, expected)
            if action.default is None and expected is not None:  # an optional flag: not given, the config decides
                assert parser.parse_args(_required(parser)).__dict__[path] is None, (prog, path)
            checked.add(prog)
    verbs = {"train", "pretrain", "demo", "eval", "sim eval", "sim render", "sim record", "sim dataset",
             "export lerobot", "bench encoder", "bench train", "bench contention", "bench sim", "bench pretrain-value",
             "bench export"}
    assert {p.removeprefix("anytouch ") for p in checked} >= verbs


def test_flags_build_the_config_with_its_defaults():
    parser = argparse.ArgumentParser()
    flags = Flags(TrainConfig, "bags", "out", "preset", "lr", Flag("augment", "--no-augment", const=None),
                  Flag("augment.hflip", "--hflip"))
    flags.add_to(parser)
    plain = flags.build(parser.parse_args(["--bags", "b", "--out", "o", "--preset", "anytouch-tiny"]))
    assert plain == TrainConfig(bags=["b"], out="o", preset="anytouch-tiny")
    mirrored = flags.build(parser.parse_args(["--bags", "b", "--bags", "c", "--out", "o", "--preset", "anytouch-tiny",
                                              "--hflip", "0.5", "--lr", "0.01"]))
    assert mirrored.bags == [type(plain.out)("b"), type(plain.out)("c")] and mirrored.lr == 0.01
    assert mirrored.augment == dataclasses.replace(plain.augment, hflip=0.5)
    off = flags.build(parser.parse_args(["--bags", "b", "--out", "o", "--preset", "anytouch-tiny", "--no-augment",
                                         "--hflip", "0.5"]))
    assert off.augment is None  # the switch turns the nested config off; its flags do not bring it back


@pytest.mark.parametrize(("parser", "action", "interval"), list(_numeric_flags()))
def test_every_numeric_flag_refuses_nan_inf_and_out_of_range(capsys, parser, action, interval):
    flag = action.option_strings[0]
    argv = _required(parser)
    if flag in argv:  # a required flag: drop the valid value the least command line gave it
        i = argv.index(flag)
        argv = argv[:i] + argv[i + 2:]
    for bad in ("nan", "inf", "-inf", *_outside(interval)):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*argv, f"{flag}={bad}"])  # "=": argparse would take "-inf" for an option
        assert exit_info.value.code == 2
        assert f"argument {flag}: must be " in capsys.readouterr().err, (flag, bad)


REQUIRED = {
    "train": ["--bags", "b", "--preset", "anytouch-tiny", "--out", "o"],
    "demo": [], "eval": ["--policy", "p"], "sim eval": [], "sim render": ["--out", "o"], "sim record": ["--out", "o"],
    "sim dataset": ["--out", "o", "--hours", "1"],
    "pretrain": ["--stage", "1", "--bags", "b", "--preset", "anytouch-tiny", "--out", "o"],
    "bench encoder": [], "bench train": [], "bench contention": [], "convert-checkpoint": ["a.pth", "o"],
    "bringup": ["pour"],
}


@pytest.mark.parametrize(("verb", "flag", "value", "message"), [
    ("train", "--lr", "nan", "must be a finite number in (0, 1], got 'nan'"),
    ("train", "--lr", "1e30", "must be a finite number in (0, 1]"),
    ("train", "--encoder-lr", "1e400", "must be a finite number in (0, 1], got '1e400'"),
    ("train", "--dropout", "1", "must be a finite number in [0, 1)"),
    ("train", "--val-fraction", "0", "must be a finite number in (0, 1)"),
    ("train", "--epochs", "0", "must be an integer >= 1"),
    ("train", "--threads", "0", "must be an integer >= 1, got '0'"),
    ("demo", "--threads", "0", "must be an integer >= 1"),
    ("demo", "--episodes-per-cell", "0", "must be an integer >= 1"),
    ("demo", "--target-g", "nan", "must be a finite number in (0, 1000]"),
    ("eval", "--threads", "0", "must be an integer >= 1"),
    ("eval", "--initial-g", "inf", "must be a finite number in (0, 1000]"),
    ("eval", "--episodes", "-2", "must be an integer >= 1"),
    ("eval", "--workers", "0", "must be an integer >= 1"),
    ("sim eval", "--workers", "nan", "must be an integer >= 1"),
    ("sim eval", "--target-g", "inf", "must be a finite number in (0, 1000]"),
    ("sim eval", "--initial-tilt-deg", "nan", "must be a finite number in [0, 180]"),
    ("sim render", "--columns", "1", "must be an integer in [2, 64]"),
    ("sim record", "--initial-g", "nan", "must be a finite number in (0, 1000], got 'nan'"),
    ("sim record", "--target-g", "20:inf", "must be a finite number in (0, 1000], got 'inf'"),
    ("sim record", "--target-g", "80:20", "must be A or A:B with A <= B, each a finite number in (0, 1000], got "
                                          "'80:20' (low"),
    ("sim record", "--initial-g", "80:100:120", "must be A or A:B with A <= B, each a finite number in (0, 1000], got"),
    ("sim record", "--episodes", "0", "must be an integer >= 1"),
    ("sim dataset", "--hours", "nan", "must be a finite number in (0, 1000], got 'nan'"),
    ("sim dataset", "--every", "inf", "must be a finite number in [0.05, 60]"),
    ("sim dataset", "--workers", "0", "must be an integer in [1, 64]"),
    ("pretrain", "--threads", "0", "must be an integer >= 1"),
    ("pretrain", "--lr", "inf", "must be a finite number in (0, 1]"),
    ("pretrain", "--mask-ratio", "1.5", "must be a finite number in (0, 1)"),
    ("pretrain", "--alpha-tv", "nan", "must be a finite number >= 0"),
    ("pretrain", "--bag-kinds", "video,sound", "'sound' is not one of static, video"),
    ("bench encoder", "--threads", "0", "must be an integer >= 1"),
    ("bench train", "--threads", "-1", "must be an integer >= 1"),
    ("bench contention", "--busy-cpu", "-1", "must be an integer >= 0"),
    ("bench encoder", "--seconds", "nan", "must be a finite number >= 0"),
    ("bench encoder", "--batches", "1,0", "must be an integer >= 1, got '0'"),
    ("convert-checkpoint", "--heads", "0", "must be an integer >= 1"),
    ("bringup", "--stop-timeout", "nan", "must be a finite number >= 0"),
])
def test_bad_numbers_are_refused_while_parsing(capsys, verb, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*verb.split(), *REQUIRED[verb], flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err
