"""How anything built on the encoder trains (the policy in train/, the encoder in pretrain/): AdamW parameter
groups with one weight-decay rule, and a warm-up + cosine LR schedule stepped per iteration (as the official
util/lr_sched.py)."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

#: Parameters (last name component) that never decay besides <= 1-D tensors: learned embeddings and tokens.
NO_DECAY_NAMES = frozenset({"class_embedding", "positional_embedding", "sensor_tokens", "mask_token", "logit_scale"})


def param_groups(module: nn.Module, *, weight_decay: float, lr: float | None = None) -> list[dict]:
    """[decayed, not decayed] over the trainable parameters, empty groups left out; `lr` set on both when given.

    Decay shrinks weights towards 0, which is right for matrices and wrong for offsets and lookup tables, so
    biases, norm weights, the logit scale (every <= 1-D tensor), nn.Embedding tables and NO_DECAY_NAMES do not decay.
    """
    decay: list[nn.Parameter] = []
    keep: list[nn.Parameter] = []
    for name, p in module.named_parameters():  # each shared parameter once
        if not p.requires_grad:
            continue
        path, _, leaf = name.rpartition(".")
        table = isinstance(module.get_submodule(path), nn.Embedding)
        (keep if table or p.ndim <= 1 or leaf in NO_DECAY_NAMES else decay).append(p)
    extra = {} if lr is None else {"lr": lr}
    groups = [{"params": decay, "weight_decay": weight_decay, **extra}, {"params": keep, "weight_decay": 0.0, **extra}]
    return [g for g in groups if g["params"]]


def build_optimizer(module: nn.Module, *, lr: float, weight_decay: float,
                    betas: tuple[float, float]) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(module, weight_decay=weight_decay), lr=lr, betas=betas)


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, floor: float = 0.0) -> float:
    """LR factor for 0-based `step`: linear (step + 1) / warmup_steps, then half a cosine from 1 down to `floor`
    at total_steps (and `floor` after it)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_schedule(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int,
                   floor: float = 0.0) -> LambdaLR:
    return LambdaLR(optimizer, partial(warmup_cosine, warmup_steps=warmup_steps, total_steps=total_steps,
                                       floor=floor))
