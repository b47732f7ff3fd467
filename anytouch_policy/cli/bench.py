"""anytouch bench encoder --presets anytouch-small,anytouch-large --threads 2
anytouch bench train --preset anytouch-small --threads 2
anytouch bench contention --preset anytouch-small --threads 2
OMP_NUM_THREADS=1 anytouch bench sim
anytouch bench appearance --model gelsight_mini --real gelsight_mini

Run a benchmark and print its JSON. Each bench lives in anytouch_policy.bench.<name> and defines its config class,
FLAGS (the flags built from it) and run(config) -> dict, and its docstring holds its example; add one by adding a
line to BENCHES.
"""

from __future__ import annotations

import argparse
import importlib
import json

from anytouch_policy.cli.help import example

#: bench name -> (module, one-line help)
BENCHES: dict[str, tuple[str, str]] = {
    "encoder": ("anytouch_policy.bench.encoder", "encoder windows/s and p50/p99 latency per preset, device, dtype"),
    "train": ("anytouch_policy.bench.train", "frozen epoch with vs without the embedding cache; finetune samples/s"),
    "contention": ("anytouch_policy.bench.contention",
                   "encoder and a fine-tuning epoch alone vs beside one busy process pinned to a core: slowdown"),
    "sim": ("anytouch_policy.bench.sim", "simulated rig: expert errors, dynamics R^2, render speed, determinism"),
    "pretrain-value": ("anytouch_policy.bench.pretrain_value",
                       "frozen policies on a stage-1-adapted vs a random-init encoder: closed-loop sim error"),
    "probe": ("anytouch_policy.bench.probe",
              "frozen embeddings on unseen sim touch: ridge R^2 per sensor, cross-sensor retrieval; random vs trained"),
    "export": ("anytouch_policy.bench.export", "size and time of `anytouch export lerobot` on the demo's demos"),
    "appearance": ("anytouch_policy.bench.appearance",
                   "a simulated sensor vs real frames (taxim): colours, histogram, radial profile, noise, presses"),
    "transfer": ("anytouch_policy.bench.transfer",
                 "Mini-trained universal-token policies (random init vs pretrained) poured with Mini, DIGIT, duragel"),
    "targets": ("anytouch_policy.bench.targets",
                "one policy over drawn (initial, target) pairs, evaluated on unseen pairs beside the expert"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name, (module_name, help_text) in BENCHES.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text,
                           example=example(module.__doc__, f"anytouch bench {name}"))
        p.set_defaults(_bench_module=module_name)
        module.FLAGS.add_to(p)


def run(args: argparse.Namespace) -> int:
    bench = importlib.import_module(args._bench_module)
    result = bench.run(bench.FLAGS.build(args))
    print(json.dumps(result, indent=2))
    return 0
