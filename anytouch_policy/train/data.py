"""Bags -> the arrays a training run works on: ticks, labels, conditioning and the episode split.

Why the labels are not simply "what the expert did at each tick" (issue 14: a policy that ignored its target):

- Labels end at the decision: an episode's ticks after its first RETRACT are not samples. The expert retracts for
  good once it has decided (sim.expert), so every later RETRACT repeats that decision while the window shows the
  cylinder tilting back: told apart from the frames alone, without the target. Kept, they were 92 % of the RETRACT
  class; such a policy keeps retracting once it has decided (its bundle's `retract_latch`, PolicyRuntime), as the
  expert does. Demonstrated labels keep every tick and no latch: the head learns the retreat, and one stray RETRACT
  mid-pour does not end the pour (the demo's one-pair table: a latch there raised the frozen dynamic cell's error
  from 2.64 to 5.30 g on the same 50 seeds).
- Targets in hindsight: with one target per episode, the one tick whose label depends on the target is the
  decision, one sample in ~60, and a head fits every other label without its conditioning. Each tick up to the
  decision also says where the expert would have stopped for other targets: it stops once the poured mass reaches
  the target, so at tick t it would retract for any target up to `decision_g[t]` = target - (scale at the decision
  - scale at t). `relabel` draws such targets around that point for half of each training batch: RETRACT at or
  below it, the demonstrated action above. The scale reading (topics.SCALE_MASS) lags the beads in flight by about
  the same at both ticks, so the difference is the mass poured in between. Episodes without a scale series, or
  that never retract, keep their own labels.

Both apply under `--labels hindsight`, and under the default `auto` when the demonstrations' targets differ. With
one target (the demo's 100 g -> 60 g) `auto` keeps the demonstrated labels, every tick with its own target: the head
needs no target input there, and the relabelled classes were measured to be slower to learn by fine-tuning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from anytouch_policy.actions import Action
from anytouch_policy.data.episode import read_episode
from anytouch_policy.data.memo import BagMemo
from anytouch_policy.data.samples import (
    EpisodeTicks,
    WindowSpec,
    align_episode,
    policy_sensors,
    split_episodes,
    usable_episodes,
)
from anytouch_policy.data.topics import SCALE_MASS
from anytouch_policy.errors import EpisodeError
from anytouch_policy.policy.config import CONDITIONING_SCALE_G
from anytouch_policy.policy.head import conditioning_vector
from anytouch_policy.sensors import SensorType
from anytouch_policy.train.config import LabelMode, TrainConfig


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
    conditioning_names: tuple[str, ...]
    decision_g: np.ndarray  # (N,) float32: the largest target the expert would retract for at this tick; NaN: unknown
    #   or not relabelled (demonstrated labels)
    remaining_g: np.ndarray  # (N,) float32: the grams the expert still poured from this tick to its decision (0 after
    #   it); NaN: unknown (no scale series, or no RETRACT)
    label_mode: LabelMode  # what the labels are (never AUTO)
    skipped: list[tuple[str, str]]  # (bag, reason) of every episode not used
    dropped_ticks: int

    def samples_of(self, episodes: list[int]) -> np.ndarray:
        return np.flatnonzero(np.isin(self.episode, episodes))

    def pairs(self, episodes: list[int]) -> list[list[float]]:
        """The distinct (initial_g, target_g) pairs of some episodes."""
        seen = {(self.ticks[e].episode.meta.initial_g, self.ticks[e].episode.meta.target_g) for e in episodes}
        return [list(p) for p in sorted(seen)]


def prepare(config: TrainConfig, *, log: Callable[[str], None] = print, memo: BagMemo | None = None) -> Prepared:
    """Scan the bags (through `memo`, when given), report what is skipped, cut windows at every tick and split
    episodes into train/val."""
    episodes, skipped = usable_episodes(config.bags, skip_bad=config.skip_bad, log=log,
                                        read=read_episode if memo is None else memo.read_episode)
    if len(episodes) < 2:
        raise EpisodeError(f"need at least 2 complete episodes under {[str(b) for b in config.bags]}, "
                           f"found {len(episodes)}")
    sensors = policy_sensors(episodes, config.sensors)
    spec = WindowSpec(frames=config.frames, stride=config.stride)
    ticks = [align_episode(ep, sensors=[n for n, _ in sensors], spec=spec) for ep in episodes]
    return assemble(ticks, sensors=sensors, config=config, skipped=skipped)


def assemble(ticks: list[EpisodeTicks], *, sensors: list[tuple[str, SensorType]], config: TrainConfig,
             skipped: list[tuple[str, str]]) -> Prepared:
    """Aligned episodes -> samples: labels (cut at the decision under hindsight labels), conditioning, decision
    points and the split."""
    labels = label_mode(config.labels, ticks)
    if labels is LabelMode.HINDSIGHT:
        ticks = [decision_ticks(t) for t in ticks]
    strata = [(t.episode.meta.initial_g, t.episode.meta.target_g) for t in ticks]
    train_eps, val_eps = split_episodes(len(ticks), val_fraction=config.val_fraction, seed=config.seed,
                                        strata=strata)
    counts = [len(t.t_ns) for t in ticks]
    episode = np.repeat(np.arange(len(ticks)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cond = np.concatenate([np.tile(conditioning_vector(config.conditioning, initial_g=t.episode.meta.initial_g,
                                                       target_g=t.episode.meta.target_g), (len(t.t_ns), 1))
                           for t in ticks]).astype(np.float32)
    return Prepared(sensors=sensors, ticks=ticks, train_episodes=train_eps, val_episodes=val_eps,
                    labels=np.concatenate([t.actions for t in ticks]), episode=episode, first=first,
                    conditioning=cond, conditioning_names=tuple(config.conditioning),
                    decision_g=np.concatenate([decision_grams(t) if labels is LabelMode.HINDSIGHT
                                               else np.full(len(t.t_ns), np.nan) for t in ticks]).astype(np.float32),
                    remaining_g=np.concatenate([remaining_grams(t) for t in ticks]).astype(np.float32),
                    label_mode=labels,
                    skipped=skipped, dropped_ticks=sum(t.dropped_ticks for t in ticks))


def label_mode(wanted: LabelMode, ticks: list[EpisodeTicks]) -> LabelMode:
    """AUTO -> HINDSIGHT when the episodes' targets differ, else DEMONSTRATED: with one target the head needs no
    target input, and the demonstrated labels (every tick) are what a fixed-pair policy learns fastest."""
    if wanted is not LabelMode.AUTO:
        return wanted
    targets = {t.episode.meta.target_g for t in ticks}
    return LabelMode.HINDSIGHT if len(targets) > 1 else LabelMode.DEMONSTRATED


def decision_ticks(ticks: EpisodeTicks) -> EpisodeTicks:
    """The ticks up to and including the first RETRACT (all of them when the episode never retracts)."""
    retracts = np.flatnonzero(ticks.actions == int(Action.RETRACT))
    if not len(retracts):
        return ticks
    end = int(retracts[0]) + 1
    return replace(ticks, t_ns=ticks.t_ns[:end], actions=ticks.actions[:end], windows=ticks.windows[:end])


def decision_grams(ticks: EpisodeTicks) -> np.ndarray:
    """(N,) per tick the target at which the expert would retract there: target - (scale at the decision - scale at
    the tick); NaN for every tick when the episode has no scale series or no RETRACT (ticks end at the decision)."""
    n = len(ticks.t_ns)
    scale = ticks.episode.series.get(SCALE_MASS)
    if ticks.actions[-1] != int(Action.RETRACT) or scale is None or not len(scale[0]):
        return np.full(n, np.nan)
    mass = np.interp(ticks.t_ns, scale[0], scale[1])
    return ticks.episode.meta.target_g - (mass[-1] - mass)


def remaining_grams(ticks: EpisodeTicks) -> np.ndarray:
    """(N,) per tick the grams the expert still poured before its first RETRACT (scale at the decision - scale at
    the tick; 0 from the decision on), the head's "remaining" target; NaN for every tick when the episode has no scale
    series or never retracts."""
    n = len(ticks.t_ns)
    scale = ticks.episode.series.get(SCALE_MASS)
    retracts = np.flatnonzero(ticks.actions == int(Action.RETRACT))
    if not len(retracts) or scale is None or not len(scale[0]):
        return np.full(n, np.nan)
    mass = np.interp(ticks.t_ns, scale[0], scale[1])
    decision = int(retracts[0])
    return np.where(np.arange(n) < decision, np.maximum(0.0, mass[decision] - mass), 0.0)


def require_remaining(data: Prepared) -> None:
    """EpisodeError unless some training tick knows the grams still to pour (what `--remaining-weight` learns)."""
    if not np.isfinite(data.remaining_g[data.samples_of(data.train_episodes)]).any():
        raise EpisodeError(f"--remaining-weight needs training episodes with a {SCALE_MASS!r} series and a RETRACT "
                           f"(the grams still to pour are read from them); none of the {len(data.train_episodes)} "
                           f"training episodes has both (--remaining-weight 0 trains without it)")


#: Hindsight targets are drawn this many grams either side of a tick's decision point.
RELABEL_SPAN_G = 15.0


def relabel(data: Prepared, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditioning (B, C), labels (B,) and grams still to pour (B,) for training samples `idx`: half keep their
    own, the other half (where the tick's decision point is known) get a target drawn within RELABEL_SPAN_G of it,
    the label it implies and the grams it leaves (the new target - the decision point, at least 0)."""
    cond, labels, remaining = data.conditioning[idx].copy(), data.labels[idx].copy(), data.remaining_g[idx].copy()
    if "target_g" not in data.conditioning_names:
        return cond, labels, remaining
    point = data.decision_g[idx].astype(np.float64)
    initial = np.array([data.ticks[e].episode.meta.initial_g for e in data.episode[idx]])
    swap = np.isfinite(point) & (rng.random(len(idx)) < 0.5)
    target = np.clip(point + rng.uniform(-RELABEL_SPAN_G, RELABEL_SPAN_G, len(idx)), 1.0, initial - 1.0)
    retract = target <= point
    own_retract = labels == int(Action.RETRACT)
    new = np.where(retract, int(Action.RETRACT), np.where(own_retract, int(Action.POUR), labels))
    labels = np.where(swap, new, labels)
    remaining = np.where(swap, np.maximum(0.0, target - point), remaining)
    col = data.conditioning_names.index("target_g")
    cond[:, col] = np.where(swap, target / CONDITIONING_SCALE_G, cond[:, col])
    return cond.astype(np.float32), labels.astype(np.int64), remaining.astype(np.float32)


def training_class_counts(data: Prepared, seed: int) -> np.ndarray:
    """(3,) the classes as training sees them: the training samples relabelled once (what the class weights use)."""
    samples = data.samples_of(data.train_episodes)
    return np.bincount(relabel(data, samples, np.random.default_rng(seed))[1], minlength=len(Action))


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency ("balanced") weights n / (classes present * count): every class weighs the same in total
    and the average sample keeps weight 1; absent classes get 0."""
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)
