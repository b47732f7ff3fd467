"""Every numeric flag of every verb refuses NaN, inf and out-of-range values while parsing, naming the flag."""


import pytest

from anytouch_policy.cli.help import walk
from anytouch_policy.cli.main import build_parser, main


def test_no_numeric_flag_takes_a_bare_int_or_float():
    """int("nan") fails, but float("nan") and float("inf") parse, and neither checks a range: every numeric flag
    goes through anytouch_policy.cli.args (a flag limited by `choices` is checked by argparse)."""
    bare = [f"{prog} {action.option_strings or action.dest}" for prog, parser in walk(build_parser())
            for action in parser._actions if action.type in (int, float) and not action.choices]
    assert bare == []


REQUIRED = {
    "train": ["--bags", "b", "--preset", "anytouch-tiny", "--out", "o"],
    "demo": [], "eval": ["--policy", "p"], "sim eval": [], "sim render": ["--out", "o"], "sim record": ["--out", "o"],
    "sim dataset": ["--out", "o", "--hours", "1"],
    "pretrain": ["--stage", "1", "--bags", "b", "--preset", "anytouch-tiny", "--out", "o"],
    "bench encoder": [], "bench train": [], "convert-checkpoint": ["a.pth", "o"], "bringup": ["pour"],
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
    ("demo", "--target-g", "nan", "must be a finite number > 0"),
    ("eval", "--threads", "0", "must be an integer >= 1"),
    ("eval", "--initial-g", "inf", "must be a finite number > 0"),
    ("eval", "--episodes", "-2", "must be an integer >= 1"),
    ("sim eval", "--target-g", "inf", "must be a finite number > 0"),
    ("sim eval", "--initial-tilt-deg", "nan", "must be a finite number in [0, 180]"),
    ("sim render", "--columns", "1", "must be an integer >= 2"),
    ("sim record", "--initial-g", "nan", "must be a finite number > 0, got 'nan'"),
    ("sim record", "--target-g", "20:inf", "must be a finite number > 0, got 'inf'"),
    ("sim record", "--target-g", "80:20", "must be A or A:B with A <= B, each a finite number > 0, got '80:20' (low"),
    ("sim record", "--initial-g", "80:100:120", "must be A or A:B with A <= B, each a finite number > 0, got"),
    ("sim record", "--episodes", "0", "must be an integer >= 1"),
    ("sim dataset", "--hours", "nan", "must be a finite number in (0, 1000], got 'nan'"),
    ("sim dataset", "--every", "inf", "must be a finite number in [0.05, 60]"),
    ("sim dataset", "--workers", "0", "must be an integer in [1, 64]"),
    ("pretrain", "--threads", "0", "must be an integer >= 1"),
    ("pretrain", "--lr", "inf", "must be a finite number in (0, 1]"),
    ("pretrain", "--mask-ratio", "1.5", "must be a finite number in (0, 1)"),
    ("pretrain", "--alpha-tv", "nan", "must be a finite number >= 0"),
    ("bench encoder", "--threads", "0", "must be an integer >= 1"),
    ("bench train", "--threads", "-1", "must be an integer >= 1"),
    ("bench encoder", "--seconds", "nan", "must be a finite number >= 0"),
    ("convert-checkpoint", "--heads", "0", "must be an integer >= 1"),
    ("bringup", "--stop-timeout", "nan", "must be a finite number >= 0"),
])
def test_bad_numbers_are_refused_while_parsing(capsys, verb, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*verb.split(), *REQUIRED[verb], flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err
