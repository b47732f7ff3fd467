"""anytouch demo --out runs/demo

The main job on the simulated rig in one command (under 20 minutes on 2 CPU cores): record expert demonstrations
into bags, train the six cells of the paper's table 4 from them (rows: random init, sim-pretrained static, sim-
pretrained dynamic; columns: fine-tune, freeze), evaluate each in closed loop on the same unseen seeds, and print the
table with 95 % intervals and the paired orderings (docs/training.md). Everything lands in --out (default
runs/demo-<timestamp>): bags/, models/, eval/, table.md, table.json, pours.png, errors.png.

    anytouch demo                                      # the full run
    anytouch demo --quick --out /tmp/demo              # a smoke run of a minute or two (tiny encoder, rough numbers)
    anytouch demo --encoder models/adapted             # the pretrained rows from your own encoder bundle
    anytouch demo --encoder none                       # every row from the random init (the no-pretraining check)
    anytouch demo --episodes-per-cell 10 --out /tmp/d  # a shorter evaluation (wider intervals)

All three rows always run. The pretrained rows' encoder is --encoder, by default the shipped sim-pretrained
models/anytouch-small (models/README.md) where present; the random-init row's is --preset. --quick uses the tiny
preset and no pretrained encoder unless --encoder is given. Flags, defaults and ranges are DemoConfig's
(anytouch_policy.demo.config); --quick changes the defaults of the flags it names (DemoConfig.quick).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.demo.config import DemoConfig

#: --encoder value that runs every row from the random init, even where a pretrained bundle ships.
NO_ENCODER = "none"

FLAGS = Flags(
    DemoConfig,
    Flag("out", optional=True), Flag("episodes", optional=True), Flag("eval_episodes", "--episodes-per-cell",
                                                                      optional=True),
    "initial_g", "target_g", Flag("sensors", "--sensor", metavar="MODEL[:FINGER[:FPS]]"),
    Flag("encoder", metavar=f"BUNDLE|{NO_ENCODER}", optional=True,
         help="encoder bundle of the pretrained rows (default: the shipped sim-pretrained models/anytouch-small "
              f"where present, not with --quick; '{NO_ENCODER}': every row from the random init)"),
    Flag("preset", optional=True), Flag("finetune", metavar="all|last:N"), "augment",
    Flag("finetune_epochs", optional=True), Flag("frozen_epochs", optional=True), "frozen_dropout", "remaining_weight",
    Flag("bags", metavar="DIR"), "seed", "threads",
    "workers", "amp",
    Flag("progress", help="no progress bars"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small run for tests: 8 demos, 3 episodes per cell, "
                                                             "tiny encoder, 3 fine-tune / 40 head epochs, no "
                                                             "pretrained encoder unless --encoder is given")
    FLAGS.add_to(parser)


def encoder_choice(value: str | None, *, quick: bool) -> Path | None:
    """--encoder: a bundle, 'none', or unset: the shipped pretrained bundle where present (not for --quick, whose
    random row is the tiny preset)."""
    from anytouch_policy.model.bundle import shipped_encoder

    if value == NO_ENCODER:
        return None
    if value is not None:
        return Path(value)
    return None if quick else shipped_encoder()


def demo_config(args: argparse.Namespace) -> DemoConfig:
    """The DemoConfig the flags describe (--quick: DemoConfig.quick under the flags given)."""
    values = FLAGS.values(args)
    values.setdefault("out", Path(f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}"))
    values["encoder"] = encoder_choice(values.get("encoder"), quick=args.quick)
    return DemoConfig.quick(**values) if args.quick else DemoConfig(**values)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.demo.run import run_demo

    run_demo(demo_config(args))
    return 0
