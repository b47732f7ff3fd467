"""What differs between the training modes: the module that trains, how batches are drawn, one forward pass.

FrozenTrainer holds every tick's cached embedding (N, K, D) and its episode reference in memory: an epoch is a few
hundred head steps. FinetuneTrainer holds the decoded frames (resized once) and runs the encoder on every window:
batches hold `episodes_per_batch` episodes' ticks so each batch encodes only that many reference windows, and every
window of an episode gets that episode's augmentation draw. CachedPrefixTrainer, for `last:N`, runs the frozen
blocks once per view (a few augmentation draws) and trains the last N blocks on their stored output.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from anytouch_policy.data.frames import load_frame_table
from anytouch_policy.data.memo import BagMemo
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.model.optim import param_groups
from anytouch_policy.policy.config import ReferenceMode
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.progress import bar_disabled
from anytouch_policy.train.augment import to_input
from anytouch_policy.train.config import TrainConfig
from anytouch_policy.train.data import Prepared
from anytouch_policy.train.nets import FinetuneNet, FrozenNet


class Trainer:
    """The parts of a run that differ between modes: the module, its batches and one forward pass."""

    net: FrozenNet | FinetuneNet  # what trains
    model: nn.Module  # what the training steps call: `net`, or DDP around it under torchrun

    def batches(self, samples: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        raise NotImplementedError

    def forward(self, idx: np.ndarray, *, train: bool, cond: np.ndarray | None = None) -> torch.Tensor:
        """Logits of samples `idx`, conditioned on their own conditioning or on `cond` (B, C) (train.data.relabel)."""
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        raise NotImplementedError


class FrozenTrainer(Trainer):
    def __init__(self, config: TrainConfig, data: Prepared, head: PolicyHead, embeddings: list[np.ndarray],
                 device: torch.device) -> None:
        self.config, self.device = config, device
        rows = [len(e) for e in embeddings]
        ticks = [len(t.t_ns) for t in data.ticks]
        if rows != ticks:  # each sample indexes the concatenation: one row too many shifts every later episode
            raise ValueError(f"embeddings per episode {rows} do not match the episodes' ticks {ticks}")
        emb = torch.from_numpy(np.concatenate(embeddings)).to(device)
        self.emb = emb
        self.ref = emb[torch.from_numpy(data.first[data.episode]).to(device)]
        self.cond = torch.from_numpy(data.conditioning).to(device)
        self.net = FrozenNet(head).to(device)
        self.model = self.net
        self.use_ref = config.reference is not ReferenceMode.NONE
        # --feature-noise: its scale per token and dimension, the spread over every tick of the run
        self.noise = config.feature_noise * emb.std(dim=0, keepdim=True) if config.feature_noise else None

    def batches(self, samples: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(samples)
        return [order[i:i + self.config.batch_size] for i in range(0, len(order), self.config.batch_size)]

    def forward(self, idx: np.ndarray, *, train: bool, cond: np.ndarray | None = None) -> torch.Tensor:
        i = torch.from_numpy(idx).to(self.device)
        net = self.model if train else self.net
        c = self.cond[i] if cond is None else torch.from_numpy(cond).to(self.device)
        emb, ref = self.emb[i], self.ref[i] if self.use_ref else None
        if train and self.noise is not None:
            emb = emb + self.noise * torch.randn_like(emb)
            ref = None if ref is None else ref + self.noise * torch.randn_like(ref)
        return net(emb, ref, c)

    def param_groups(self) -> list[dict]:
        return param_groups(self.net, weight_decay=self.config.weight_decay, lr=self.config.lr)


class FinetuneTrainer(Trainer):
    net: FinetuneNet

    def __init__(self, config: TrainConfig, data: Prepared, head: PolicyHead, encoder: AnyTouchEncoder,
                 slots: list[int], device: torch.device, rank: int, memo: BagMemo | None = None) -> None:
        self.config, self.data, self.device = config, data, device
        table = load_frame_table(data.ticks, sensors=[n for n, _ in data.sensors], size=encoder.config.image_size,
                                 progress=config.progress and rank == 0, memo=memo)
        self.frames = torch.from_numpy(table.frames)
        self.rows = np.concatenate(table.rows)
        self.ref_rows = np.stack([r[0] for r in table.rows])  # (E, K, 3): each episode's first tick
        encoder.set_finetune(config.finetune_spec)
        self.net = FinetuneNet(encoder, head, slots).to(device)
        self.model = self.net
        self.use_ref = config.reference is not ReferenceMode.NONE
        self.aug_rng = np.random.default_rng([config.seed, 1, rank])

    def batches(self, samples: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Batches of `episodes_per_batch` episodes' ticks, so each batch encodes few references."""
        cfg = self.config
        per = max(1, cfg.batch_size // cfg.episodes_per_batch)
        chunks = []
        for e in np.unique(self.data.episode[samples]):
            mine = rng.permutation(samples[self.data.episode[samples] == e])
            chunks += [mine[i:i + per] for i in range(0, len(mine), per)]
        order = rng.permutation(len(chunks))
        step = cfg.episodes_per_batch
        return [np.concatenate([chunks[j] for j in order[i:i + step]]) for i in range(0, len(order), step)]

    def forward(self, idx: np.ndarray, *, train: bool, cond: np.ndarray | None = None) -> torch.Tensor:
        eps = self.data.episode[idx]
        windows = self.frames[torch.from_numpy(self.rows[idx])]  # (B, K, 3, S, S, 3) uint8
        ref_idx = None
        if self.use_ref:
            uniq, inverse = np.unique(eps, return_inverse=True)
            windows = torch.cat([windows, self.frames[torch.from_numpy(self.ref_rows[uniq])]])
            groups = np.concatenate([eps, uniq])
            ref_idx = torch.from_numpy(inverse.reshape(-1)).to(self.device)
        else:
            groups = eps
        x = to_input(windows, groups=groups, augment=self.config.augment if train else None,
                     rng=self.aug_rng).to(self.device)
        c = torch.from_numpy(self.data.conditioning[idx] if cond is None else cond).to(self.device)
        n = len(idx)
        net = self.model if train else self.net
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
            logits = net(x[:n], x[n:] if self.use_ref else None, ref_idx, c)
        return logits.float()

    def param_groups(self) -> list[dict]:
        cfg = self.config
        return (param_groups(self.net.head, weight_decay=cfg.weight_decay, lr=cfg.lr)
                + param_groups(self.net.encoder, weight_decay=cfg.weight_decay, lr=cfg.encoder_lr))


class CachedPrefixTrainer(FinetuneTrainer):
    """A `last:N` fine-tune whose frozen blocks run once per view instead of at every step.

    Nothing before the first trained block changes during training, so its output for every tick's windows is
    computed once for view 0 (no augmentation) and, with colour jitter, for `prefix_draws` draws per episode (views
    1..), and kept in memory. Without jitter this trains exactly what FinetuneTrainer trains, for the price of the
    trained blocks alone. With it a training batch takes, per episode, one of the stored draws at random for its
    windows and its reference (the episode's first tick), where FinetuneTrainer draws afresh; a few fixed draws per
    episode also mark each episode by its colour, which measured worse (docs/training.md).
    """

    def __init__(self, config: TrainConfig, data: Prepared, head: PolicyHead, encoder: AnyTouchEncoder,
                 slots: list[int], device: torch.device, rank: int, memo: BagMemo | None = None) -> None:
        super().__init__(config, data, head, encoder, slots, device, rank, memo)
        self.start = encoder.config.layers - config.finetune_spec.last_n
        views = 1 + (config.prefix_draws if config.augment is not None else 0)
        self.states = self._fill(views, progress=config.progress and rank == 0)
        self.frames = torch.empty(0, dtype=torch.uint8)  # every window is in the states now

    @property
    def state_bytes(self) -> int:
        return self.states.numel() * self.states.element_size()

    def _fill(self, views: int, *, progress: bool) -> torch.Tensor:
        enc, slots = self.net.encoder, self.net.slots
        n, k = self.rows.shape[:2]
        states = torch.empty((views, n, k, enc.prefix_tokens + enc.config.num_patches, enc.config.width))
        episodes = [np.flatnonzero(self.data.episode == e) for e in range(len(self.data.first))]
        chunk = 2 * self.config.batch_size
        bar = tqdm(total=views * n, desc=f"frozen blocks 0-{self.start - 1}, {views} views", unit="window",
                   disable=bar_disabled(progress), leave=False)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
            for view in range(views):
                for idx in episodes:  # one to_input call per episode: all its windows share the view's draw
                    x = to_input(self.frames[torch.from_numpy(self.rows[idx])], groups=np.zeros(len(idx)),
                                 augment=self.config.augment if view else None, rng=self.aug_rng)
                    for i in range(0, len(idx), chunk):
                        part = x[i:i + chunk].to(self.device)
                        seq = enc.input_tokens(part.flatten(0, 1), slots.repeat(part.shape[0]))
                        out = enc.run_blocks(seq, 0, self.start).float().cpu()
                        states[view, idx[i:i + chunk]] = out.view(part.shape[0], k, *out.shape[1:])
                        bar.update(len(part))
        bar.close()
        return states

    def forward(self, idx: np.ndarray, *, train: bool, cond: np.ndarray | None = None) -> torch.Tensor:
        eps = self.data.episode[idx]
        uniq, inverse = np.unique(eps, return_inverse=True)
        views = self.states.shape[0]
        pick = self.aug_rng.integers(1, views, len(uniq)) if train and views > 1 else np.zeros(len(uniq), np.int64)
        view = torch.from_numpy(pick[inverse.reshape(-1)])
        hidden = self.states[view, torch.from_numpy(idx)].to(self.device)
        ref = ref_idx = None
        if self.use_ref:
            ref = self.states[torch.from_numpy(pick), torch.from_numpy(self.data.first[uniq])].to(self.device)
            ref_idx = torch.from_numpy(inverse.reshape(-1)).to(self.device)
        c = torch.from_numpy(self.data.conditioning[idx] if cond is None else cond).to(self.device)
        net = self.model if train else self.net
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
            logits = net(hidden, ref, ref_idx, c, start=self.start)
        return logits.float()


def finetune_trainer(config: TrainConfig, data: Prepared, head: PolicyHead, encoder: AnyTouchEncoder,
                     slots: list[int], device: torch.device, rank: int,
                     memo: BagMemo | None = None) -> FinetuneTrainer:
    """The fine-tuning trainer `config` asks for (TrainConfig.stores_frozen_blocks)."""
    if config.stores_frozen_blocks:
        return CachedPrefixTrainer(config, data, head, encoder, slots, device, rank, memo)
    return FinetuneTrainer(config, data, head, encoder, slots, device, rank, memo)
