"""anytouch bench encoder --presets anytouch-small,anytouch-large --threads 2
anytouch bench train --preset anytouch-small --threads 2
anytouch bench appearance --model gelsight_mini --real gelsight_mini

Run a benchmark and print its JSON. Each bench lives in anytouch_policy.bench.<name> and defines
add_arguments(parser) and run(args) -> dict; add one by adding a line to BENCHES.
"""

from __future__ import annotations

import argparse
import importlib
import json

#: bench name -> (module, one-line help)
BENCHES: dict[str, tuple[str, str]] = {
    "encoder": ("anytouch_policy.bench.encoder", "encoder windows/s and p50/p99 latency per preset, device, dtype"),
    "train": ("anytouch_policy.bench.train", "frozen epoch with vs without the embedding cache; finetune samples/s"),
    "appearance": ("anytouch_policy.bench.appearance",
                   "a simulated sensor vs real frames (taxim): colours, histogram, radial profile, noise, presses"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name, (module, help_text) in BENCHES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_bench_module=module)
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    result = importlib.import_module(args._bench_module).run(args)
    print(json.dumps(result, indent=2))
    return 0
