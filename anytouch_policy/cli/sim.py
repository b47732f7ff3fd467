"""Simulated pouring rig: closed-loop evaluation, sensor previews, recorded demonstrations and aligned multi-sensor
touch data for pretraining.

    anytouch sim eval --policy expert --episodes 20 --initial-g 100 --target-g 60 --sensor gelsight_mini --seed 0 --json
    anytouch sim render --out sim_preview --sensor gelsight_mini --sensor digit:right
    anytouch sim record --out demos --episodes 40 --initial-g 80:120 --target-g 20:80 --sensor gelsight_mini --seed 0
    anytouch sim dataset --out data/sim_tacquad --hours 1 --workers 2
    anytouch sim sensors --out rig/random --count 16 --seed 0

`--sensor` takes model[:finger[:fps]], the model by shipped name (gelsight_mini, digit, gelslim, gelsight, duragel)
or by the path of a sensor model file (docs/sim.md, e.g. `--sensor rig/my_sensor.yaml`), and may be repeated:
every sensor renders the same rig. Each command's flags, defaults and ranges are its config's
(anytouch_policy.sim.runs).
"""

from __future__ import annotations

import argparse
import json
import sys

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.cli.help import example
from anytouch_policy.sim.runs import SimDataset, SimEval, SimRecord, SimRender, SimSensors

_SENSOR = Flag("sensors", "--sensor", metavar="MODEL[:FINGER[:FPS]]")
_COMMON = (_SENSOR, "seed", Flag("randomize", help="nominal physics and sensors, no nuisances"), "initial_tilt_deg")

#: command -> (flags, one-line help)
COMMANDS: dict[str, tuple[Flags, str]] = {
    "eval": (Flags(SimEval, "initial_g", "target_g", *_COMMON, "policy", "episodes", "max_ticks", "workers"),
             "run K closed-loop episodes of a policy and report the errors (table 4)"),
    "render": (Flags(SimRender, "initial_g", "target_g", *_COMMON, "out", "overwrite", "columns"),
               "write a PNG strip and a GIF per sensor over one expert pour"),
    "record": (Flags(SimRecord, Flag("initial_g", metavar="A[:B]"), Flag("target_g", metavar="C[:D]"), *_COMMON,
                     "out", "overwrite", "episodes", "max_ticks", Flag("progress", help="no progress bar")),
               "record scripted-expert demonstrations into episode bags (the recorder's format), (initial, target) "
               "drawn per episode"),
    "dataset": (Flags(SimDataset, "out", "overwrite", "hours", _SENSOR, "seed",
                      Flag("every_s", "--every", metavar="S"), Flag("size", metavar="PX"), Flag("heldout", metavar="F"),
                      "workers", Flag("progress", help="no progress bar")),
                "aligned multi-sensor touch data (pours, slips, presses, slides) in the TacQuad-style layout "
                "`anytouch pretrain --data` reads"),
    "sensors": (Flags(SimSensors, "out", "count", "seed"),
                "draw random sensor model files (universal token slot) to render with `--sensor`: training the "
                "universal token on sensors no model fixes"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")
    for name, (flags, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           example=example(__doc__, f"anytouch sim {name}"))
        flags.add_to(p)
        if name == "eval":
            p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    request = COMMANDS[args.sim_command][0].build(args)
    if isinstance(request, SimDataset):
        return _dataset(request)
    if isinstance(request, SimRecord):
        return _record(request)
    if isinstance(request, SimSensors):
        from anytouch_policy.sim.sensor_family import write_random_sensor_models

        paths = write_random_sensor_models(request.out, count=request.count, seed=request.seed)
        print(f"{len(paths)} sensor models in {request.out} ({paths[0].name} ... {paths[-1].name}); render them with "
              f"--sensor {paths[0]}")
        return 0
    if isinstance(request, SimRender):
        from anytouch_policy.sim.preview import render_pour

        files = render_pour(request)
        for name in files.strips:
            print(f"{name}: {files.strips[name]}  {files.gifs[name]}")
        print(f"{files.ticks} ticks, poured {files.poured_g:.2f} g (target {request.target_g:g} g)")
        return 0

    from anytouch_policy.eval.rollout import EpisodePool, evaluate
    from anytouch_policy.sim.expert import ExpertParams, ScriptedExpert

    policy = ScriptedExpert(ExpertParams(knows_flow=request.policy == "expert"))
    progress = None if args.json else (lambda ep: print(f"episode {ep.index}: poured {ep.poured_g:.2f} g",
                                                        file=sys.stderr))
    with EpisodePool(request.workers) as pool:
        report = evaluate(policy, episodes=request.episodes, initial_g=request.initial_g, target_g=request.target_g,
                          sensors=request.sensor_specs(), seed=request.seed,
                          config=request.rig(request.initial_g, max_ticks=request.max_ticks), progress=progress,
                          pool=pool)
    if args.json:
        print(json.dumps({"policy": request.policy, **report.to_dict()}, indent=2))
    else:
        print(report.table())
    return 0


def _record(request: SimRecord) -> int:
    from anytouch_policy.demo.record import RECORD_FILE, record_demonstrations

    sensors = request.sensor_specs()
    initial = request.initial_g[1]  # the rig's nominal fill; each episode draws its own from the range
    paths = record_demonstrations(request.out, episodes=request.episodes, initial_g=request.initial_g,
                                  target_g=request.target_g, sensors=sensors, seed=request.seed,
                                  config=request.rig(initial, max_ticks=request.max_ticks),
                                  overwrite=request.overwrite, bar=request.progress)
    print(f"{len(paths)} episodes in {request.out} ({', '.join(s.name for s in sensors)}); settings and the drawn "
          f"(initial, target) pairs: {request.out}/{RECORD_FILE}")
    return 0


def _dataset(request: SimDataset) -> int:
    from anytouch_policy.sim.dataset import DATASET_FILE, write_dataset

    sensors = request.sensor_specs()
    summary = write_dataset(request.out, hours=request.hours, seed=request.seed, sensors=sensors,
                            every_s=request.every_s, size=request.size or None, heldout=request.heldout,
                            workers=request.workers, overwrite=request.overwrite, bar=request.progress)
    splits = summary["splits"]
    print(f"{splits['train']['states']} training and {splits['heldout']['states']} held-out states of "
          f"{summary['scenarios']} scenarios, {summary['frames']} frames ({summary['bytes'] / 1e9:.2f} GB) from "
          f"{', '.join(s.name for s in sensors)} in {summary['seconds']:.0f} s; {request.out}/{DATASET_FILE}")
    return 0
