"""anytouch eval --policy models/pour-ft --episodes 20 --initial-g 100 --target-g 60 --seed 0 --json
anytouch eval --policy models/pour-universal --sensor digit --token universal   # a Mini-trained policy with a DIGIT

Closed-loop evaluation of a policy bundle on the simulated rig through PolicyRuntime.decide_windows (the encoder
and head code the ROS nodes run), on evaluation seeds disjoint from every training seed. Prints the per-episode
table (or JSON with mean_abs_error_g and every episode) and writes a plot of poured mass over time. Only the
arguments live here (EvalConfig's fields); the work is anytouch_policy.eval.policy.evaluate_bundle.
"""

from __future__ import annotations

import argparse

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.eval.policy import EvalConfig

FLAGS = Flags(
    EvalConfig,
    Flag("policy", metavar="BUNDLE"), "episodes", "initial_g", "target_g", "seed",
    Flag("sensors", "--sensor", metavar="MODEL[:FINGER[:FPS]]"), Flag("plot", metavar="PNG"),
    Flag("write_plot", "--no-plot", help="write no plot"), "device", "precision", "threads", "workers", "token",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    FLAGS.add_to(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.eval.policy import evaluate_bundle

    evaluate_bundle(FLAGS.build(args), as_json=args.json)
    return 0
