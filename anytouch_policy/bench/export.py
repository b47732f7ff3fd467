"""Size and time of `anytouch export lerobot` on the demo's demonstrations, as JSON.

    OMP_NUM_THREADS=1 anytouch bench export --episodes 40 --png-level 6 > export_bench.json

Without --bags, records the demonstrations exactly as `anytouch demo` does (scripted expert, 100 g -> 60 g,
GelSight Mini, TRAIN seeds of run 0) into --work, then exports them there and reports bag and dataset sizes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from anytouch_policy.cli.args import POSITIVE_INT, number


def _mb(root: Path) -> float:
    return round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=POSITIVE_INT, default=40, help="demonstrations to record (without --bags)")
    parser.add_argument("--bags", default=None, help="export these bags instead of recording")
    parser.add_argument("--png-level", type=number(int, low=0, high=9), default=6,
                        help="PNG zlib level (LeRobot uses 6)")
    parser.add_argument("--work", default=None, help="folder for bags and dataset (default: a temporary one)")


def run(args: argparse.Namespace) -> dict:
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.export.lerobot import export_lerobot
    from anytouch_policy.sim.params import RigConfig
    from anytouch_policy.sim.sensor_params import SensorSpec

    work = Path(args.work or tempfile.mkdtemp(prefix="export-bench-"))
    figures: dict[str, object] = {}
    bags = Path(args.bags) if args.bags else work / "bags"
    if not args.bags:
        started = time.perf_counter()
        record_expert_episodes(bags, episodes=args.episodes, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                               config=RigConfig(initial_g=100.0), seed=0)
        figures["record_s"] = round(time.perf_counter() - started, 1)
    summary = export_lerobot([bags], work / "dataset", png_level=args.png_level, progress=False,
                             log=lambda line: print(line, file=sys.stderr))
    files = sorted((work / "dataset").rglob("*.parquet"))
    figures.update(png_level=args.png_level, episodes=summary.episodes, frames=summary.frames, export_s=summary.seconds,
                   ms_per_frame=round(1000 * summary.seconds / summary.frames, 1),
                   dataset_mb=round(summary.bytes / 1e6, 1),
                   kb_per_frame=round(summary.bytes / summary.frames / 1e3, 1),
                   data_files=summary.data_files, bags_mb=_mb(bags),
                   files=[str(p.relative_to(work / "dataset")) for p in files], work=str(work))
    return figures
