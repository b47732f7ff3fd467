"""AdamW with no-decay groups, and the warm-up + cosine schedule stepped per iteration (official util/lr_sched.py)."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

#: Parameter names (last component) that never decay besides biases and norms: embeddings and learned tokens.
NO_DECAY_NAMES = frozenset({"class_embedding", "positional_embedding", "sensor_tokens", "mask_token", "logit_scale"})


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """[decayed, not decayed] over the trainable parameters: biases, norm weights (every <= 1-D tensor),
    embeddings and tokens are not decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        leaf = name.rpartition(".")[2]
        (no_decay if p.ndim <= 1 or leaf in NO_DECAY_NAMES else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, *, lr: float, weight_decay: float,
                    betas: tuple[float, float]) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas)


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """LR factor for 0-based step: linear (step + 1) / warmup, then half a cosine from 1 to 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))


def build_schedule(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, partial(warmup_cosine, warmup_steps=warmup_steps, total_steps=total_steps))
