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
from anytouch_policy.errors import ConfigError
from anytouch_policy.policy.config import ReferenceMode
from anytouch_policy.train.config import TrainConfig, TrainMode

FLAGS = Flags(
    TrainConfig,
    Flag("bags", metavar="DIR"), Flag("encoder", metavar="BUNDLE"), Flag("preset", metavar="NAME"), "mode",
    Flag("finetune", metavar="all|last:N"), "frames", "stride", Flag("token_mode", "--token"),
    Flag("sensors", "--sensor", metavar="NAME"),
    Flag("reference", "--no-reference", const=ReferenceMode.NONE,
         help="the head sees the current window only (no episode-start reference)"),
    Flag("conditioning", "--no-conditioning", const=(), help="no initial/target grams input"),
    "out", "overwrite", "epochs", "batch_size", "lr", "encoder_lr", "weight_decay", "hidden", "layers", "dropout",
    "feature_noise", "remaining_weight", "val_fraction", Flag("class_weights", help="plain (unweighted) cross-entropy"),
    Flag("augment", "--no-augment", const=None, help="finetune: no colour jitter"), Flag("augment.hflip", "--hflip"),
    "prefix_draws", "cache_dir", Flag("use_cache", "--no-cache", help="frozen: encode without the on-disk cache"),
    "precision", "select", "labels", "amp", "device", "threads", "seed", "skip_bad",
    Flag("progress", help="no progress bars"),
    one_of=[("encoder", "preset")],
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    FLAGS.add_to(parser)
    parser.add_argument("--json", action="store_true", help="print the training summary as JSON at the end")


#: Settings only a fine-tune uses, and their flags: given with --mode frozen they would be silently ignored.
FINETUNE_ONLY = {"finetune": "--finetune", "encoder_lr": "--encoder-lr", "amp": "--amp",
                 "augment": "--no-augment/--hflip", "prefix_draws": "--prefix-draws"}


def check_mode_flags(config: TrainConfig) -> None:
    """Refuse fine-tune settings on a frozen run (the library's own callers may pass them for every mode)."""
    if config.mode is not TrainMode.FROZEN:
        return
    default = TrainConfig(bags=config.bags, out=config.out, encoder=config.encoder, preset=config.preset)
    given = [flag for name, flag in FINETUNE_ONLY.items() if getattr(config, name) != getattr(default, name)]
    if given:
        raise ConfigError(f"{', '.join(given)} apply to --mode finetune only; this run freezes the encoder "
                          f"(--mode frozen, the default)")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.train import train

    config = FLAGS.build(args)
    check_mode_flags(config)
    result = train(config)
    if args.json:
        print(json.dumps({"bundle": str(result.bundle), **result.summary}, indent=2))
    return 0
