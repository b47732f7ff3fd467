"""Every `anytouch` --help opens with a runnable example (README's promise; tests/cli/test_help.py runs each).

The example is not written twice: it is the first line of the verb's docstring that runs that command, so the
docstring a reader opens and the --help a user reads show the same line.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

#: Shell words that end a command line: an example may redirect its JSON into a file.
SHELL_ENDS = (">", ">>", "|", "&&", ";")


class ExampleParser(argparse.ArgumentParser):
    """An ArgumentParser whose help starts with `example: <command line>`; its sub-parsers are ExampleParsers."""

    def __init__(self, *args: object, example: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.example = example

    def format_help(self) -> str:
        text = super().format_help()
        return f"example: {self.example}\n\n{text}" if self.example else text


def example(doc: str | None, command: str) -> str:
    """The first line of `doc` that runs `command` ("anytouch sim render"), after optional VAR=value words;
    "" when there is none (tests/cli/test_help.py names the command)."""
    for line in (doc or "").splitlines():
        words = line.split()
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]
        if " ".join(words[:len(command.split())]) == command:
            return line.strip()
    return ""


def walk(parser: argparse.ArgumentParser, prog: str = "anytouch") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command, parser) for `parser` and every sub-parser below it, depth first."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{prog} {name}")
