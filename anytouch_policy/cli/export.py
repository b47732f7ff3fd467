"""anytouch export lerobot --bags episodes/ --out datasets/pour-demos --fps 5

Write episode bags in another tool's dataset format (docs/export.md). `lerobot`: a LeRobotDataset v3.0 folder, one
row per 5 Hz action tick with each tactile sensor's frame as a lossless PNG, the action, tilt (and scale) and the
episode's grams; load it with `LeRobotDataset(repo_id, root=OUT)`. No Hub, no network, lerobot itself not needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anytouch_policy.cli.args import POSITIVE_INT, number
from anytouch_policy.cli.help import example


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    lerobot = formats.add_parser("lerobot", help="LeRobotDataset v3.0 (parquet, PNG images)",
                                 description="Write episode bags as a LeRobotDataset v3.0 folder.",
                                 example=example(__doc__, "anytouch export lerobot"))
    lerobot.add_argument("--bags", action="extend", nargs="+", required=True, metavar="DIR",
                         help="folder(s) of episode bags (MCAP or sqlite3), or single episodes; repeatable")
    lerobot.add_argument("--out", required=True,
                         help="dataset folder to write (new or empty; --overwrite replaces an earlier export)")
    lerobot.add_argument("--fps", type=POSITIVE_INT, default=5,
                         help="rows per second: the episodes' action rate (5 Hz)")
    lerobot.add_argument("--png-level", type=number(int, low=0, high=9), default=6,
                         help="PNG zlib level 0-9 (lossless at any level): 6 as LeRobot; 1 is ~5x faster, ~15%% larger")
    lerobot.add_argument("--overwrite", action="store_true", help="replace an earlier dataset at --out")
    lerobot.add_argument("--skip-bad", action="store_true", help="skip (and list) corrupt bags instead of stopping")
    lerobot.add_argument("--no-progress", action="store_true", help="no progress bar")
    lerobot.add_argument("--json", action="store_true", help="print the export summary as JSON at the end")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.export.lerobot import export_lerobot

    summary = export_lerobot([Path(b) for b in args.bags], Path(args.out), fps=args.fps, skip_bad=args.skip_bad,
                             overwrite=args.overwrite, png_level=args.png_level,
                             progress=not args.no_progress)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    return 0
