"""anytouch pretrain --stage 1 --bags episodes/ --init models/anytouch-large --out runs/adapt --epochs 5

Train AnyTouch's objectives (docs/pretrain.md): stage 1 masked modelling on recorded bags and/or manifests,
stage 2 touch-vision-text alignment + cross-sensor matching on aligned manifests, e.g.

    anytouch pretrain --stage 2 --data tacquad/ --init runs/s1/encoder --init-decoder runs/s1/mae_decoder \\
        --clip-weights open_clip_model.safetensors --out runs/s2

Writes OUT/encoder/ (an encoder bundle for the encoder node and `anytouch train`), OUT/mae_decoder/,
OUT/checkpoints/last.pt (--resume continues from it), OUT/metrics.jsonl and OUT/run.json; prints a JSON summary.
Multi-GPU: torchrun --standalone --nproc_per_node 4 -m anytouch_policy.cli.main pretrain ... (no other change).
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.cli.args import (
    DROPOUT,
    FRACTION,
    LEARNING_RATE,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
)
from anytouch_policy.pretrain.config import AmpMode, ClipKind, Stage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", type=int, choices=[1, 2], required=True, help="1: masked modelling; 2: alignment")
    parser.add_argument("--data", action="append", default=[], metavar="MANIFEST",
                        help="dataset manifest (.jsonl) or folder holding manifest.jsonl; repeatable")
    parser.add_argument("--bags", action="append", default=[], metavar="DIR",
                        help="folder of recorded episodes (touch-only clips); repeatable")
    init = parser.add_mutually_exclusive_group(required=True)
    init.add_argument("--init", metavar="BUNDLE", help="encoder bundle to start from")
    init.add_argument("--preset", metavar="NAME", help="start from a preset (random, or CLIP with --clip-weights)")
    parser.add_argument("--init-decoder", metavar="DIR", help="a previous run's mae_decoder/ folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--clip-arch", default="ViT-L-14",
                        help="open_clip model name or CLIP config JSON (stage 2); 'none': touch-only stage 2 for data "
                             "without vision or text (matching + masked modelling, no CLIP towers)")
    parser.add_argument("--clip-weights", metavar="FILE", help="open_clip checkpoint of --clip-arch (local file)")
    parser.add_argument("--epochs", type=POSITIVE_INT, help="default: 20 (stage 1), 12 (stage 2)")
    parser.add_argument("--max-steps", type=POSITIVE_INT,
                        help="end after this many steps (within the epochs; lr and universal schedules span them)")
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=64, help="per rank (default 64)")
    parser.add_argument("--lr", type=LEARNING_RATE, default=2e-4)
    parser.add_argument("--weight-decay", type=NONNEGATIVE, default=0.1)
    parser.add_argument("--warmup-epochs", type=NONNEGATIVE, default=1.0)
    parser.add_argument("--mask-ratio", type=FRACTION, default=0.75)
    parser.add_argument("--norm-pix-loss", action="store_true", help="per-patch standardised pixel targets")
    parser.add_argument("--decoder-width", type=POSITIVE_INT, default=512)
    parser.add_argument("--decoder-layers", type=POSITIVE_INT, default=8)
    parser.add_argument("--decoder-heads", type=POSITIVE_INT, default=16)
    parser.add_argument("--universal-max", type=PROBABILITY, default=0.75,
                        help="final probability of the universal sensor token (rises linearly from 0)")
    parser.add_argument("--alpha-tv", type=NONNEGATIVE, default=1.0, help="touch-vision weight")
    parser.add_argument("--alpha-tl", type=NONNEGATIVE, default=1.0, help="touch-text weight (2.0 = official code)")
    parser.add_argument("--alpha-vl", type=NONNEGATIVE, default=0.2, help="vision-text weight")
    parser.add_argument("--match-weight", type=NONNEGATIVE, default=0.1, help="cross-sensor matching weight (lambda)")
    parser.add_argument("--hard-negatives", type=PROBABILITY, default=0.0,
                        help="share of matching negatives taken from the same object at another position (the same "
                             "scenario at another time in sim data); default 0 (paper)")
    parser.add_argument("--cross-sensor-nce", type=NONNEGATIVE, default=0.0,
                        help="weight of an optional InfoNCE between matching anchors and positives (not in the "
                             "paper; default 0)")
    parser.add_argument("--no-mae", action="store_true", help="stage 2 without masked modelling")
    parser.add_argument("--lora-r", type=POSITIVE_INT, default=16)
    parser.add_argument("--lora-alpha", type=POSITIVE, default=16.0)
    parser.add_argument("--lora-dropout", type=DROPOUT, default=0.0)
    parser.add_argument("--stride", type=POSITIVE_INT, default=1, help="frame spacing inside a bag clip")
    parser.add_argument("--hop", type=POSITIVE_INT, default=1, help="frames between bag clip starts")
    parser.add_argument("--bag-kinds", default="video,static", help="bag samples to cut: video, static or both")
    parser.add_argument("--no-augment", action="store_true", help="no flips / colour jitter")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--amp", choices=[m.value for m in AmpMode], default="auto", help="mixed precision on cuda")
    parser.add_argument("--workers", type=NONNEGATIVE_INT, default=0, help="data loader worker processes")
    parser.add_argument("--threads", type=POSITIVE_INT, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--save-every", type=NONNEGATIVE_INT, default=200,
                        help="steps between checkpoints (0: epoch ends)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    parser.add_argument("--stop-after", type=POSITIVE_INT, help="stop (checkpointed) after N steps of this invocation")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous run in OUT")
    parser.add_argument("--grad-checkpointing", action="store_true", help="less memory for the large preset")
    parser.add_argument("--clip-grad", type=POSITIVE, help="max gradient norm (default: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace):
    """The PretrainConfig the arguments describe (ConfigError on contradictions)."""
    from anytouch_policy.errors import ConfigError
    from anytouch_policy.pretrain.config import DecoderConfig, LoraConfig, LossWeights, PretrainConfig

    try:
        kinds = tuple(ClipKind(k.strip()) for k in args.bag_kinds.split(",") if k.strip())
    except ValueError:
        raise ConfigError(f"--bag-kinds: expected video, static or video,static, got {args.bag_kinds!r}") from None
    return PretrainConfig(
        stage=Stage(args.stage), out=args.out, data=tuple(args.data), bags=tuple(args.bags), init=args.init,
        preset=args.preset, init_decoder=args.init_decoder, clip_arch=args.clip_arch, clip_weights=args.clip_weights,
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, mask_ratio=args.mask_ratio, norm_pix_loss=args.norm_pix_loss,
        decoder=DecoderConfig(width=args.decoder_width, layers=args.decoder_layers, heads=args.decoder_heads),
        universal_max=args.universal_max,
        weights=LossWeights(touch_vision=args.alpha_tv, touch_text=args.alpha_tl, vision_text=args.alpha_vl,
                            match=args.match_weight, cross_sensor_nce=args.cross_sensor_nce),
        hard_negatives=args.hard_negatives,
        stage2_mae=not args.no_mae, lora=LoraConfig(rank=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout),
        bag_stride=args.stride, bag_hop=args.hop, bag_kinds=kinds, augment=not args.no_augment, seed=args.seed,
        device=args.device, amp=AmpMode(args.amp), workers=args.workers, threads=args.threads,
        save_every=args.save_every,
        resume=args.resume, stop_after=args.stop_after, progress=not args.no_progress, overwrite=args.overwrite,
        grad_checkpointing=args.grad_checkpointing, clip_grad=args.clip_grad)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.pretrain.trainer import run_pretrain

    result = run_pretrain(config_from_args(args))
    if result.main:
        last = result.history[-1] if result.history else {}
        print(json.dumps({"out": str(result.out), "finished": result.finished, "steps": result.steps,
                          "total_steps": result.total_steps,
                          "bundle": None if result.bundle is None else str(result.bundle),
                          "weights_sha256": result.weights_sha256,
                          "last": {k: v for k, v in last.items() if k != "pool"}}))
    return 0
