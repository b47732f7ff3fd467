"""anytouch pretrain --stage 1 --bags episodes/ --init models/anytouch-large --out runs/adapt --epochs 5

Train AnyTouch's objectives (docs/pretrain.md): stage 1 masked modelling on recorded bags and/or manifests,
stage 2 touch-vision-text alignment + cross-sensor matching on aligned manifests, e.g.

    anytouch pretrain --stage 2 --data tacquad/ --init runs/s1/encoder --init-decoder runs/s1/mae_decoder \\
        --clip-weights open_clip_model.safetensors --out runs/s2

Writes OUT/encoder/ (an encoder bundle for the encoder node and `anytouch train`), OUT/mae_decoder/,
OUT/checkpoints/last.pt (--resume continues from it), OUT/metrics.jsonl and OUT/run.json; prints a JSON summary.
Multi-GPU: torchrun --standalone --nproc_per_node 4 -m anytouch_policy.cli.main pretrain ... (no other change).
Flags, defaults and ranges are PretrainConfig's (anytouch_policy.pretrain.config).
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.pretrain.config import PretrainConfig

FLAGS = Flags(
    PretrainConfig,
    "stage", Flag("data", metavar="MANIFEST"), Flag("bags", metavar="DIR"), Flag("init", metavar="BUNDLE"),
    Flag("preset", metavar="NAME"), Flag("init_decoder", metavar="DIR"), "out", "clip_arch",
    Flag("clip_weights", metavar="FILE"), "epochs", "max_steps", "batch_size", "lr", "weight_decay", "warmup_epochs",
    "mask_ratio",
    "norm_pix_loss", "decoder.width", "decoder.layers", "decoder.heads", "universal_max",
    Flag("weights.touch_vision", "--alpha-tv"), Flag("weights.touch_text", "--alpha-tl"),
    Flag("weights.vision_text", "--alpha-vl"), Flag("weights.match", "--match-weight"),
    "hard_negatives", Flag("weights.cross_sensor_nce", "--cross-sensor-nce"),
    Flag("weights.reference_distill", "--reference-distill"), Flag("weights.reference_change", "--reference-change"),
    Flag("reference_sensor", metavar="SENSOR"),
    Flag("stage2_mae", "--no-mae", help="stage 2 without masked modelling"), Flag("lora.rank", "--lora-r"),
    "lora.alpha", "lora.dropout", Flag("bag_stride", "--stride"), Flag("bag_hop", "--hop"), Flag("bag_kinds", sep=","),
    Flag("augment", help="no flips / colour jitter"), "seed", "device", "amp", "workers", "threads", "save_every",
    "resume", "stop_after", "overwrite", "grad_checkpointing", "clip_grad", Flag("progress", help="no progress bars"),
    one_of=[("init", "preset")],
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    FLAGS.add_to(parser)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.pretrain.trainer import run_pretrain

    result = run_pretrain(FLAGS.build(args))
    if result.main:
        last = result.history[-1] if result.history else {}
        print(json.dumps({"out": str(result.out), "finished": result.finished, "steps": result.steps,
                          "total_steps": result.total_steps,
                          "bundle": None if result.bundle is None else str(result.bundle),
                          "weights_sha256": result.weights_sha256,
                          "last": {k: v for k, v in last.items() if k != "pool"}}))
    return 0
