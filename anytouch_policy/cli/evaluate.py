"""anytouch eval --policy models/pour-ft --episodes 20 --initial-g 100 --target-g 60 --seed 0 --json
anytouch eval --policy models/pour-universal --sensor digit --token universal   # a Mini-trained policy with a DIGIT

Closed-loop evaluation of a policy bundle on the simulated rig through PolicyRuntime.decide_windows (the encoder
and head code the ROS nodes run), on evaluation seeds disjoint from every training seed. Prints the per-episode
table (or JSON with mean_abs_error_g and every episode) and writes a plot of poured mass over time. Only the
arguments live here; the work is anytouch_policy.eval.policy.evaluate_bundle.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from anytouch_policy.cli.args import GRAMS, NONNEGATIVE_INT, POSITIVE_INT, add_workers_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="BUNDLE", help="policy bundle folder")
    parser.add_argument("--episodes", type=POSITIVE_INT, default=20, help="closed-loop episodes")
    parser.add_argument("--initial-g", type=GRAMS, default=100.0, help="beads in the cylinder at the start (g)")
    parser.add_argument("--target-g", type=GRAMS, default=60.0, help="mass to pour (g)")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0,
                        help="run seed (episode seeds from the evaluation range)")
    parser.add_argument("--sensor", action="append", default=None, metavar="MODEL[:FINGER[:FPS]]",
                        help="simulated sensors: shipped model names or model files (.yaml), repeatable (default: "
                             "the policy's sensors, by name); as many as the policy has, each stands in for the "
                             "policy's sensor in its place (another type needs --token universal)")
    parser.add_argument("--token", choices=["specific", "universal"], default=None,
                        help="the token mode the evaluation relies on; must be the bundle's (default: the bundle's)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="poured mass over time (default: <policy>/eval_<initial>-<target>_seed<seed>.png)")
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--threads", type=POSITIVE_INT, default=None, help="CPU threads (torch) with --workers 1")
    add_workers_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.eval.policy import default_plot_path, evaluate_bundle

    plot = None if args.no_plot else Path(args.plot) if args.plot else default_plot_path(
        args.policy, initial_g=args.initial_g, target_g=args.target_g, seed=args.seed)
    evaluate_bundle(args.policy, episodes=args.episodes, initial_g=args.initial_g, target_g=args.target_g,
                    seed=args.seed, sensors=args.sensor, plot=plot, device=args.device, precision=args.precision,
                    threads=args.threads, workers=args.workers, as_json=args.json, token=args.token)
    return 0
