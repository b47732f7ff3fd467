"""Bags -> the arrays a training run works on: ticks, labels, conditioning and the episode split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anytouch_policy.actions import Action
from anytouch_policy.data.samples import (
    EpisodeTicks,
    WindowSpec,
    align_episode,
    policy_sensors,
    split_episodes,
    usable_episodes,
)
from anytouch_policy.errors import EpisodeError
from anytouch_policy.policy.head import conditioning_vector
from anytouch_policy.sensors import SensorType
from anytouch_policy.train.config import TrainConfig


@dataclass
class Prepared:
    """Every usable tick of every episode, flattened; `episode[i]` says which episode sample i comes from."""

    sensors: list[tuple[str, SensorType]]
    ticks: list[EpisodeTicks]
    train_episodes: list[int]
    val_episodes: list[int]
    labels: np.ndarray  # (N,) int64 Action
    episode: np.ndarray  # (N,) int64
    first: np.ndarray  # (E,) index of each episode's first sample (its reference tick)
    conditioning: np.ndarray  # (N, C) float32, already scaled
    skipped: list[tuple[str, str]]  # (bag, reason) of every episode not used
    dropped_ticks: int

    def samples_of(self, episodes: list[int]) -> np.ndarray:
        return np.flatnonzero(np.isin(self.episode, episodes))

    def class_counts(self, episodes: list[int]) -> np.ndarray:
        return np.bincount(self.labels[self.samples_of(episodes)], minlength=len(Action))

    def pairs(self, episodes: list[int]) -> list[list[float]]:
        """The distinct (initial_g, target_g) pairs of some episodes."""
        seen = {(self.ticks[e].episode.meta.initial_g, self.ticks[e].episode.meta.target_g) for e in episodes}
        return [list(p) for p in sorted(seen)]


def prepare(config: TrainConfig, *, log: Callable[[str], None] = print) -> Prepared:
    """Scan the bags, report what is skipped, cut windows at every tick and split episodes into train/val."""
    episodes, skipped = usable_episodes(config.bags, skip_bad=config.skip_bad, log=log)
    if len(episodes) < 2:
        raise EpisodeError(f"need at least 2 complete episodes under {[str(b) for b in config.bags]}, "
                           f"found {len(episodes)}")
    sensors = policy_sensors(episodes, config.sensors)
    spec = WindowSpec(frames=config.frames, stride=config.stride)
    ticks = [align_episode(ep, sensors=[n for n, _ in sensors], spec=spec) for ep in episodes]
    strata = [(ep.meta.initial_g, ep.meta.target_g) for ep in episodes]
    train_eps, val_eps = split_episodes(len(episodes), val_fraction=config.val_fraction, seed=config.seed,
                                        strata=strata)
    counts = [len(t.t_ns) for t in ticks]
    episode = np.repeat(np.arange(len(ticks)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cond = np.concatenate([np.tile(conditioning_vector(config.conditioning, initial_g=t.episode.meta.initial_g,
                                                       target_g=t.episode.meta.target_g), (len(t.t_ns), 1))
                           for t in ticks]).astype(np.float32)
    return Prepared(sensors=sensors, ticks=ticks, train_episodes=train_eps, val_episodes=val_eps,
                    labels=np.concatenate([t.actions for t in ticks]), episode=episode, first=first,
                    conditioning=cond, skipped=skipped, dropped_ticks=sum(t.dropped_ticks for t in ticks))


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency ("balanced") weights n / (classes present * count): every class weighs the same in total
    and the average sample keeps weight 1; absent classes get 0."""
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)
