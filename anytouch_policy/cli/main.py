"""Entry point of the `anytouch` console script.

    anytouch sim eval --policy expert --episodes 5
    anytouch <verb> --help

Verb modules import torch only when their verb runs, so `anytouch --help` does not load it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from anytouch_policy.cli.help import ExampleParser, example
from anytouch_policy.errors import AnyTouchError

#: verb -> (module under anytouch_policy.cli, one-line help). Each module defines add_arguments(parser) and run(args).
VERBS: dict[str, tuple[str, str]] = {
    "bench": ("bench", "run a benchmark (encoder, ...) and print JSON figures"),
    "bringup": ("bringup", "start the pour or record ROS node set without launch_ros (supervised processes)"),
    "convert-checkpoint": ("convert_checkpoint", "convert a released AnyTouch checkpoint into an encoder bundle"),
    "demo": ("demo", "record expert demos in the sim, train and evaluate the six cells of the paper's table 4"),
    "embed": ("embed", "embed a tactile image or 3-frame window with an encoder bundle (JSON)"),
    "eval": ("evaluate", "closed-loop evaluation of a policy bundle on the simulated rig (JSON)"),
    "export": ("export", "write episode bags as a dataset for other tools (LeRobot v3.0)"),
    "pretrain": ("pretrain", "train AnyTouch stage 1 (masked modelling) or stage 2 (alignment, matching)"),
    "pretrain-recipe": ("pretrain_recipe", "reproduce the shipped sim-pretrained encoder: dataset, stage 1, stage 2, "
                                           "export"),
    "sim": ("sim", "simulated rig: closed-loop evaluation, sensor previews, demonstrations, aligned touch data"),
    "train": ("train", "train the pouring policy from episode bags (frozen or fine-tuned encoder)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = ExampleParser(prog="anytouch", description="AnyTouch pouring tools (no ROS needed).",
                           example=example(__doc__, "anytouch"))
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (name, help_text) in VERBS.items():
        module = importlib.import_module(f"anytouch_policy.cli.{name}")
        p = sub.add_parser(verb, help=help_text, description=help_text, example=example(module.__doc__,
                                                                                       f"anytouch {verb}"))
        p.set_defaults(_module=name)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(f"anytouch_policy.cli.{args._module}")
    try:
        return int(module.run(args) or 0)
    except AnyTouchError as exc:
        print(f"anytouch {args.verb}: error: {exc}", *_notes(exc), sep="; ", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"anytouch {args.verb}: interrupted", *_notes(exc), sep="; ", file=sys.stderr)
        return 130


def _notes(exc: BaseException) -> list[str]:
    """What was added to an exception on its way up (outputs.writing_dir: where a partial recording is kept)."""
    return list(getattr(exc, "__notes__", ()))


if __name__ == "__main__":
    sys.exit(main())
