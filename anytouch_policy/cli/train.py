"""anytouch train --bags episodes/ --preset anytouch-small --mode finetune --frames 3 --out models/pour-ft

Train the pouring policy from recorded episode bags (docs/training.md) and write a policy bundle. Frozen mode
caches every window's embedding on disk (a second run reuses it); finetune mode trains encoder and head together.
Multi-GPU: torchrun --nproc_per_node 4 -m anytouch_policy.cli.main train ... (no other change).
Flags, defaults and ranges are TrainConfig's (anytouch_policy.train.config).
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.policy.config import ReferenceMode
from anytouch_policy.train.config import TrainConfig

FLAGS = Flags(
    TrainConfig,
    Flag("bags", metavar="DIR"), Flag("encoder", metavar="BUNDLE"), Flag("preset", metavar="NAME"), "mode",
    Flag("finetune", metavar="all|last:N"), "frames", "stride", Flag("token_mode", "--token"),
    Flag("sensors", "--sensor", metavar="NAME"),
    Flag("reference", "--no-reference", const=ReferenceMode.NONE,
         help="the head sees the current window only (no episode-start reference)"),
    Flag("conditioning", "--no-conditioning", const=(), help="no initial/target grams input"),
    "out", "overwrite", "epochs", "batch_size", "lr", "encoder_lr", "weight_decay", "hidden", "layers", "dropout",
    "feature_noise", "val_fraction", Flag("class_weights", help="plain (unweighted) cross-entropy"),
    Flag("augment", "--no-augment", const=None, help="finetune: no colour jitter"), Flag("augment.hflip", "--hflip"),
    "cache_dir", Flag("use_cache", "--no-cache", help="frozen: encode without the on-disk cache"),
    "precision", "select", "labels", "amp", "device", "threads", "seed", "skip_bad",
    Flag("progress", help="no progress bars"),
    one_of=[("encoder", "preset")],
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    FLAGS.add_to(parser)
    parser.add_argument("--json", action="store_true", help="print the training summary as JSON at the end")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.train import train

    result = train(FLAGS.build(args))
    if args.json:
        print(json.dumps({"bundle": str(result.bundle), **result.summary}, indent=2))
    return 0
