"""Simulated pouring rig: closed-loop evaluation, sensor previews and recorded demonstrations.

    anytouch sim eval --policy expert --episodes 20 --initial-g 100 --target-g 60 --sensor gelsight_mini --seed 0 --json
    anytouch sim render --out sim_preview --sensor gelsight_mini --sensor digit:right
    anytouch sim record --out demos --episodes 40 --initial-g 80:120 --target-g 20:80 --sensor gelsight_mini --seed 0
    anytouch sim dataset --out data/sim_tacquad --hours 1 --workers 2

`--sensor` takes model[:finger[:fps]], the model by shipped name (gelsight_mini, digit, gelslim, gelsight, duragel)
or by the path of a sensor model file (docs/sim.md, e.g. `--sensor rig/my_sensor.yaml`), and may be repeated:
every sensor renders the same rig.
"""

from __future__ import annotations

import argparse
import json
import sys

from anytouch_policy.cli.args import (
    GRAMS,
    GRAMS_RANGE,
    NONNEGATIVE_INT,
    POSITIVE_INT,
    TILT_DEG,
    add_workers_argument,
    number,
)
from anytouch_policy.cli.help import example

POLICIES = ("expert", "expert-static")
#: sim dataset's default sensors (sim.dataset.DEFAULT_SENSORS, named here so `--help` loads no renderer).
DATASET_SENSORS = ("gelsight_mini", "digit", "gelslim", "gelsight")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, default_sensors: list[str], *, ranges: bool = False) -> None:
        if ranges:
            p.add_argument("--initial-g", type=GRAMS_RANGE, default=(100.0, 100.0), metavar="A[:B]",
                           help="beads in the cylinder at the start (g), drawn per episode from [A, B]")
            p.add_argument("--target-g", type=GRAMS_RANGE, default=(60.0, 60.0), metavar="C[:D]",
                           help="mass to pour (g), drawn per episode from [C, D] and at least 10 g below the initial "
                                "mass")
        else:
            p.add_argument("--initial-g", type=GRAMS, default=100.0, help="beads in the cylinder at the start (g)")
            p.add_argument("--target-g", type=GRAMS, default=60.0, help="mass to pour (g)")
        p.add_argument("--sensor", action="append", default=None, metavar="MODEL[:FINGER[:FPS]]",
                       help="simulated sensor: a shipped model name or a model file (.yaml), repeatable "
                            f"(default: {' '.join(default_sensors)})")
        p.add_argument("--seed", type=NONNEGATIVE_INT, default=0, help="run seed")
        p.add_argument("--no-randomize", action="store_true", help="nominal physics and sensors, no nuisances")
        p.add_argument("--initial-tilt-deg", type=TILT_DEG, default=None,
                       help="start tilt (default: a little below the critical tilt of the initial fill)")
        p.set_defaults(default_sensors=default_sensors)

    ev = sub.add_parser("eval", help="run K closed-loop episodes of a policy and report the errors (table 4)",
                        example=example(__doc__, "anytouch sim eval"))
    common(ev, ["gelsight_mini"])
    ev.add_argument("--policy", choices=POLICIES, default="expert",
                    help="expert: scripted expert; expert-static: the expert without the stream state (1-frame bound)")
    ev.add_argument("--episodes", type=POSITIVE_INT, default=20, help="episodes (evaluation seed range)")
    ev.add_argument("--max-ticks", type=POSITIVE_INT, default=200, help="give up an episode after this many 5 Hz ticks")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    add_workers_argument(ev)

    rd = sub.add_parser("render", help="write a PNG strip and a GIF per sensor over one expert pour",
                        example=example(__doc__, "anytouch sim render"))
    common(rd, ["gelsight_mini", "digit"])
    rd.add_argument("--out", required=True, help="output directory (new or empty)")
    rd.add_argument("--overwrite", action="store_true", help="replace an earlier preview in --out")
    rd.add_argument("--columns", type=number(int, low=2), default=8, help="moments shown in the strip")

    rc = sub.add_parser("record", help="record scripted-expert demonstrations into episode bags (the recorder's "
                                       "format), (initial, target) drawn per episode",
                        example=example(__doc__, "anytouch sim record"))
    common(rc, ["gelsight_mini"], ranges=True)
    rc.add_argument("--out", required=True, help="output directory (new or empty)")
    rc.add_argument("--overwrite", action="store_true", help="replace an earlier recording in --out")
    rc.add_argument("--episodes", type=POSITIVE_INT, default=20, help="demonstrations (TRAIN seed range, <= 10000)")
    rc.add_argument("--max-ticks", type=POSITIVE_INT, default=200, help="give up an episode after this many 5 Hz ticks")
    rc.add_argument("--no-progress", action="store_true", help="no progress bar")

    ds = sub.add_parser("dataset", help="aligned multi-sensor touch data (pours, slips, presses, slides) in the "
                                        "TacQuad-style layout `anytouch pretrain --data` reads",
                        example=example(__doc__, "anytouch sim dataset"))
    ds.add_argument("--out", required=True, help="output directory (new or empty)")
    ds.add_argument("--overwrite", action="store_true", help="replace an earlier dataset in --out")
    ds.add_argument("--hours", type=number(float, low=0, high=1000, low_open=True), required=True,
                    help="simulated contact time: scenarios are drawn until their durations add up to this")
    ds.add_argument("--sensor", action="append", default=None, metavar="MODEL[:FINGER[:FPS]]",
                    help="sensor rendering every state, repeatable (default: " + " ".join(DATASET_SENSORS) +
                         "; duragel stays out for the transfer experiment)")
    ds.add_argument("--seed", type=NONNEGATIVE_INT, default=0, help="dataset seed (same seed, same bytes)")
    ds.add_argument("--every", type=number(float, low=0.05, high=60), default=1.0, metavar="S",
                    help="seconds of sim time between samples of a scenario (+/- 25 %%, default 1)")
    ds.add_argument("--size", type=number(int, low=0, high=1024), default=112, metavar="PX",
                    help="frames stored resized to PX x PX as the encoder reads them (default 112, anytouch-small's "
                         "input; 224 for the large preset); 0 keeps each sensor's native frames")
    ds.add_argument("--heldout", type=number(float, low=0, high=0.5), default=0.1, metavar="F",
                    help="share of scenarios held out for probing (heldout.jsonl; default 0.1)")
    ds.add_argument("--workers", type=number(int, low=1, high=64), default=1,
                    help="processes rendering scenarios in parallel (the output does not depend on it)")
    ds.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace, **extra):
    from anytouch_policy.sim.params import RigConfig

    initial = args.initial_g[1] if isinstance(args.initial_g, tuple) else args.initial_g  # record: drawn per episode
    return RigConfig(initial_g=initial, randomize=not args.no_randomize,
                     initial_tilt_deg=args.initial_tilt_deg, **extra)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.sim.sensor_params import SensorSpec

    if args.sim_command == "dataset":
        return _dataset(args)
    sensors = [SensorSpec.parse(s) for s in (args.sensor or args.default_sensors)]
    if args.sim_command == "record":
        return _record(args, sensors)
    if args.sim_command == "render":
        from anytouch_policy.sim.preview import render_pour

        files = render_pour(args.out, sensors=sensors, seed=args.seed, initial_g=args.initial_g,
                            target_g=args.target_g, columns=args.columns, config=_config(args),
                            overwrite=args.overwrite)
        for name in files.strips:
            print(f"{name}: {files.strips[name]}  {files.gifs[name]}")
        print(f"{files.ticks} ticks, poured {files.poured_g:.2f} g (target {args.target_g:g} g)")
        return 0

    from anytouch_policy.eval.rollout import EpisodePool, evaluate
    from anytouch_policy.sim.expert import ExpertParams, ScriptedExpert

    policy = ScriptedExpert(ExpertParams(knows_flow=args.policy == "expert"))
    progress = None if args.json else (lambda ep: print(f"episode {ep.index}: poured {ep.poured_g:.2f} g",
                                                        file=sys.stderr))
    with EpisodePool(args.workers) as pool:
        report = evaluate(policy, episodes=args.episodes, initial_g=args.initial_g, target_g=args.target_g,
                          sensors=sensors, seed=args.seed, config=_config(args, max_ticks=args.max_ticks),
                          progress=progress, pool=pool)
    if args.json:
        print(json.dumps({"policy": args.policy, **report.to_dict()}, indent=2))
    else:
        print(report.table())
    return 0


