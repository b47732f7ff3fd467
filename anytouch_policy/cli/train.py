"""anytouch train --bags episodes/ --preset anytouch-small --mode finetune --frames 3 --out models/pour-ft

Train the pouring policy from recorded episode bags (docs/training.md) and write a policy bundle. Frozen mode
caches every window's embedding on disk (a second run reuses it); finetune mode trains encoder and head together.
Multi-GPU: torchrun --nproc_per_node 4 -m anytouch_policy.cli.main train ... (no other change).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anytouch_policy.cli.args import (
    DROPOUT,
    FRACTION,
    LEARNING_RATE,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE_INT,
    PROBABILITY,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bags", action="append", required=True, metavar="DIR",
                        help="folder of episode bags (MCAP or sqlite3), or one episode; repeatable")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--encoder", metavar="BUNDLE", help="encoder bundle to start from")
    source.add_argument("--preset", metavar="NAME", help="a preset, randomly initialised from --seed")
    parser.add_argument("--mode", choices=["frozen", "finetune"], default="frozen")
    parser.add_argument("--finetune", default="all", metavar="all|last:N", help="finetune: which encoder part trains")
    parser.add_argument("--frames", type=int, choices=[3, 1], default=3, help="3 = dynamic window, 1 = static")
    parser.add_argument("--stride", type=POSITIVE_INT, default=1, help="frames between the window's frames")
    parser.add_argument("--token", choices=["specific", "universal"], default="specific", help="sensor token")
    parser.add_argument("--sensor", action="append", default=None, metavar="NAME",
                        help="sensor name to use (default: every sensor in the bags); repeatable")
    parser.add_argument("--no-reference", action="store_true",
                        help="the head sees the current window only (no episode-start reference)")
    parser.add_argument("--no-conditioning", action="store_true", help="no initial/target grams input")
    parser.add_argument("--out", required=True, help="policy bundle folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    parser.add_argument("--epochs", type=POSITIVE_INT, default=None, help="default: 40 frozen, 8 finetune")
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    parser.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="head learning rate")
    parser.add_argument("--encoder-lr", type=LEARNING_RATE, default=2e-4, help="finetune: encoder learning rate")
    parser.add_argument("--weight-decay", type=NONNEGATIVE, default=0.05)
    parser.add_argument("--hidden", type=POSITIVE_INT, default=256, help="head hidden width")
    parser.add_argument("--layers", type=POSITIVE_INT, default=2, help="head hidden layers")
    parser.add_argument("--dropout", type=DROPOUT, default=0.1)
    parser.add_argument("--val-fraction", type=FRACTION, default=0.2, help="share of episodes held out")
    parser.add_argument("--no-class-weights", action="store_true", help="plain (unweighted) cross-entropy")
    parser.add_argument("--no-augment", action="store_true", help="finetune: no colour jitter")
    parser.add_argument("--hflip", type=PROBABILITY, default=0.0, help="finetune: probability of the mirror view")
    parser.add_argument("--cache-dir", default=None, help="frozen: embedding cache (default ~/.cache/anytouch)")
    parser.add_argument("--no-cache", action="store_true", help="frozen: encode without the on-disk cache")
    parser.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--select", choices=["val_loss", "last"], default="val_loss",
                        help="epoch saved as the bundle: lowest validation loss, or the last (end of the schedule)")
    parser.add_argument("--amp", action="store_true", help="finetune: bfloat16 autocast (faster on recent CPUs/GPUs)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=POSITIVE_INT, default=None, help="CPU threads (torch)")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0)
    parser.add_argument("--skip-bad", action="store_true", help="skip (and list) corrupt bags instead of stopping")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the training summary as JSON at the end")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.policy.config import CONDITIONING_NAMES, ReferenceMode
    from anytouch_policy.train import Augment, TrainConfig, train

    config = TrainConfig(
        bags=[Path(b) for b in args.bags], out=Path(args.out), mode=args.mode,
        encoder=Path(args.encoder) if args.encoder else None, preset=args.preset, finetune=args.finetune,
        frames=args.frames, stride=args.stride, token_mode=args.token, sensors=args.sensor,
        conditioning=() if args.no_conditioning else CONDITIONING_NAMES,
        reference=ReferenceMode.NONE if args.no_reference else ReferenceMode.EPISODE_START,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, encoder_lr=args.encoder_lr,
        weight_decay=args.weight_decay, hidden=args.hidden, layers=args.layers, dropout=args.dropout,
        val_fraction=args.val_fraction, seed=args.seed, class_weights=not args.no_class_weights,
        augment=None if args.no_augment else Augment(hflip=args.hflip),
        cache_dir=Path(args.cache_dir) if args.cache_dir else None, use_cache=not args.no_cache,
        precision=args.precision, amp=args.amp, select=args.select, device=args.device, threads=args.threads,
        skip_bad=args.skip_bad,
        progress=not args.no_progress, overwrite=args.overwrite)
    result = train(config)
    if args.json:
        print(json.dumps({"bundle": str(result.bundle), **result.summary}, indent=2))
    return 0
