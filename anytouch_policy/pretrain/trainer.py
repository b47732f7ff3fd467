"""The training loop of `anytouch pretrain` (both stages), resumable and runnable under torchrun unchanged.

    manifests / bags -> PretrainDataset -> this rank's batches of the epoch -> DataLoader
      -> per-step generator(seed, step, rank): universal-token draws (p_u rising 0 -> universal_max), tube mask
      -> objective (DDP when launched by torchrun) -> AdamW (+ GradScaler for float16) -> warm-up + cosine
      -> OUT/metrics.jsonl (every step), OUT/checkpoints/last.pt (every save_every steps and epoch end)
      -> at the end: OUT/encoder/ (encoder bundle), OUT/mae_decoder/, OUT/run.json

Only the main rank writes files and shows progress bars.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from anytouch_policy.distributed import DistContext, distributed
from anytouch_policy.errors import ConfigError, TrainingError
from anytouch_policy.model.bundle import SourceInfo, save_encoder_bundle
from anytouch_policy.model.optim import build_optimizer, build_schedule
from anytouch_policy.outputs import OutputKind, check_output_dir, reset_output_dir
from anytouch_policy.pretrain import build
from anytouch_policy.pretrain.checkpoint import (
    TrainingState,
    read_checkpoint,
    restore_model,
    save_checkpoint,
    save_decoder,
    set_rng_state,
)
from anytouch_policy.pretrain.config import AmpMode, PretrainConfig, Stage
from anytouch_policy.pretrain.dataset import DistillBatch, MatchBatch, TouchBatch, collate, generator_for
from anytouch_policy.pretrain.masking import random_tube_mask, replace_with_universal, universal_probability
from anytouch_policy.pretrain.objectives import STAGE1_TERMS, STAGE2_TERMS
from anytouch_policy.pretrain.plot import plot_losses
from anytouch_policy.progress import bar_disabled
from anytouch_policy.schema import dump
from anytouch_policy.threads import set_torch_threads

ENCODER_DIR = "encoder"
DECODER_DIR = "mae_decoder"
CHECKPOINT = Path("checkpoints") / "last.pt"
METRICS = "metrics.jsonl"
RUN_JSON = "run.json"
LOSS_PLOT = "losses.png"
_STEP_STREAM = 7  # separates the per-step generator from the data generators


@dataclass
class PretrainResult:
    """What a run (or this part of a resumed run) did."""

    out: Path
    finished: bool  # False when stopped by stop_after (resume to continue)
    steps: int  # optimizer steps done in the whole run so far
    total_steps: int
    bundle: Path | None = None
    weights_sha256: str | None = None
    history: list[dict] = field(default_factory=list)  # this invocation's metrics rows
    main: bool = True  # False on the other torchrun ranks (they write nothing)


def _amp_dtype(mode: AmpMode, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        if mode in (AmpMode.BF16, AmpMode.FP16):
            raise ConfigError(f"--amp {mode.value} needs a cuda device (CPU runs float32)")
        return None
    if mode is AmpMode.OFF:
        return None
    if mode is AmpMode.BF16 or (mode is AmpMode.AUTO and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


#: A pretrain output folder, for the output-folder rule (anytouch_policy.outputs): metrics.jsonl is written at the
#: first step, so a run killed at any point is recognised.
PRETRAIN_RUN = OutputKind("pretrain run", markers=(METRICS,),
                          contents=(CHECKPOINT.parts[0], ENCODER_DIR, DECODER_DIR, METRICS, RUN_JSON, LOSS_PLOT),
                          hint="pass --resume to continue it or --overwrite to start again")


def _check_out(config: PretrainConfig) -> None:
    out = config.out_dir
    if config.resume:
        if not (out / CHECKPOINT).is_file():
            raise ConfigError(f"--resume: no checkpoint at {out / CHECKPOINT}")
        return
    check_output_dir(out, PRETRAIN_RUN, overwrite=config.overwrite)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class _Run:
    """One invocation: built once, then `train()`."""

    def __init__(self, config: PretrainConfig, ctx: DistContext) -> None:
        self.config, self.ctx = config, ctx
        self.out = config.out_dir
        set_torch_threads(config.threads)
        if ctx.is_main:
            _check_out(config)
        ctx.barrier()
        _seed_everything(config.seed)
        self.towers = build.build_towers(config)
        self.encoder, self.init = build.build_encoder(config, self.towers)
        self.dataset = build.build_dataset(config, self.encoder.config, self.towers)
        self.decoder = build.build_decoder(config, self.encoder.config)
        self.objective = build.build_objective(config, self.encoder, self.towers, self.decoder).to(ctx.device)
        self.model = ctx.wrap(self.objective, find_unused_parameters=True)
        self.terms = STAGE1_TERMS if config.stage is Stage.MASKED else STAGE2_TERMS
        self.steps_per_epoch = self.dataset.steps_per_epoch(ctx.world_size)
        if self.steps_per_epoch < 1:
            raise ConfigError(f"the data give no batch per rank (world size {ctx.world_size})")
        self.total_steps = self.steps_per_epoch * config.total_epochs
        if config.max_steps is not None:  # the schedules span the shortened run
            self.total_steps = min(self.total_steps, config.max_steps)
        self.optimizer = build_optimizer(self.objective, lr=config.lr, weight_decay=config.weight_decay,
                                         betas=config.betas)
        warmup = round(config.warmup_epochs * self.steps_per_epoch)
        self.scheduler = build_schedule(self.optimizer, warmup_steps=warmup, total_steps=self.total_steps)
        self.amp = _amp_dtype(config.amp, ctx.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp is torch.float16)
        self.epoch, self.step, self.epoch_step = 0, 0, 0
        if config.resume:
            self._resume()

    # ---- state -------------------------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.out / CHECKPOINT
        saved = read_checkpoint(path)
        differ = self.config.trajectory_differences(saved["config"])
        if differ:
            raise ConfigError(f"--resume: {path} was written by a run with different settings: {differ}")
        if saved["world_size"] != self.ctx.world_size:
            raise ConfigError(f"--resume: {path} was written by {saved['world_size']} rank(s), this run has "
                              f"{self.ctx.world_size}; the batch plan would differ")
        restore_model(self.objective, saved["model"], where=path)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        self.epoch, self.step, self.epoch_step = saved["epoch"], saved["step"], saved["epoch_step"]
        set_rng_state(saved["rng"])
        if self.ctx.is_main and (self.out / METRICS).is_file():  # drop rows logged after that checkpoint
            rows = (self.out / METRICS).read_text().splitlines()
            kept = [r for r in rows if json.loads(r)["step"] <= self.step]
            (self.out / METRICS).write_text("".join(r + "\n" for r in kept))

    def _save(self) -> None:
        if self.ctx.is_main:
            save_checkpoint(self.out / CHECKPOINT, model=self.objective, optimizer=self.optimizer,
                            scheduler=self.scheduler, scaler=self.scaler,
                            state=TrainingState(self.epoch, self.step, self.epoch_step, self.ctx.world_size,
                                                dump(self.config)))
        self.ctx.barrier()

    # ---- one step ----------------------------------------------------------------------------------------
    def _prepare(self, batch: TouchBatch | MatchBatch | DistillBatch):
        """Universal-token draws and the tube mask from this step's generator; everything onto the device."""
        gen = generator_for(self.config.seed, self.step, self.ctx.rank, _STEP_STREAM)
        p_u = universal_probability(self.step, self.total_steps, self.config.universal_max)
        mask = None
        if isinstance(batch, DistillBatch):  # the reference keeps its own slot: that is the target
            batch.sensor = replace_with_universal(batch.sensor, p_u, generator=gen)
        elif isinstance(batch, MatchBatch):
            batch.anchor_sensor = replace_with_universal(batch.anchor_sensor, p_u, generator=gen)
            batch.positive_sensor = replace_with_universal(batch.positive_sensor, p_u, generator=gen)
            batch.negative_sensor = replace_with_universal(batch.negative_sensor, p_u, generator=gen)
        else:
            batch.sensor = replace_with_universal(batch.sensor, p_u, generator=gen)
            if self.decoder is not None:
                mask = random_tube_mask(batch.frames.shape[0], self.encoder.config.num_patches,
                                        self.config.mask_ratio, generator=gen).to(self.ctx.device)
        batch = _to_device(batch, self.ctx.device)
        return batch, mask, p_u

    def _train_step(self, batch: TouchBatch | MatchBatch | DistillBatch) -> dict[str, float]:
        batch, mask, p_u = self._prepare(batch)
        lr = self.optimizer.param_groups[0]["lr"]
        autocast = (torch.autocast("cuda", dtype=self.amp) if self.amp is not None else contextlib.nullcontext())
        with autocast:
            out = self.model(batch, mask)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out["loss"]).backward()
        if self.config.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.objective.after_step()
        return self._reduce(out) | {"lr": lr, "p_universal": p_u}

    def _reduce(self, out: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean of each term over the ranks whose batch produced it (ranks may hold different batch kinds)."""
        values = torch.zeros(2, len(self.terms), dtype=torch.float64)
        for i, name in enumerate(self.terms):
            if name in out:
                values[0, i], values[1, i] = float(out[name].detach()), 1.0
        values = self.ctx.all_reduce_sum(values.to(self.ctx.device)).cpu()
        return {name: float(values[0, i] / values[1, i]) for i, name in enumerate(self.terms) if values[1, i] > 0}

    # ---- loop --------------------------------------------------------------------------------------------
    def train(self) -> PretrainResult:
        config, ctx = self.config, self.ctx
        if ctx.is_main and not config.resume:  # the old run (checked at start) goes only now that all is built
            reset_output_dir(self.out, PRETRAIN_RUN, overwrite=config.overwrite)
        history: list[dict] = []
        started, done_here = time.monotonic(), 0
        while self.epoch < config.total_epochs and self.step < self.total_steps:
            plan = self.dataset.epoch_plan(self.epoch, rank=ctx.rank, world_size=ctx.world_size)[self.epoch_step:]
            loader = DataLoader(self.dataset, batch_sampler=plan, collate_fn=collate, num_workers=config.workers,
                                generator=generator_for(config.seed, self.epoch, -2, -2))  # not the global RNG
            epoch_total = min(self.steps_per_epoch, self.total_steps - (self.step - self.epoch_step))
            bar = tqdm(total=epoch_total, initial=self.epoch_step, leave=False, dynamic_ncols=True,
                       desc=f"stage {int(config.stage)} epoch {self.epoch + 1}/{config.total_epochs}",
                       disable=bar_disabled(config.progress and ctx.is_main))
            for keys, batch in zip(plan, loader, strict=True):
                pool = self.dataset.pools[keys[0][0]].name
                row: dict[str, Any] = {"step": self.step + 1, "epoch": self.epoch, **self._train_step(batch)}
                if not math.isfinite(row["loss"]):  # averaged over the ranks: every rank stops here
                    raise TrainingError(f"the pretraining loss is not finite ({row['loss']}) at step {row['step']} "
                                        f"(lr {row['lr']:g}); stopped before writing it. The last checkpoint, if "
                                        f"any, is {self.out / CHECKPOINT}")
                self.step += 1
                self.epoch_step += 1
                done_here += 1
                row["pool"] = pool
                history.append(row)
                if ctx.is_main:
                    with (self.out / METRICS).open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                bar.set_postfix(loss=f"{row['loss']:.4f}")
                bar.update(1)
                stop = config.stop_after is not None and done_here >= config.stop_after
                if stop or (config.save_every and self.step % config.save_every == 0):
                    self._save()
                if stop and self.step < self.total_steps:
                    bar.close()
                    return PretrainResult(self.out, False, self.step, self.total_steps, history=history,
                                          main=ctx.is_main)
                if self.step >= self.total_steps:  # max_steps reached inside the epoch
                    break
            bar.close()
            if self.epoch_step >= self.steps_per_epoch:
                self.epoch, self.epoch_step = self.epoch + 1, 0
            self._save()
            self._plot()
        bundle, sha = self._finish(time.monotonic() - started)
        return PretrainResult(self.out, True, self.step, self.total_steps, bundle, sha, history, ctx.is_main)

    def _plot(self) -> None:
        """OUT/losses.png, redrawn at every epoch end."""
        if self.ctx.is_main:
            plot_losses(self.out / METRICS, self.out / LOSS_PLOT,
                        title=f"stage {int(self.config.stage)}: {self.out.name}")

    def _finish(self, seconds: float) -> tuple[Path | None, str | None]:
        if not self.ctx.is_main:
            self.ctx.barrier()
            return None, None
        config = self.config
        slots = build.trained_slots(self.init, self.dataset, config.universal_max)
        source = SourceInfo(path=self.init.path, sha256=self.init.sha256,
                            format=f"anytouch-pretrain-stage{int(config.stage)}")
        bundle = self.out / ENCODER_DIR
        sha = save_encoder_bundle(bundle, self.encoder, source=source, trained_slots=slots, overwrite=True)
        if self.decoder is not None:
            save_decoder(self.out / DECODER_DIR, self.decoder, overwrite=True)
        init = {"path": self.init.path, "sha256": self.init.sha256, "trained_slots": list(self.init.trained_slots)}
        summary = {"config": dump(config), "init": init,
                   "bundle": {"path": str(bundle), "weights_sha256": sha, "trained_slots": list(slots)},
                   "steps": self.step, "steps_per_epoch": self.steps_per_epoch, "world_size": self.ctx.world_size,
                   "device": str(self.ctx.device), "amp": None if self.amp is None else str(self.amp),
                   "samples": len(self.dataset), "pools": {p.name: len(p.members) for p in self.dataset.pools},
                   "bags": build.bag_summary(self.dataset.bags), "seconds_this_invocation": round(seconds, 1),
                   "torch": torch.__version__}
        (self.out / RUN_JSON).write_text(json.dumps(summary, indent=2) + "\n")
        self.ctx.barrier()
        return bundle, sha


def _to_device(batch: TouchBatch | MatchBatch | DistillBatch,
               device: torch.device) -> TouchBatch | MatchBatch | DistillBatch:
    if device.type == "cpu":
        return batch
    for name, value in vars(batch).items():
        if isinstance(value, torch.Tensor):
            setattr(batch, name, value.to(device, non_blocking=True))
    return batch


def run_pretrain(config: PretrainConfig) -> PretrainResult:
    """Train one stage as configured (torchrun-aware); the main rank's result carries the bundle path."""
    with distributed(config.device) as ctx:
        return _Run(config, ctx).train()
