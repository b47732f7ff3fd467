"""anytouch bench train --preset anytouch-small --threads 2

Training speed on recorded expert episodes (recorded into a temporary folder unless --bags is given):
- frozen mode: one head epoch on cached embeddings vs the same epoch re-encoding every window (the encoder forward
  the cache saves; frames are decoded and resized beforehand, which favours the no-cache side), ratio from one run;
  plus the one-off cost of filling the cache, and what the second pass took from it (no window encoded again);
- finetune mode: training steps/s and samples/s of encoder + head with augmentation (forward, backward, AdamW step),
  optionally in bfloat16 autocast (--amp), and the peak memory (CUDA: allocated by torch; CPU: the process's RSS);
  `--finetune last:N --no-augment` times what `anytouch train` runs for it: steps on the stored output of the
  frozen blocks, whose one-off run is in `setup_s`.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import torch
from pydantic import Field

from anytouch_policy.bounds import AT_LEAST_1
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.data.frames import load_frame_table
from anytouch_policy.schema import config

Count = Annotated[int, AT_LEAST_1]

if TYPE_CHECKING:  # the modules themselves load when a bench runs, not when `anytouch` builds its parser
    from anytouch_policy.model.bundle import EncoderBundle
    from anytouch_policy.model.runtime import EncoderRuntime
    from anytouch_policy.policy.head import PolicyHead
    from anytouch_policy.train.config import TrainConfig
    from anytouch_policy.train.data import Prepared
    from anytouch_policy.train.trainers import FinetuneTrainer


@config
class TrainBench:
    """What `anytouch bench train` measures."""

    preset: str = Field(default="anytouch-small", description="encoder preset (random init)")
    threads: Count = Field(default=2, description="CPU threads (torch)")
    episodes: Count = Field(default=4, description="expert episodes to record when no --bags")
    bags: Path | None = Field(default=None, description="use these episodes instead of recording")
    batch_size: Count = 32
    finetune_steps: Count = Field(default=6, description="timed finetune steps (after one warm-up)")
    finetune: str = Field(default="all", description="finetune mode (all or last:N)")
    device: str = Field(default="cpu", description="cpu | cuda")
    amp: bool = Field(default=False, description="fine-tune in bfloat16 autocast (as `anytouch train --amp`)")
    augment: bool = Field(default=True, description="fine-tune with colour jitter (without it, last:N runs its frozen "
                                                    "blocks once, as `anytouch train --no-augment`)")
    frozen: bool = Field(default=True, description="time the frozen head epochs (cached vs re-encoded) too")


FLAGS = Flags(TrainBench, "preset", "threads", "episodes", Flag("bags", metavar="DIR"), "batch_size",
              "finetune_steps", Flag("finetune", metavar="all|last:N"), "device", "amp",
              Flag("augment", help="fine-tune without colour jitter"),
              Flag("frozen", help="time fine-tuning only (a large preset's cache fill and re-encoding take long on a "
                                  "CPU)"))


def train_steps(trainer, batches: list[np.ndarray], labels: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    loss_fn = torch.nn.CrossEntropyLoss()
    for idx in batches:
        logits = trainer.forward(idx, train=True)
        loss = loss_fn(logits, labels[torch.from_numpy(idx)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@dataclass
class BenchData:
    """What both train benches time on: episodes prepared for training, a random-init encoder and its runtime."""

    config: TrainConfig
    data: Prepared
    bundle: EncoderBundle
    runtime: EncoderRuntime
    labels: torch.Tensor
    samples: np.ndarray  # every tick of every episode: one epoch

    def head(self) -> PolicyHead:
        from anytouch_policy.policy.config import HeadConfig
        from anytouch_policy.policy.head import PolicyHead

        return PolicyHead(HeadConfig(sensors=len(self.data.sensors), embed_dim=self.bundle.config.output_dim,
                                     reference=True, conditioning=len(self.config.conditioning)))

    def finetune(self, tmp: Path, *, finetune: str = "all", batch_size: int = 32, device: torch.device | None = None,
                 amp: bool = False, augment: bool = True) -> tuple[FinetuneTrainer, list[np.ndarray],
                                                                    torch.optim.Optimizer]:
        """A fine-tuning trainer of encoder + head, one epoch's batches and its optimizer."""
        from anytouch_policy.train.augment import Augment
        from anytouch_policy.train.config import TrainConfig, TrainMode
        from anytouch_policy.train.trainers import finetune_trainer

        device = device or self.runtime.device
        config = TrainConfig(bags=self.config.bags, out=tmp / "policy-ft", preset=self.config.preset,
                             mode=TrainMode.FINETUNE, finetune=finetune, batch_size=batch_size, progress=False,
                             amp=amp, augment=Augment() if augment else None)
        slots = [self.runtime.slot_for(kind) for _, kind in self.data.sensors]
        trainer = finetune_trainer(config, self.data, self.head(), self.bundle.encoder, slots, device, rank=0)
        optimizer = torch.optim.AdamW([p for p in trainer.net.parameters() if p.requires_grad], lr=1e-4)
        return trainer, trainer.batches(self.samples, np.random.default_rng(0)), optimizer


