"""Samples, batches and the per-epoch batch plan of both stages.

Samples are grouped into pools that never mix in a batch (the losses differ):

    touch:static, touch:video   alignment/MAE batches of `batch_size` samples (stage 1: MAE only)
    match:static, match:video   stage 2 only: `batch_size // 2` anchors, each with a positive and a negative
    distill:static, distill:video  stage 2 with --reference-distill / --reference-change: samples with the same
                                state through the reference sensor (and, for the change term, a sample of the same
                                scenario at another time, with its reference)

Each epoch every pool is shuffled and cut into batches, and all batches are shuffled together (the official
per-epoch permutation over all loaders). Under torchrun rank r takes batches r, r + W, ... so every rank runs
the same number of steps. Every random draw (order, augmentation, positive/negative choice) comes from a seed
derived from (run seed, epoch, pool, sample), so a resumed run and any number of loader workers see the same data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
from open_clip.tokenizer import SimpleTokenizer
from torch.utils.data import Dataset

from anytouch_policy.errors import ConfigError
from anytouch_policy.pretrain.augment import (
    OFFICIAL_JITTER,
    augment_touch,
    normalize_touch,
    touch_tensor,
    vision_tensor,
)
from anytouch_policy.pretrain.bag_clips import BagClip, BagClips
from anytouch_policy.pretrain.config import ClipKind
from anytouch_policy.pretrain.manifest import TouchRecord
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import read_rgb


class PoolKind(StrEnum):
    """What a batch holds."""

    TOUCH = "touch"  # touch samples with their optional vision and text
    MATCH = "match"  # cross-sensor matching triplets
    DISTILL = "distill"  # a sample and the same state through the reference sensor


@dataclass(frozen=True)
class Pool:
    kind: PoolKind
    clip: ClipKind
    members: tuple[int, ...]  # sample indices (touch) or anchor indices (match)
    batch_size: int
    sensors: tuple[int, int] | None = None  # match pools by sensor pair: (anchor slot, positive slot)

    @property
    def name(self) -> str:
        if self.sensors is None:
            return f"{self.kind}:{self.clip}"
        return f"{self.kind}:{self.clip}:{self.sensors[0]}>{self.sensors[1]}"


@dataclass
class TouchBatch:
    """frames (B, F, 3, S, S): F = 1 (static) or 4 (3 inputs + next); vision/text rows only for samples having them."""

    frames: torch.Tensor
    sensor: torch.Tensor  # (B,) long slots
    has_vision: torch.Tensor  # (B,) bool
    has_text: torch.Tensor  # (B,) bool
    vision: torch.Tensor | None  # (sum(has_vision), 3, Sv, Sv), CLIP-normalised
    text: torch.Tensor | None  # (sum(has_text), context) token ids


@dataclass
class MatchBatch:
    """Anchors with a positive (same object and position, other sensor) and a negative (other object/position)."""

    anchor: torch.Tensor  # (B, F, 3, S, S)
    positive: torch.Tensor
    negative: torch.Tensor
    anchor_sensor: torch.Tensor  # (B,) long
    positive_sensor: torch.Tensor
    negative_sensor: torch.Tensor


@dataclass
class DistillBatch:
    """Samples of any sensor and the same states through the reference sensor (a reference sample is its own);
    with partners, each sample's partner is the same sensor and scenario at another time (itself when there is none),
    with the partner's reference."""

    frames: torch.Tensor  # (B, F, 3, S, S)
    sensor: torch.Tensor  # (B,) long; the partner's too
    reference: torch.Tensor  # (B, F, 3, S, S)
    reference_sensor: torch.Tensor  # (B,) long, all the reference slot
    partner: torch.Tensor | None = None  # (B, F, 3, S, S)
    partner_reference: torch.Tensor | None = None


