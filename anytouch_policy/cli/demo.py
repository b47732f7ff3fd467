"""anytouch demo --out runs/demo

The main job on the simulated rig in one command (under 20 minutes on 2 CPU cores): record expert demonstrations
into bags, train the six cells of the paper's table 4 from them (rows: random init, sim-pretrained static, sim-
pretrained dynamic; columns: fine-tune, freeze), evaluate each in closed loop on the same unseen seeds, and print the
table with 95 % intervals and the paired orderings (docs/training.md). Everything lands in --out (default
runs/demo-<timestamp>): bags/, models/, eval/, table.md, table.json, pours.png, errors.png.

    anytouch demo --quick --out /tmp/demo              # a smoke run of a minute or two (tiny encoder, rough numbers)
    anytouch demo --encoder models/adapted             # the pretrained rows from your own encoder bundle
    anytouch demo --episodes-per-cell 10 --out /tmp/d  # a shorter evaluation (wider intervals)
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from anytouch_policy.cli.args import GRAMS, NONNEGATIVE_INT, POSITIVE_INT, add_workers_argument

#: --encoder value that runs every row from the random init, even where a pretrained bundle ships.
NO_ENCODER = "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output folder (default runs/demo-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--quick", action="store_true", help="small run for tests: 8 demos, 3 episodes per cell, "
                                                             "tiny encoder, 3 fine-tune / 40 head epochs, no "
                                                             "pretrained encoder unless --encoder is given")
    parser.add_argument("--episodes", type=POSITIVE_INT, default=None,
                        help="expert demonstrations to record (default 40)")
    parser.add_argument("--episodes-per-cell", dest="eval_episodes", type=POSITIVE_INT,
                        default=None, help="closed-loop evaluation episodes per cell, the same seeds in every cell "
                                           "(default 50)")
    parser.add_argument("--initial-g", type=GRAMS, default=100.0)
    parser.add_argument("--target-g", type=GRAMS, default=60.0)
    parser.add_argument("--sensor", action="append", default=None, metavar="MODEL[:FINGER[:FPS]]",
                        help="simulated sensor: a shipped model name or a model file (.yaml), repeatable (default "
                             "gelsight_mini)")
    parser.add_argument("--encoder", default=None, metavar=f"BUNDLE|{NO_ENCODER}",
                        help="encoder bundle of the pretrained rows (default: the shipped sim-pretrained bundle in "
                             f"models/ where present; '{NO_ENCODER}': every row from the random init)")
    parser.add_argument("--preset", default=None, help="encoder preset of the random-init row (default "
                                                       "anytouch-small)")
    parser.add_argument("--finetune", default="all", metavar="all|last:N")
    parser.add_argument("--finetune-epochs", type=POSITIVE_INT, default=None, help="(default 8)")
    parser.add_argument("--frozen-epochs", type=POSITIVE_INT, default=None, help="(default 40)")
    parser.add_argument("--bags", default=None, metavar="DIR", help="use these demonstrations instead of recording")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0)
    parser.add_argument("--threads", type=POSITIVE_INT, default=2, help="CPU threads (torch) of training")
    add_workers_argument(parser)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="fine-tune in bfloat16 autocast (default: where the CPU/GPU runs bfloat16 natively)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def encoder_choice(value: str | None, *, quick: bool) -> Path | None:
    """--encoder: a bundle, 'none', or unset: the shipped pretrained bundle (not for --quick, whose random row is
    the tiny preset)."""
    from anytouch_policy.demo.config import default_encoder

    if value == NO_ENCODER:
        return None
    if value is not None:
        return Path(value)
    return None if quick else default_encoder()


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.demo import DemoConfig, run_demo

    out = Path(args.out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}")
    overrides = {k: v for k, v in {
        "episodes": args.episodes, "eval_episodes": args.eval_episodes, "preset": args.preset,
        "finetune_epochs": args.finetune_epochs, "frozen_epochs": args.frozen_epochs,
        "sensors": args.sensor}.items() if v is not None}
    overrides.update(initial_g=args.initial_g, target_g=args.target_g, seed=args.seed, finetune=args.finetune,
                     encoder=encoder_choice(args.encoder, quick=args.quick),
                     bags=Path(args.bags) if args.bags else None, threads=args.threads, workers=args.workers,
                     amp=args.amp, progress=not args.no_progress)
    config = DemoConfig.quick(out, **overrides) if args.quick else DemoConfig(out=out, **overrides)
    run_demo(config)
    return 0
