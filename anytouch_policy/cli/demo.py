"""anytouch demo --out runs/demo

The main job on the simulated rig in one command (under 20 minutes on 2 CPU cores): record expert demonstrations
into bags, train fine-tuned and frozen policies with dynamic (3-frame) and static (1-frame) windows from them,
evaluate each in closed loop on unseen seeds, and print the paper's table 4 (docs/training.md). Everything lands in
--out (default runs/demo-<timestamp>): bags/, models/, eval/, table.md, table.json, pours.png, errors.png.

    anytouch demo --quick --out /tmp/demo      # a one-minute smoke run (tiny encoder, rough numbers)
    anytouch demo --preset anytouch-small      # the random-init baseline instead of the shipped pretrained encoder
    anytouch demo --encoder models/adapted     # start from your own encoder bundle

Without --encoder or --preset the encoder is the shipped sim-pretrained models/anytouch-small (models/README.md);
--quick uses a random-init tiny encoder.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from anytouch_policy.cli.args import GRAMS, NONNEGATIVE_INT, POSITIVE_INT, add_workers_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output folder (default runs/demo-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--quick", action="store_true", help="small run for tests: 8 demos, 2 eval episodes, "
                                                             "tiny encoder, 3 fine-tune / 40 head epochs")
    parser.add_argument("--episodes", type=POSITIVE_INT, default=None,
                        help="expert demonstrations to record (default 40)")
    parser.add_argument("--eval-episodes", type=POSITIVE_INT, default=None, help="closed-loop episodes per policy (20)")
    parser.add_argument("--initial-g", type=GRAMS, default=100.0)
    parser.add_argument("--target-g", type=GRAMS, default=60.0)
    parser.add_argument("--sensor", action="append", default=None, metavar="MODEL[:FINGER[:FPS]]",
                        help="simulated sensor: a shipped model name or a model file (.yaml), repeatable (default "
                             "gelsight_mini)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--encoder", default=None, metavar="BUNDLE",
                        help="encoder bundle to start from (default: the shipped models/anytouch-small)")
    source.add_argument("--preset", default=None,
                        help="random-init preset instead (anytouch-small: the random-init baseline)")
    parser.add_argument("--finetune", default="all", metavar="all|last:N")
    parser.add_argument("--finetune-epochs", type=POSITIVE_INT, default=None)
    parser.add_argument("--frozen-epochs", type=POSITIVE_INT, default=None)
    parser.add_argument("--bags", default=None, metavar="DIR", help="use these demonstrations instead of recording")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0)
    parser.add_argument("--threads", type=POSITIVE_INT, default=2, help="CPU threads (torch) of training")
    add_workers_argument(parser)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="fine-tune in bfloat16 autocast (default: where the CPU/GPU runs bfloat16 natively)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


if TYPE_CHECKING:
    from anytouch_policy.demo.run import DemoConfig


def demo_config(args: argparse.Namespace) -> DemoConfig:
    """The DemoConfig the arguments describe; the shipped encoder unless --encoder, --preset or --quick."""
    from anytouch_policy.demo.run import DemoConfig
    from anytouch_policy.model.bundle import shipped_encoder

    out = Path(args.out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}")
    encoder = args.encoder
    if encoder is None and args.preset is None and not args.quick:
        encoder = shipped_encoder()
    overrides = {k: v for k, v in {
        "episodes": args.episodes, "eval_episodes": args.eval_episodes, "preset": args.preset,
        "finetune_epochs": args.finetune_epochs, "frozen_epochs": args.frozen_epochs,
        "sensors": args.sensor}.items() if v is not None}
    overrides.update(initial_g=args.initial_g, target_g=args.target_g, seed=args.seed, finetune=args.finetune,
                     encoder=Path(encoder) if encoder else None,
                     bags=Path(args.bags) if args.bags else None, threads=args.threads, workers=args.workers,
                     amp=args.amp,
                     progress=not args.no_progress)
    return DemoConfig.quick(out, **overrides) if args.quick else DemoConfig(out=out, **overrides)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.demo.run import run_demo

    run_demo(demo_config(args))
    return 0
