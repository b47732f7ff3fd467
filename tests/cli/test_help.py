"""README: every verb's --help opens with a runnable example. Walk the whole parser tree and run each one's parse."""

import shlex

import pytest

from anytouch_policy.cli.help import SHELL_ENDS, example, walk
from anytouch_policy.cli.main import build_parser

COMMANDS = [prog for prog, _ in walk(build_parser())]


def _words(line: str) -> list[str]:
    """The anytouch command of a shell line: leading VAR=value words and any redirection dropped."""
    words = shlex.split(line)
    while words and "=" in words[0]:
        words = words[1:]
    return words[:min([words.index(w) for w in SHELL_ENDS if w in words] or [len(words)])]


def test_the_walk_reaches_every_verb_and_sub_verb():
    assert {"anytouch", "anytouch demo", "anytouch bench encoder", "anytouch sim render",
            "anytouch export lerobot"} <= set(COMMANDS)
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("prog", COMMANDS)
def test_help_opens_with_an_example_that_parses(prog, capsys):
    parser = dict(walk(build_parser()))[prog]
    first = parser.format_help().splitlines()[0]
    assert first.startswith("example: "), (
        f"`{prog} --help` opens with {first!r}: put an example line that runs `{prog}` in its docstring")
    words = _words(first.removeprefix("example: "))
    assert words[:len(prog.split())] == prog.split(), f"the example of `{prog}` runs another command: {words}"
    try:
        build_parser().parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"the example of `{prog}` does not parse: {capsys.readouterr().err}")


def test_example_takes_the_first_line_that_runs_the_command():
    doc = """Intro naming anytouch sim in prose.

        OMP_NUM_THREADS=1 anytouch sim eval --episodes 3 > out.json
        anytouch sim render --out x
    """
    assert example(doc, "anytouch sim render") == "anytouch sim render --out x"
    assert example(doc, "anytouch sim eval") == "OMP_NUM_THREADS=1 anytouch sim eval --episodes 3 > out.json"
    assert example(doc, "anytouch sim record") == "" and example(None, "anytouch") == ""
    assert _words("OMP_NUM_THREADS=1 anytouch sim eval --episodes 3 > out.json") == [
        "anytouch", "sim", "eval", "--episodes", "3"]
