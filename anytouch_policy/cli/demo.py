"""anytouch demo --out runs/demo

The main job on the simulated rig in one command (under 20 minutes on 2 CPU cores): record expert demonstrations
into bags, train fine-tuned and frozen policies with dynamic (3-frame) and static (1-frame) windows from them,
evaluate each in closed loop on unseen seeds, and print the paper's table 4 (docs/training.md). Everything lands in
--out (default runs/demo-<timestamp>): bags/, models/, eval/, table.md, table.json, pours.png, errors.png.

    anytouch demo                              # the full run
    anytouch demo --quick --out /tmp/demo      # a one-minute smoke run (tiny encoder, rough numbers)
    anytouch demo --preset anytouch-small      # the random-init baseline instead of the shipped pretrained encoder
    anytouch demo --encoder models/adapted     # start from your own encoder bundle

Without --encoder or --preset the encoder is the shipped sim-pretrained models/anytouch-small (models/README.md);
--quick uses a random-init tiny encoder. Flags, defaults and ranges are DemoConfig's (anytouch_policy.demo.run);
--quick changes the defaults of the flags it names (DemoConfig.quick).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.demo.run import DemoConfig

FLAGS = Flags(
    DemoConfig,
    Flag("out", optional=True), Flag("episodes", optional=True), Flag("eval_episodes", optional=True), "initial_g",
    "target_g", Flag("sensors", "--sensor", metavar="MODEL[:FINGER[:FPS]]"), Flag("encoder", metavar="BUNDLE"),
    Flag("preset", optional=True), Flag("finetune", metavar="all|last:N"), Flag("finetune_epochs", optional=True),
    Flag("frozen_epochs", optional=True), Flag("bags", metavar="DIR"), "seed", "threads", "workers", "amp",
    Flag("progress", help="no progress bars"),
    one_of=[("encoder", "preset")],
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small run for tests: 8 demos, 2 eval episodes, "
                                                             "tiny encoder, 3 fine-tune / 40 head epochs")
    FLAGS.add_to(parser)


def demo_config(args: argparse.Namespace) -> DemoConfig:
    """The DemoConfig the flags describe: the shipped encoder unless --encoder, --preset or --quick."""
    values = FLAGS.values(args)
    values.setdefault("out", Path(f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}"))
    if values.get("encoder") is None and values.get("preset") is None and not args.quick:
        from anytouch_policy.model.bundle import shipped_encoder

        values["encoder"] = shipped_encoder()
    return DemoConfig.quick(**values) if args.quick else DemoConfig(**values)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.demo.run import run_demo

    run_demo(demo_config(args))
    return 0
