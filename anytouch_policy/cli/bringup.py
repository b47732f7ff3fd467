"""Start the pour or record node set without launch_ros: one supervised process per node, same YAML as the launch files.

    anytouch bringup record --sim
    anytouch bringup record --sim --expert --output-dir episodes     # scripted demonstrations, no keyboard
    anytouch bringup pour --sim --policy models/policy --dry-run     # sensors: the policy bundle's

Runs the node plan (anytouch_policy.bringup.plan) that `ros2 launch anytouch_ros <pour|record>.launch.py` builds
its nodes from: same executables, node names, parameter files, overrides and essential nodes. Ctrl-C stops every
node; an essential node's exit (encoder, policy, arm; recorder, teleop, expert) stops the others. Exit status 1
when any node failed: a non-zero status, or a signal bringup did not send it (a stray SIGTERM, SIGKILL); each is
named with its cause.
"""

from __future__ import annotations

import argparse

from anytouch_policy.bounds import NONNEGATIVE
from anytouch_policy.cli.args import number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from anytouch_policy.bringup.plan import DEFAULT_SENSORS, Mode

    parser.add_argument("mode", choices=[m.value for m in Mode], help="pour: sensors, encoder, policy, arm; "
                        "record: sensors, arm, teleop (or --expert), recorder")
    parser.add_argument("--sim", action="store_true", help="simulated rig backends (launch argument sim:=true)")
    parser.add_argument("--sensors", default="", help="name:type[,name:type...] (default: the --policy bundle's "
                        f"sensors, else {DEFAULT_SENSORS})")
    parser.add_argument("--namespace", default="", help="ROS namespace of every node and its relative topics")
    parser.add_argument("--config", nargs="+", default=[], metavar="FILE",
                        help="parameter files replacing the package's config/<mode>.yaml (later files win)")
    parser.add_argument("--policy", default="", help="pour: policy bundle folder (overrides the YAML)")
    parser.add_argument("--encoder", default="",
                        help="pour: encoder bundle folder (overrides the YAML; not with --policy, which has its own)")
    parser.add_argument("--no-teleop", dest="teleop", action="store_false",
                        help="record: do not start the keyboard teleop (run it in another terminal)")
    parser.add_argument("--expert", action="store_true",
                        help="record --sim: the scripted expert drives the demonstrations instead of the keyboard")
    parser.add_argument("--output-dir", default="", help="record: episodes directory (overrides the YAML)")
    parser.add_argument("--stop-timeout", type=number(float, NONNEGATIVE), default=10.0, metavar="S",
                        help="seconds to wait after SIGINT before SIGTERM/SIGKILL (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan as JSON and start nothing")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.bringup.plan import make_plan, run_plan

    plan = make_plan(args.mode, sim=args.sim, sensors=args.sensors, namespace=args.namespace, policy=args.policy,
                     encoder=args.encoder, teleop=args.teleop, expert=args.expert, output_dir=args.output_dir,
                     config=args.config)
    if args.dry_run:
        print(plan.to_json())
        return 0
    return run_plan(plan, stop_timeout_s=args.stop_timeout)
