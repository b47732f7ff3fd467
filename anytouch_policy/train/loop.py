"""The epoch loop shared by both modes: weighted cross-entropy (+ the "remaining" regression when the head has that
output), AdamW, warm-up + cosine schedule, validation with accuracy / per-class recall / confusion matrix (and the
remaining grams' RMSE) every epoch, and the state of the best epoch."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from anytouch_policy.actions import Action
from anytouch_policy.distributed import DistContext
from anytouch_policy.errors import TrainingError
from anytouch_policy.model.optim import build_schedule
from anytouch_policy.policy.config import REMAINING_SCALE_G
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.progress import bar_disabled
from anytouch_policy.train.config import TrainConfig
from anytouch_policy.train.data import Prepared, class_weights, relabel, training_class_counts
from anytouch_policy.train.metrics import EpochMetrics, History, confusion
from anytouch_policy.train.trainers import Trainer

#: The policy's learning rate ends at 5 % of its peak, not 0: the last epochs still move the head, which
#: `--select last` (the end of the schedule) relies on. Pretraining follows the official schedule down to 0.
LR_FLOOR = 0.05


def fit(trainer: Trainer, data: Prepared, config: TrainConfig, ctx: DistContext,
         log: Callable[[str], None]) -> tuple[History, dict]:
    """The epoch loop; returns the history and the state dict of the best epoch."""
    train_samples = data.samples_of(data.train_episodes)
    val_samples = data.samples_of(data.val_episodes)
    counts = training_class_counts(data, config.seed)
    weights = torch.from_numpy(class_weights(counts) if config.class_weights else
                               np.ones(len(Action), np.float32)).to(ctx.device)
    loss_fn = nn.CrossEntropyLoss(weight=weights, reduction="none")
    # Undo the weights' shift of the logits at decision time; a class absent from training keeps 0.
    trainer.net.head.logit_adjust.copy_(torch.where(weights > 0, -torch.log(weights.clamp(min=1e-12)), 0.0))
    trainer.model = ctx.wrap(trainer.net)
    optimizer = torch.optim.AdamW(trainer.param_groups())
    rng = np.random.default_rng(config.seed)  # the batch list: the same on every rank
    relabel_rng = np.random.default_rng([config.seed, 2, ctx.rank])
    epochs = config.total_epochs
    per_epoch = len(ctx.shard(trainer.batches(train_samples, np.random.default_rng(config.seed))))
    steps = epochs * per_epoch
    scheduler = build_schedule(optimizer, warmup_steps=max(1, int(steps * config.warmup_fraction)), total_steps=steps,
                               floor=LR_FLOOR)
    history = History(select=config.select)
    best_state: dict = {}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        trainer.net.train()
        batches = trainer.batches(train_samples, rng)
        usable = len(batches) // ctx.world_size * ctx.world_size  # every rank takes the same number of steps
        mine = ctx.shard(batches[:usable])
        total = torch.zeros(2, dtype=torch.float64, device=ctx.device)
        bar = tqdm(mine, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                   disable=bar_disabled(config.progress and ctx.is_main))
        for step, idx in enumerate(bar, start=1):
            cond, y_np, remaining = relabel(data, idx, relabel_rng)
            out = trainer.forward(idx, train=True, cond=cond)
            y = torch.from_numpy(y_np).to(ctx.device)
            per = loss_fn(PolicyHead.logits(out), y)
            loss = per.sum() / weights[y].sum()
            if config.remaining_weight:
                loss = loss + config.remaining_weight * _remaining_loss(out, torch.from_numpy(remaining).to(ctx.device))
            _stop_if_not_finite(loss, ctx, epoch=epoch, step=step, lr=[float(v) for v in scheduler.get_last_lr()])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += torch.stack([(per.detach()).sum().double(), weights[y].sum().double()])
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        total = ctx.all_reduce_sum(total)
        val_loss, matrix, remaining_rmse = _validate(trainer, val_samples, data, loss_fn, weights, config, ctx)
        if not math.isfinite(val_loss):
            raise TrainingError(f"the validation loss is not finite ({val_loss}) at epoch {epoch}; nothing was saved")
        metrics = EpochMetrics(epoch=epoch, train_loss=float(total[0] / total[1].clamp(min=1e-9)),
                               val_loss=val_loss, confusion=matrix, seconds=time.perf_counter() - start,
                               lr=float(scheduler.get_last_lr()[0]), val_remaining_rmse_g=remaining_rmse)
        history.epochs.append(metrics)
        log(metrics.report())
        if history.best() is metrics:
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in trainer.net.state_dict().items()})
    return history, best_state


def _stop_if_not_finite(loss: torch.Tensor, ctx: DistContext, *, epoch: int, step: int, lr: list[float]) -> None:
    """TrainingError when the loss of any rank is NaN or inf: every later step would only spread it into the
    weights. The flag is summed over ranks, so every rank stops at the same step."""
    bad = ctx.all_reduce_sum((~torch.isfinite(loss.detach())).to(torch.float32).reshape(1))
    if bool(bad.item()):
        raise TrainingError(f"the training loss is not finite at epoch {epoch}, step {step} (this rank: "
                            f"{float(loss.detach())}; learning rates {', '.join(f'{v:g}' for v in lr)}); nothing "
                            f"was saved. Look for NaN/inf in the inputs, or lower --lr / --encoder-lr")


def _remaining_loss(out: torch.Tensor, remaining_g: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the head's "remaining" output over the samples whose grams still to pour are known, in
    units of REMAINING_SCALE_G; 0 (still on the graph, as DDP wants every output used) when none is known."""
    known = torch.isfinite(remaining_g)
    error = out[:, -1] - torch.nan_to_num(remaining_g) / REMAINING_SCALE_G
    return (error.square() * known).sum() / known.sum().clamp(min=1)


def _validate(trainer: Trainer, samples: np.ndarray, data: Prepared, loss_fn: nn.Module, weights: torch.Tensor,
              config: TrainConfig, ctx: DistContext) -> tuple[float, np.ndarray, float | None]:
    """Validation loss (the class-weighted cross-entropy alone, whatever the remaining weight: comparable across
    runs), confusion matrix, and the RMSE in grams of the remaining estimate (None without that output)."""
    trainer.net.eval()
    head = trainer.net.head
    mine = ctx.shard(list(range(0, len(samples), config.batch_size)))
    sums = torch.zeros(4, dtype=torch.float64, device=ctx.device)  # loss, weight, remaining sq. error, its count
    matrix = np.zeros((len(Action), len(Action)), np.int64)
    with torch.no_grad():
        for start in mine:
            idx = samples[start:start + config.batch_size]
            out = trainer.forward(idx, train=False)
            y = torch.from_numpy(data.labels[idx]).to(ctx.device)
            sums[:2] += torch.stack([loss_fn(head.logits(out), y).sum().double(), weights[y].sum().double()])
            estimate = head.remaining_g(out)
            if estimate is not None:
                truth = torch.from_numpy(data.remaining_g[idx]).to(ctx.device)
                known = torch.isfinite(truth)
                sums[2:] += torch.stack([(estimate - truth)[known].double().square().sum(), known.sum().double()])
            matrix += confusion(y.cpu().numpy(), head.decision_logits(out).argmax(1).cpu().numpy())
    sums = ctx.all_reduce_sum(sums)
    matrix = ctx.all_reduce_sum(torch.from_numpy(matrix).to(ctx.device)).cpu().numpy()
    rmse = float(torch.sqrt(sums[2] / sums[3])) if head.config.remaining and sums[3] > 0 else None
    return float(sums[0] / sums[1].clamp(min=1e-9)), matrix, rmse