def prepare_bench(tmp: Path, *, preset: str, bags: Path | None = None, episodes: int = 4, batch_size: int = 32,
                  device: str | torch.device = "cpu") -> BenchData:
    """Record `episodes` expert episodes into `tmp` (unless `bags`), prepare them, build a random-init encoder."""
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.model.bundle import load_encoder_bundle
    from anytouch_policy.model.runtime import EncoderRuntime
    from anytouch_policy.sim.sensor_params import SensorSpec
    from anytouch_policy.train.config import TrainConfig, TrainMode
    from anytouch_policy.train.data import prepare
    from anytouch_policy.train.run import init_encoder_bundle

    if bags is None:
        bags = tmp / "bags"
        record_expert_episodes(bags, episodes=episodes, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")])
    config = TrainConfig(bags=[bags], out=tmp / "policy", preset=preset, mode=TrainMode.FROZEN,
                         batch_size=batch_size, progress=False, cache_dir=tmp / "cache")
    data = prepare(config, log=lambda _text: None)
    bundle = load_encoder_bundle(init_encoder_bundle(preset, tmp / "encoder", seed=0))
    runtime = EncoderRuntime(bundle.encoder, device=device, trained_slots=bundle.trained_slots,
                             fingerprint=bundle.fingerprint)
    return BenchData(config=config, data=data, bundle=bundle, runtime=runtime,
                     labels=torch.from_numpy(data.labels).to(runtime.device),
                     samples=data.samples_of(data.train_episodes + data.val_episodes))


def _sync(device: torch.device) -> None:
    """CUDA kernels run asynchronously: wait for them before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(bench: TrainBench) -> dict:
    from anytouch_policy.threads import set_torch_threads

    set_torch_threads(bench.threads)
    device = torch.device(bench.device)
    with tempfile.TemporaryDirectory(prefix="anytouch-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        data = prepare_bench(tmp, preset=bench.preset, bags=bench.bags, episodes=bench.episodes,
                             batch_size=bench.batch_size, device=device)
        frozen = _frozen(data, tmp, device) if bench.frozen else None
        finetune = _finetune(data, tmp, device, finetune=bench.finetune, batch_size=bench.batch_size,
                             steps=bench.finetune_steps, amp=bench.amp, augment=bench.augment)
    return {
        "preset": bench.preset, "threads": bench.threads, "device": str(device), "episodes": len(data.data.ticks),
        "ticks_per_epoch": int(len(data.samples)), "batch_size": bench.batch_size, "frozen": frozen,
        "finetune": finetune,
    }


def _frozen(bench: BenchData, tmp: Path, device: torch.device) -> dict:
    """A head epoch on cached embeddings vs the same epoch re-encoding every window."""
    from anytouch_policy.train.cache import EmbeddingCache, embed_ticks
    from anytouch_policy.train.trainers import FrozenTrainer

    data, runtime, labels = bench.data, bench.runtime, bench.labels
    cache = EmbeddingCache(tmp / "cache")
    start = time.perf_counter()
    embeddings = embed_ticks(data.ticks, sensors=data.sensors, runtime=runtime, cache=cache, progress=False)
    fill_s = time.perf_counter() - start
    filled = replace(cache.stats)
    start = time.perf_counter()
    reloaded = embed_ticks(data.ticks, sensors=data.sensors, runtime=runtime, cache=cache, progress=False)
    reload_s = time.perf_counter() - start
    reload_same = all(np.array_equal(a, b) for a, b in zip(embeddings, reloaded, strict=True))

    frozen = FrozenTrainer(bench.config, data, bench.head(), embeddings, device)
    batches = frozen.batches(bench.samples, np.random.default_rng(0))
    optimizer = torch.optim.AdamW(frozen.net.parameters(), lr=1e-3)
    train_steps(frozen, batches[:2], labels, optimizer)  # warm-up
    _sync(device)
    start = time.perf_counter()
    train_steps(frozen, batches, labels, optimizer)
    _sync(device)
    cached_s = time.perf_counter() - start

    table = load_frame_table(data.ticks, sensors=[n for n, _ in data.sensors], size=runtime.image_size, progress=False)
    rows = np.concatenate(table.rows)
    slot = [kind for _, kind in data.sensors]
    start = time.perf_counter()
    for idx in batches:  # what an epoch costs without the cache: every window (and reference) through the encoder
        eps = np.unique(data.episode[idx])
        for k in range(len(slot)):
            clips = [list(table.frames[r]) for r in rows[idx, k]]
            clips += [list(table.frames[r]) for r in rows[data.first[eps], k]]
            runtime.embed(clips, [slot[k]] * len(clips))
        train_steps(frozen, [idx], labels, optimizer)
    _sync(device)
    reencode_s = time.perf_counter() - start
    return {"epoch_cached_s": round(cached_s, 5), "epoch_reencode_s": round(reencode_s, 5),
            "speedup": round(reencode_s / cached_s, 1), "cache_fill_s": round(fill_s, 2),
            "cache_reload_s": round(reload_s, 2), "windows_encoded": filled.windows_encoded,
            "reload_windows_encoded": cache.stats.windows_encoded - filled.windows_encoded,
            "reload_hits": cache.stats.hits - filled.hits, "reload_identical": reload_same}


def _finetune(bench: BenchData, tmp: Path, device: torch.device, *, finetune: str, batch_size: int, steps: int,
              amp: bool, augment: bool) -> dict:
    """Timed fine-tuning steps of encoder + head (after one warm-up step) and the memory they needed; for last:N
    also the one-off run of the frozen blocks whose output the steps then read (train.trainers.CachedPrefixTrainer)."""
    from anytouch_policy.train.trainers import CachedPrefixTrainer

    start = time.perf_counter()
    trainer, batches, optimizer = bench.finetune(tmp, finetune=finetune, batch_size=batch_size, device=device,
                                                 amp=amp, augment=augment)
    setup_s = time.perf_counter() - start  # frames decoded (and, last:N, the frozen blocks run)
    batches = batches[:steps + 1]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_steps(trainer, batches[:1], bench.labels, optimizer)  # warm-up
    _sync(device)
    start = time.perf_counter()
    train_steps(trainer, batches[1:], bench.labels, optimizer)
    _sync(device)
    seconds = time.perf_counter() - start
    samples, timed = int(sum(len(b) for b in batches[1:])), len(batches) - 1
    memory = ({"peak_cuda_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
              if device.type == "cuda" else
              {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})  # whole run
    return {"mode": finetune, "amp": amp, "augment": augment, "steps": timed, "steps_per_s": round(timed / seconds, 2),
            "samples_per_s": round(samples / seconds, 1), "samples": samples, "seconds": round(seconds, 2),
            "episodes_per_batch": trainer.config.episodes_per_batch,
            "frozen_blocks_stored": trainer.start if isinstance(trainer, CachedPrefixTrainer) else 0,
            "setup_s": round(setup_s, 2), **memory}
