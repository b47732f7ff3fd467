"""anytouch export lerobot --bags episodes/ --out datasets/pour-demos --fps 5

Write episode bags in another tool's dataset format (docs/export.md). `lerobot`: a LeRobotDataset v3.0 folder, one
row per 5 Hz action tick with each tactile sensor's frame as a lossless PNG, the action, tilt (and scale) and the
episode's grams; load it with `LeRobotDataset(repo_id, root=OUT)`. No Hub, no network, lerobot itself not needed.
Flags, defaults and ranges are ExportConfig's (anytouch_policy.export.lerobot).
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.cli.help import example
from anytouch_policy.export.lerobot import ExportConfig

LEROBOT = Flags(ExportConfig, Flag("bags", metavar="DIR", many=True), "out", "fps", "png_level", "overwrite",
                "skip_bad", Flag("progress", help="no progress bar"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    lerobot = formats.add_parser("lerobot", help="LeRobotDataset v3.0 (parquet, PNG images)",
                                 description="Write episode bags as a LeRobotDataset v3.0 folder.",
                                 example=example(__doc__, "anytouch export lerobot"))
    LEROBOT.add_to(lerobot)
    lerobot.add_argument("--json", action="store_true", help="print the export summary as JSON at the end")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.export.lerobot import export_lerobot

    summary = export_lerobot(LEROBOT.build(args))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    return 0