@contextmanager
def _single_thread() -> Iterator[None]:
    """Per-sample image ops on one thread: they are tiny, so a second thread only adds a wake-up per op (measured
    before threads.py set OMP_WAIT_POLICY=PASSIVE, when idle threads spun: 4-frame 112 px colour jitter 3.5 ms on
    one thread vs 0.5 s on two, on a loaded 2-core box)."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def generator_for(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


Sample = TouchRecord | BagClip


class PretrainDataset(Dataset):
    """Every sample of a run; indexed by keys (pool, index, epoch) that the batch plan produces."""

    def __init__(self, samples: Sequence[Sample], *, image_size: int, bags: BagClips | None = None,
                 tokenizer: SimpleTokenizer | None = None, vision_size: int = 224,
                 vision_mean: Sequence[float] = (0.0, 0.0, 0.0), vision_std: Sequence[float] = (1.0, 1.0, 1.0),
                 augment: bool = True, seed: int = 0, hard_negatives: float = 0.0) -> None:
        if not samples:
            raise ConfigError("pretrain dataset is empty")
        if any(isinstance(s, BagClip) for s in samples) and bags is None:
            raise ConfigError("bag clips given without their decoded streams")
        self.samples = list(samples)
        self.image_size = image_size
        self.bags = bags
        self.tokenizer = tokenizer
        self.vision_size = vision_size
        self.vision_mean, self.vision_std = tuple(vision_mean), tuple(vision_std)
        self.augment = augment
        self.seed = seed
        self.hard_negatives = hard_negatives
        self.pools: list[Pool] = []
        self._partners: dict[int, tuple[list[int], list[int]]] = {}  # anchor -> (positives, its group)
        self._same_kind: dict[ClipKind, list[int]] = {}
        self._same_object: dict[int, list[int]] = {}  # anchor -> its object's samples of its kind, other positions
        self._reference: dict[int, int] = {}  # sample -> the same state's sample through the reference sensor
        self._change_partners: dict[int, list[int]] = {}  # sample -> same sensor and scenario, other times
        self.aligned_matching = False  # see add_match_pools

    def __len__(self) -> int:
        return len(self.samples)

    # ---- pools -------------------------------------------------------------------------------------------
    def add_touch_pools(self, batch_size: int) -> None:
        """One pool per clip kind holding every sample of that kind."""
        for kind in ClipKind:
            members = tuple(i for i, s in enumerate(self.samples) if s.kind is kind)
            if members:
                self.pools.append(Pool(PoolKind.TOUCH, kind, members, batch_size))

    def add_match_pools(self, anchors_per_batch: int, *, aligned: bool = False) -> int:
        """Matching pools over anchors that have a positive and a negative of the same kind; returns anchors.

        `aligned` (for the cross-sensor InfoNCE): one pool per (anchor sensor, positive sensor), each anchor in one
        of them (its positive sensor drawn once from the run seed), so a batch contrasts one sensor's anchors with
        one other sensor's positives; and each triplet shares one flip draw without colour jitter (`_match_item`).
        In a mixed batch the negatives that share the anchor's sensor look more alike than the positive of another
        sensor does, and the InfoNCE then collapsed the embedding to one direction (models/README.md).
        """
        self.aligned_matching = aligned
        total = 0
        for kind in ClipKind:
            same = [i for i, s in enumerate(self.samples) if s.kind is kind]
            self._same_kind[kind] = same
            groups: dict[tuple, list[int]] = {}
            for i in same:
                group = getattr(self.samples[i], "match_group", None)
                if group is not None:
                    groups.setdefault(group, []).append(i)
            objects: dict[tuple, list[int]] = {}
            for group, members in groups.items():
                objects.setdefault(group[:2], []).extend(members)
            anchors = []
            for group, members in groups.items():
                member_set = set(members)
                others = [j for j in objects[group[:2]] if j not in member_set]
                for i in members:
                    positives = [j for j in members if self.samples[j].sensor != self.samples[i].sensor]
                    if positives and len(members) < len(same):
                        self._partners[i] = (positives, members)
                        self._same_object[i] = others
                        anchors.append(i)
            if anchors and aligned:
                pairs: dict[tuple[int, int], list[int]] = {}
                for i in anchors:
                    slots = sorted({int(self.samples[j].sensor) for j in self._partners[i][0]})
                    slot = slots[derive_seed(self.seed, i) % len(slots)]
                    self._partners[i] = ([j for j in self._partners[i][0] if int(self.samples[j].sensor) == slot],
                                         self._partners[i][1])
                    pairs.setdefault((int(self.samples[i].sensor), slot), []).append(i)
                for pair in sorted(pairs):
                    self.pools.append(Pool(PoolKind.MATCH, kind, tuple(sorted(pairs[pair])), anchors_per_batch, pair))
            elif anchors:
                self.pools.append(Pool(PoolKind.MATCH, kind, tuple(sorted(anchors)), anchors_per_batch))
            total += len(anchors)
        return total

    def add_distill_pools(self, batch_size: int, reference: SensorType, *, partners: bool = False) -> int:
        """One pool per clip kind over the samples whose state (match group) the reference sensor also shows; a
        reference sample is paired with itself (its embedding is kept). `partners`: each also gets the pooled
        samples of its sensor (slot and `unit`: random models share the universal slot) and scenario (object) at
        other times (positions). Returns the pooled samples."""
        total = 0
        for kind in ClipKind:
            same = [(i, s, getattr(s, "match_group", None)) for i, s in enumerate(self.samples) if s.kind is kind]
            by_group = {group: i for i, s, group in same if group is not None and s.sensor is reference}
            members = []
            scenarios: dict[tuple, list[int]] = {}
            for i, s, group in same:
                if group is not None and group in by_group:
                    self._reference[i] = by_group[group]
                    members.append(i)
                    scenarios.setdefault((*group[:2], s.sensor, getattr(s, "unit", None)), []).append(i)
            if partners:
                for scenario in scenarios.values():
                    for i in scenario:
                        self._change_partners[i] = [j for j in scenario if j != i] or [i]
            if members:
                self.pools.append(Pool(PoolKind.DISTILL, kind, tuple(members), batch_size))
            total += len(members)
        return total

    # ---- loading -----------------------------------------------------------------------------------------
    def _touch_frames(self, index: int, generator: torch.Generator, *, jitter: bool = True) -> torch.Tensor:
        sample = self.samples[index]
        if isinstance(sample, BagClip):
            assert self.bags is not None  # bag samples come with the BagClips that cut them
            images = self.bags.frames(sample)
        else:
            images = [read_rgb(p) for p in sample.touch]
        frames = touch_tensor(images, self.image_size)
        if self.augment:
            frames = augment_touch(frames, generator, OFFICIAL_JITTER if jitter else None)
        return normalize_touch(frames)

    def _touch_item(self, index: int, generator: torch.Generator) -> dict:
        sample = self.samples[index]
        item = {"frames": self._touch_frames(index, generator), "sensor": int(sample.sensor),
                "vision": None, "text": None}
        if isinstance(sample, TouchRecord):
            if sample.vision is not None:
                item["vision"] = vision_tensor(read_rgb(sample.vision), self.vision_size, self.vision_mean,
                                               self.vision_std, generator=generator if self.augment else None)
            if sample.text is not None:
                if self.tokenizer is None:
                    raise ConfigError(f"{sample.where}: text given but this run has no text tower")
                item["text"] = self.tokenizer([sample.text])[0]
        return item

    def match_partners(self, pool: Pool, anchor: int, generator: torch.Generator) -> tuple[int, int]:
        """(positive, negative) for an anchor: same object and position from another sensor / another touch; with
        `hard_negatives`, that share of negatives is the same object at another position (another time of the same
        scenario), when it has one."""
        positives, group = self._partners[anchor]
        positive = positives[int(torch.randint(len(positives), (1,), generator=generator))]
        if self.hard_negatives > 0:  # no draw at 0: the paper's recipe keeps its exact sequence
            hard = self._same_object[anchor]
            if hard and float(torch.rand((), generator=generator)) < self.hard_negatives:
                return positive, hard[int(torch.randint(len(hard), (1,), generator=generator))]
        group_set, same = set(group), self._same_kind[pool.clip]
        while True:  # rejection sampling: the group is a strict subset of `same` (checked when pooled)
            negative = same[int(torch.randint(len(same), (1,), generator=generator))]
            if negative not in group_set:
                return positive, negative

    def _match_item(self, pool: Pool, anchor: int, generator: torch.Generator) -> dict:
        """Anchor, positive and negative frames. Aligned matching: the triplet shares one flip draw and has no colour
        jitter, so the positive shows the anchor's contact at the same place in its own sensor's colours (independent
        flips mirror it in 3 of 4 triplets, and independent jitter makes colour the largest difference)."""
        positive, negative = self.match_partners(pool, anchor, generator)
        roles = (("anchor", anchor), ("positive", positive), ("negative", negative))
        if not self.aligned_matching:
            return {role: (self._touch_frames(i, generator), int(self.samples[i].sensor)) for role, i in roles}
        state = generator.get_state()
        return {role: (self._touch_frames(i, torch.Generator().set_state(state), jitter=False),
                       int(self.samples[i].sensor)) for role, i in roles}

    def _distill_item(self, index: int, generator: torch.Generator) -> dict:
        """The sample and its reference (and the partner and its reference), one flip draw for all and no colour
        jitter (as aligned matching): the reference shows the same contact at the same place."""
        roles = [("frames", index), ("reference", self._reference[index])]
        if index in self._change_partners:
            partners = self._change_partners[index]
            partner = partners[int(torch.randint(len(partners), (1,), generator=generator))]
            roles += [("partner", partner), ("partner_reference", self._reference[partner])]
        state = generator.get_state()
        return {role: (self._touch_frames(i, torch.Generator().set_state(state), jitter=False),
                       int(self.samples[i].sensor)) for role, i in roles}

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        pool_id, index, epoch = key
        pool = self.pools[pool_id]
        generator = generator_for(self.seed, epoch, pool_id, index)
        with _single_thread():
            if pool.kind is PoolKind.MATCH:
                return self._match_item(pool, index, generator)
            if pool.kind is PoolKind.DISTILL:
                return self._distill_item(index, generator)
            return self._touch_item(index, generator)

    # ---- batches -----------------------------------------------------------------------------------------
    def epoch_plan(self, epoch: int, *, rank: int = 0, world_size: int = 1) -> list[list[tuple[int, int, int]]]:
        """This rank's batches of one epoch, each a list of keys of one pool."""
        batches = []
        for pool_id, pool in enumerate(self.pools):
            order = torch.randperm(len(pool.members), generator=generator_for(self.seed, epoch, pool_id, -1))
            members = [pool.members[i] for i in order.tolist()]
            for start in range(0, len(members), pool.batch_size):
                batches.append([(pool_id, m, epoch) for m in members[start:start + pool.batch_size]])
        shuffled = torch.randperm(len(batches), generator=generator_for(self.seed, epoch, -1, -1)).tolist()
        batches = [batches[i] for i in shuffled]
        per_rank = len(batches) // world_size
        if per_rank == 0:
            raise ConfigError(f"the data give {len(batches)} batches per epoch, fewer than the {world_size} ranks; "
                              f"lower --batch-size or add data")
        return batches[rank::world_size][:per_rank]

    def steps_per_epoch(self, world_size: int = 1) -> int:
        batches = sum(-(-len(p.members) // p.batch_size) for p in self.pools)
        return batches // world_size


def _stack_role(items: list[dict], role: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames, sensor slots) of one role ("anchor", "reference"...) over a batch's items."""
    return (torch.stack([it[role][0] for it in items]),
            torch.tensor([it[role][1] for it in items], dtype=torch.long))


def collate(items: list[dict]) -> TouchBatch | MatchBatch | DistillBatch:
    """Stack the items of one pool's batch."""
    if "reference" in items[0]:
        batch = DistillBatch(*_stack_role(items, "frames"), *_stack_role(items, "reference"))
        if "partner" in items[0]:
            batch.partner = _stack_role(items, "partner")[0]
            batch.partner_reference = _stack_role(items, "partner_reference")[0]
        return batch
    if "anchor" in items[0]:
        (a, a_s), (p, p_s), (n, n_s) = (_stack_role(items, role) for role in ("anchor", "positive", "negative"))
        return MatchBatch(a, p, n, a_s, p_s, n_s)
    vision = [it["vision"] for it in items if it["vision"] is not None]
    text = [it["text"] for it in items if it["text"] is not None]
    return TouchBatch(
        frames=torch.stack([it["frames"] for it in items]),
        sensor=torch.tensor([it["sensor"] for it in items], dtype=torch.long),
        has_vision=torch.tensor([it["vision"] is not None for it in items]),
        has_text=torch.tensor([it["text"] is not None for it in items]),
        vision=torch.stack(vision) if vision else None,
        text=torch.stack(text) if text else None,
    )
