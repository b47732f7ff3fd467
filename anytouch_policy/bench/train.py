"""anytouch bench train --preset anytouch-small --threads 2

Training speed on recorded expert episodes (recorded into a temporary folder unless --bags is given):
- frozen mode: one head epoch on cached embeddings vs the same epoch re-encoding every window (the encoder forward
  the cache saves; frames are decoded and resized beforehand, which favours the no-cache side), ratio from one run;
  plus the one-off cost of filling the cache;
- finetune mode: training samples/s of encoder + head with augmentation (forward, backward, AdamW step).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from anytouch_policy.bounds import AT_LEAST_1
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.data.frames import load_frame_table
from anytouch_policy.schema import config

Count = Annotated[int, AT_LEAST_1]


@config
class TrainBench:
    """What `anytouch bench train` measures."""

    preset: str = Field("anytouch-small", description="encoder preset (random init)")
    threads: Count = Field(2, description="CPU threads (torch)")
    episodes: Count = Field(4, description="expert episodes to record when no --bags")
    bags: Path | None = Field(None, description="use these episodes instead of recording")
    batch_size: Count = 32
    finetune_steps: Count = Field(6, description="timed finetune steps (after one warm-up)")
    finetune: str = Field("all", description="finetune mode (all or last:N)")
    device: str = Field("cpu", description="cpu | cuda")


FLAGS = Flags(TrainBench, "preset", "threads", "episodes", Flag("bags", metavar="DIR"), "batch_size",
              "finetune_steps", Flag("finetune", metavar="all|last:N"), "device")


def _steps(trainer, batches: list[np.ndarray], labels: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    loss_fn = torch.nn.CrossEntropyLoss()
    for idx in batches:
        logits = trainer.forward(idx, train=True)
        loss = loss_fn(logits, labels[torch.from_numpy(idx)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def run(bench: TrainBench) -> dict:
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.model.bundle import load_encoder_bundle
    from anytouch_policy.model.runtime import EncoderRuntime
    from anytouch_policy.policy.config import HeadConfig
    from anytouch_policy.policy.head import PolicyHead
    from anytouch_policy.sim.sensor_params import SensorSpec
    from anytouch_policy.train.cache import EmbeddingCache, embed_ticks
    from anytouch_policy.train.config import TrainConfig, TrainMode
    from anytouch_policy.train.data import prepare
    from anytouch_policy.train.run import init_encoder_bundle
    from anytouch_policy.train.trainers import FinetuneTrainer, FrozenTrainer

    torch.set_num_threads(bench.threads)
    device = torch.device(bench.device)
    with tempfile.TemporaryDirectory(prefix="anytouch-bench-") as tmp:
        tmp = Path(tmp)
        bags = Path(bench.bags) if bench.bags else tmp / "bags"
        if bench.bags is None:
            record_expert_episodes(bags, episodes=bench.episodes, target_g=60.0,
                                   sensors=[SensorSpec.parse("gelsight_mini")])
        config = TrainConfig(bags=[bags], out=tmp / "policy", preset=bench.preset, mode=TrainMode.FROZEN,
                             batch_size=bench.batch_size, progress=False, cache_dir=tmp / "cache")
        data = prepare(config, log=lambda _text: None)
        bundle = load_encoder_bundle(init_encoder_bundle(bench.preset, tmp / "encoder", seed=0))
        runtime = EncoderRuntime(bundle.encoder, device=device, trained_slots=bundle.trained_slots,
                                 fingerprint=bundle.fingerprint)
        labels = torch.from_numpy(data.labels).to(device)
        samples = data.samples_of(data.train_episodes + data.val_episodes)

        def head() -> PolicyHead:
            return PolicyHead(HeadConfig(sensors=len(data.sensors), embed_dim=bundle.config.output_dim,
                                         reference=True, conditioning=len(config.conditioning)))

        cache = EmbeddingCache(tmp / "cache")
        start = time.perf_counter()
        embeddings = embed_ticks(data.ticks, sensors=data.sensors, runtime=runtime, cache=cache, progress=False)
        fill_s = time.perf_counter() - start
        start = time.perf_counter()
        embeddings = embed_ticks(data.ticks, sensors=data.sensors, runtime=runtime, cache=cache, progress=False)
        reload_s = time.perf_counter() - start

        frozen = FrozenTrainer(config, data, head(), embeddings, device)
        batches = frozen.batches(samples, np.random.default_rng(0))
        optimizer = torch.optim.AdamW(frozen.net.parameters(), lr=1e-3)
        _steps(frozen, batches[:2], labels, optimizer)  # warm-up
        start = time.perf_counter()
        _steps(frozen, batches, labels, optimizer)
        cached_s = time.perf_counter() - start

        table = load_frame_table(data.ticks, sensors=[n for n, _ in data.sensors], size=runtime.image_size,
                                 progress=False)
        rows = np.concatenate(table.rows)
        slot = [kind for _, kind in data.sensors]
        start = time.perf_counter()
        for idx in batches:  # what an epoch costs without the cache: every window (and reference) through the encoder
            eps = np.unique(data.episode[idx])
            for k in range(len(slot)):
                clips = [list(table.frames[r]) for r in rows[idx, k]]
                clips += [list(table.frames[r]) for r in rows[data.first[eps], k]]
                runtime.embed(clips, [slot[k]] * len(clips))
            _steps(frozen, [idx], labels, optimizer)
        reencode_s = time.perf_counter() - start

        ft_config = TrainConfig(bags=[bags], out=tmp / "policy-ft", preset=bench.preset, mode=TrainMode.FINETUNE,
                                finetune=bench.finetune, batch_size=bench.batch_size, progress=False)
        slots = [runtime.slot_for(kind) for kind in slot]
        finetune = FinetuneTrainer(ft_config, data, head(), bundle.encoder, slots, device, rank=0)
        ft_batches = finetune.batches(samples, np.random.default_rng(0))[:bench.finetune_steps + 1]
        optimizer = torch.optim.AdamW([p for p in finetune.net.parameters() if p.requires_grad], lr=1e-4)
        _steps(finetune, ft_batches[:1], labels, optimizer)  # warm-up
        start = time.perf_counter()
        _steps(finetune, ft_batches[1:], labels, optimizer)
        ft_s = time.perf_counter() - start
        ft_samples = int(sum(len(b) for b in ft_batches[1:]))
    return {
        "preset": bench.preset, "threads": bench.threads, "device": str(device), "episodes": len(data.ticks),
        "ticks_per_epoch": int(len(samples)), "batch_size": bench.batch_size,
        "frozen": {"epoch_cached_s": round(cached_s, 5), "epoch_reencode_s": round(reencode_s, 5),
                   "speedup": round(reencode_s / cached_s, 1), "cache_fill_s": round(fill_s, 2),
                   "cache_reload_s": round(reload_s, 2), "windows_encoded": cache.stats.windows_encoded},
        "finetune": {"mode": bench.finetune, "samples_per_s": round(ft_samples / ft_s, 1), "samples": ft_samples,
                     "seconds": round(ft_s, 2), "episodes_per_batch": ft_config.episodes_per_batch},
    }
