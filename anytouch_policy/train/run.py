"""Imitation learning from episode bags: `train(TrainConfig(...))` -> a policy bundle.

    bags ─ prepare() ─> ticks (5 Hz, windows per sensor, episode reference), split by episode
      frozen:   windows ─ EncoderRuntime (the run-time inference code) ─ embedding cache on disk ─> head trains
      finetune: frames decoded + resized once ─ per-episode augmentation ─ encoder + head train together
                (last:N: the frozen blocks run once per augmentation draw, their output kept in memory)
    every epoch: validation accuracy, per-class recall, confusion matrix; the best epoch (validation loss)
    becomes the policy bundle, with training_curves.png and training_log.json beside config.json.

Under torchrun every rank runs this same function: batches are sharded over ranks, metrics summed over them, and
only rank 0 prints and writes (anytouch_policy.distributed).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from anytouch_policy.actions import Action
from anytouch_policy.data.memo import BagMemo
from anytouch_policy.distributed import DistContext, distributed
from anytouch_policy.model.bundle import EncoderBundle, load_encoder_bundle, read_bundle_config, save_encoder_bundle
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.model.runtime import EncoderRuntime
from anytouch_policy.outputs import check_output_dir
from anytouch_policy.policy.bundle import save_policy_bundle
from anytouch_policy.policy.config import (
    CURVES_FILE,
    LOG_FILE,
    POLICY_BUNDLE,
    HeadConfig,
    PolicySensor,
    PolicySpec,
    ReferenceMode,
)
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.schema import dump
from anytouch_policy.threads import set_torch_threads
from anytouch_policy.train.cache import CacheStats, EmbeddingCache, check_cache_dir, default_cache_dir, embed_ticks
from anytouch_policy.train.config import LabelMode, TrainConfig, TrainMode
from anytouch_policy.train.data import Prepared, prepare, require_remaining, training_class_counts
from anytouch_policy.train.loop import fit
from anytouch_policy.train.metrics import EpochMetrics, History, plot_curves
from anytouch_policy.train.nets import FinetuneNet
from anytouch_policy.train.trainers import CachedPrefixTrainer, FrozenTrainer, Trainer, finetune_trainer


@dataclass
class TrainResult:
    bundle: Path
    history: History
    best: EpochMetrics
    summary: dict
    cache: CacheStats | None
    seconds: float
    state: dict  # state_dict of the best epoch (head.* and, fine-tuned, encoder.*), on the CPU


def init_encoder_bundle(preset: str, path: Path, *, seed: int) -> Path:
    """A randomly initialised encoder of `preset` (torch seeded with `seed`, so reproducible) saved as a bundle."""
    torch.manual_seed(seed)
    save_encoder_bundle(path, AnyTouchEncoder.from_preset(preset), overwrite=True)
    return path


def check_outputs_and_sources(config: TrainConfig) -> None:
    """What can be checked before any work: the output folder (an existing one is refused now, not after training)
    and the encoder bundle's config.json."""
    check_output_dir(config.out, POLICY_BUNDLE, overwrite=config.overwrite)
    if config.encoder is not None:
        read_bundle_config(config.encoder)
    if config.mode is TrainMode.FROZEN and config.use_cache:
        check_cache_dir(config.cache_dir or default_cache_dir(), what="--cache-dir")


def train(config: TrainConfig, *, log: Callable[[str], None] = print, memo: BagMemo | None = None) -> TrainResult:
    """Train a policy from bags and write its bundle to config.out (rank 0); every rank returns the result.
    Several runs on the same bags share one `memo` to read each bag and decode each frame once."""
    check_outputs_and_sources(config)
    set_torch_threads(config.threads)
    with distributed(config.device) as ctx:
        return _train(config, ctx, log if ctx.is_main else (lambda _text: None), memo)


