"""anytouch eval --policy models/pour-ft --episodes 20 --initial-g 100 --target-g 60 --seed 0 --json

Closed-loop evaluation of a policy bundle on the simulated rig through PolicyRuntime.decide_windows (the encoder
and head code the ROS nodes run), on evaluation seeds disjoint from every training seed. Prints the per-episode
table (or JSON with mean_abs_error_g and every episode) and writes a plot of poured mass over time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anytouch_policy.cli.args import GRAMS, NONNEGATIVE_INT, POSITIVE_INT
from anytouch_policy.errors import AnyTouchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="BUNDLE", help="policy bundle folder")
    parser.add_argument("--episodes", type=POSITIVE_INT, default=20, help="closed-loop episodes")
    parser.add_argument("--initial-g", type=GRAMS, default=100.0, help="beads in the cylinder at the start (g)")
    parser.add_argument("--target-g", type=GRAMS, default=60.0, help="mass to pour (g)")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0,
                        help="run seed (episode seeds from the evaluation range)")
    parser.add_argument("--sensor", action="append", default=None, metavar="TYPE[:FINGER[:FPS]]",
                        help="simulated sensors (default: the policy's sensors, by name)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="poured mass over time (default: <policy>/eval_<initial>-<target>_seed<seed>.png)")
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--threads", type=POSITIVE_INT, default=None, help="CPU threads (torch)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.outputs import check_output_file
    from anytouch_policy.policy.runtime import PolicyRuntime
    from anytouch_policy.policy_eval import evaluate_policy, plot_pours
    from anytouch_policy.sim.sensor_params import SensorSpec

    plot = None
    if not args.no_plot:  # a bad path fails now, not after the evaluation
        plot = Path(args.plot or Path(args.policy) / f"eval_{args.initial_g:g}-{args.target_g:g}_seed{args.seed}.png")
        check_output_file(plot, what="--plot")
    runtime = PolicyRuntime.from_bundle(args.policy, device=args.device, precision=args.precision,
                                        threads=args.threads)
    sensors = [SensorSpec.parse(s) for s in args.sensor] if args.sensor else None
    progress = None if args.json else (lambda ep: print(f"episode {ep.index}: poured {ep.poured_g:.2f} g "
                                                        f"({ep.steps} ticks)", file=sys.stderr))
    result = evaluate_policy(runtime, episodes=args.episodes, initial_g=args.initial_g, target_g=args.target_g,
                             seed=args.seed, sensors=sensors, progress=progress)
    # The report first: nothing optional (the plot) may lose it.
    if args.json:
        print(json.dumps({"policy": str(args.policy), "variant": runtime.variant, **result.to_dict(),
                          **({} if plot is None else {"plot": str(plot)})}, indent=2), flush=True)
    else:
        print(result.report.table(), flush=True)
    if plot is not None:
        try:
            plot_pours({Path(args.policy).name: result}, plot)
        except OSError as exc:
            raise AnyTouchError(f"--plot {plot}: cannot write the plot ({exc}); the report above is complete") from None
        if not args.json:
            print(f"plot: {plot}")
    return 0