def _record(args: argparse.Namespace, sensors: list) -> int:
    from anytouch_policy.demo.record import RECORD_FILE, record_demonstrations

    paths = record_demonstrations(args.out, episodes=args.episodes, initial_g=args.initial_g, target_g=args.target_g,
                                  sensors=sensors, seed=args.seed, config=_config(args, max_ticks=args.max_ticks),
                                  overwrite=args.overwrite, bar=not args.no_progress)
    print(f"{len(paths)} episodes in {args.out} ({', '.join(s.name for s in sensors)}); settings and the drawn "
          f"(initial, target) pairs: {args.out}/{RECORD_FILE}")
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from anytouch_policy.errors import ConfigError
    from anytouch_policy.sim.dataset import DATASET_FILE, write_dataset
    from anytouch_policy.sim.sensor_params import SensorSpec

    if 0 < args.size < 16:
        raise ConfigError(f"--size must be 0 (native frames) or in [16, 1024] px, got {args.size}")
    sensors = [SensorSpec.parse(s) for s in (args.sensor or DATASET_SENSORS)]
    summary = write_dataset(args.out, hours=args.hours, seed=args.seed, sensors=sensors, every_s=args.every,
                            size=args.size or None, heldout=args.heldout, workers=args.workers,
                            overwrite=args.overwrite, bar=not args.no_progress)
    splits = summary["splits"]
    print(f"{splits['train']['states']} training and {splits['heldout']['states']} held-out states of "
          f"{summary['scenarios']} scenarios, {summary['frames']} frames ({summary['bytes'] / 1e9:.2f} GB) from "
          f"{', '.join(s.name for s in sensors)} in {summary['seconds']:.0f} s; {args.out}/{DATASET_FILE}")
    return 0