def _train(config: TrainConfig, ctx: DistContext, log: Callable[[str], None], memo: BagMemo | None) -> TrainResult:
    start = time.perf_counter()
    data = prepare(config, log=log, memo=memo)
    if config.remaining_weight:
        require_remaining(data)
    names = [n for n, _ in data.sensors]
    log(f"{len(data.ticks)} episodes ({len(data.train_episodes)} train, {len(data.val_episodes)} validation), "
        f"sensors {names}, {len(data.labels)} ticks (train class counts "
        f"{dict(zip([a.label for a in Action], training_class_counts(data, config.seed).tolist(), strict=True))}, "
        f"{data.label_mode.value} labels), "
        f"{data.dropped_ticks} early ticks without a full window dropped")
    with tempfile.TemporaryDirectory(prefix="anytouch-train-") as tmp:
        if config.encoder is not None:
            encoder_dir = Path(config.encoder)
            source = str(encoder_dir)
        else:
            assert config.preset is not None  # TrainConfig: encoder or preset
            encoder_dir = init_encoder_bundle(config.preset, Path(tmp) / "init-encoder", seed=config.seed)
            source = f"preset:{config.preset} (random init, seed {config.seed})"
        bundle: EncoderBundle = load_encoder_bundle(encoder_dir)
        torch.manual_seed(config.seed)
        head = PolicyHead(HeadConfig(sensors=len(names), embed_dim=bundle.config.output_dim,
                                     reference=config.reference is not ReferenceMode.NONE,
                                     conditioning=len(config.conditioning), hidden=config.hidden,
                                     layers=config.layers, dropout=config.dropout,
                                     remaining=config.remaining_weight > 0))
        cache = None
        if config.mode is TrainMode.FROZEN:
            runtime = EncoderRuntime(bundle.encoder, device=ctx.device, precision=config.precision,
                                     token_mode=config.token_mode, trained_slots=bundle.trained_slots,
                                     fingerprint=bundle.fingerprint)
            cache = EmbeddingCache(config.cache_dir or default_cache_dir()) if config.use_cache else None
            embeddings = None
            for turn in ("main", "others"):  # the main rank fills the cache, the others then read it
                if (turn == "main") == ctx.is_main:
                    embeddings = embed_ticks(data.ticks, sensors=data.sensors, runtime=runtime, cache=cache,
                                             progress=config.progress and ctx.is_main, memo=memo)
                ctx.barrier()
            if cache is not None:
                log(f"embedding cache {cache.root}: {cache.stats.hits} hits, {cache.stats.misses} misses, "
                    f"{cache.stats.windows_encoded} windows encoded")
            assert embeddings is not None  # every rank took one turn
            trainer: Trainer = FrozenTrainer(config, data, head, embeddings, ctx.device)
        else:
            slots = [int(EncoderRuntime(bundle.encoder, device="cpu", token_mode=config.token_mode,
                                        trained_slots=bundle.trained_slots).slot_for(kind))
                     for _, kind in data.sensors]
            trainer = finetune_trainer(config, data, head, bundle.encoder, slots, ctx.device, ctx.rank, memo)
            if isinstance(trainer, CachedPrefixTrainer):
                views = trainer.states.shape[0]
                log(f"finetune {config.finetune}: blocks 0-{trainer.start - 1} ran once ({views} "
                    f"view{'s' if views > 1 else ''}), their output kept in memory "
                    f"({trainer.state_bytes / 2**20:.0f} MiB)")
        history, best_state = fit(trainer, data, config, ctx, log)
        trainer.net.load_state_dict(best_state)
        best = history.best()
        summary = _summary(config, data, history, ctx, cache, source, time.perf_counter() - start)
        if ctx.is_main:
            _write_bundle(config, data, trainer, bundle, summary, history, Path(tmp), source)
        ctx.barrier()
    log(f"best epoch {best.epoch}: val acc {best.accuracy:.3f}, balanced {best.balanced_accuracy:.3f}; "
        f"policy bundle {config.out} ({time.perf_counter() - start:.0f} s)")
    return TrainResult(bundle=Path(config.out), history=history, best=best, summary=summary,
                       cache=None if cache is None else cache.stats, seconds=time.perf_counter() - start,
                       state=best_state)


def _summary(config: TrainConfig, data: Prepared, history: History, ctx: DistContext, cache: EmbeddingCache | None,
             source: str, seconds: float) -> dict:
    best = history.best()
    names = [t.episode.path.name for t in data.ticks]
    return {
        "episodes": {"train": [names[i] for i in data.train_episodes], "val": [names[i] for i in data.val_episodes]},
        "samples": {"train": int(len(data.samples_of(data.train_episodes))),
                    "val": int(len(data.samples_of(data.val_episodes)))},
        "train_class_counts": dict(zip([a.label for a in Action],
                                       training_class_counts(data, config.seed).tolist(), strict=True)),
        "pairs_g": data.pairs(data.train_episodes),
        "labels": data.label_mode.value,
        "skipped": [{"bag": b, "reason": r} for b, r in data.skipped],
        "dropped_ticks": data.dropped_ticks,
        "epochs": config.total_epochs,
        "best_epoch": best.epoch,
        "val": {"accuracy": best.accuracy, "balanced_accuracy": best.balanced_accuracy, "recall": best.recall,
                "confusion": best.confusion.tolist(), "loss": best.val_loss},
        "seed": config.seed,
        "world_size": ctx.world_size,
        "encoder_source": source,
        "cache": None if cache is None else {"hits": cache.stats.hits, "misses": cache.stats.misses},
        "seconds": round(seconds, 1),
        "hyper": {"batch_size": config.batch_size, "lr": config.lr, "encoder_lr": config.encoder_lr,
                  "weight_decay": config.weight_decay, "class_weights": config.class_weights,
                  "remaining_weight": config.remaining_weight, "amp": config.amp,
                  "augment": None if config.augment is None else dump(config.augment)},
    }


def _write_bundle(config: TrainConfig, data: Prepared, trainer: Trainer, bundle: EncoderBundle, summary: dict,
                  history: History, tmp: Path, source: str) -> None:
    encoder_dir = bundle.path
    if isinstance(trainer.net, FinetuneNet):  # --mode finetune
        encoder_dir = tmp / "finetuned-encoder"
        save_encoder_bundle(encoder_dir, trainer.net.encoder, source=bundle.source,
                            trained_slots=bundle.trained_slots, overwrite=True)
    variant = {"mode": config.mode.value, "finetune": config.finetune if config.mode is TrainMode.FINETUNE else None,
               "dynamic": config.frames > 1, "frames": config.frames, "stride": config.stride,
               "token_mode": config.token_mode.value, "reference": config.reference.value,
               "encoder_source": source}
    cfg = PolicySpec(sensors=tuple(PolicySensor(n, k) for n, k in data.sensors), frames=config.frames,
                     stride=config.stride, token_mode=config.token_mode, conditioning=config.conditioning,
                     reference=config.reference, retract_latch=data.label_mode is LabelMode.HINDSIGHT,
                     head=trainer.net.head.config, variant=variant, training=summary)
    title = f"{config.mode.value} {'dynamic' if config.frames > 1 else 'static'} ({Path(config.out).name})"

    def add_files(folder: Path) -> None:
        plot_curves(history, folder / CURVES_FILE, title=title)
        (folder / LOG_FILE).write_text(json.dumps({"history": history.to_list(), "summary": summary}, indent=2) + "\n")

    save_policy_bundle(config.out, config=cfg, head=trainer.net.head, encoder_bundle=encoder_dir,
                       overwrite=config.overwrite, add_files=add_files)
