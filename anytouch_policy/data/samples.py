"""Training samples from episodes: one sample per 5 Hz action tick, windows cut by "latest frame at or before".

    action tick t (log time of pour/action) ──> label = that action
    each sensor: tactile.window_indices(frame stamps, t, frames, stride)   (no look-ahead; None -> tick dropped)
    reference: the windows of the episode's first usable tick               (the grasped, still-full cylinder)

A static window (frames = 1) is the newest frame at or before t; the encoder gets it repeated 3 times. The episode
reference is what `PolicyRuntime` keeps from the first decision of a pour, so training sees exactly what the policy
node will see. Episodes are split into training and validation by episode, never by frame (`split_episodes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from anytouch_policy.bounds import AT_LEAST_1
from anytouch_policy.data.episode import INCOMPLETE_SUFFIX, Episode, _read_meta, read_episode, scan_episodes
from anytouch_policy.data.topics import tactile_topic
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.schema import config
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import WINDOW_FRAMES, window_indices


@config
class WindowSpec:
    """How a window is cut: `frames` frames (3 dynamic, 1 static) `stride` frames apart, newest at or before t."""

    frames: Literal[3, 1] = WINDOW_FRAMES
    stride: Annotated[int, AT_LEAST_1] = 1

    @property
    def dynamic(self) -> bool:
        return self.frames > 1

    def indices(self, stamps_ns: Sequence[int] | np.ndarray, t_ns: int) -> list[int] | None:
        return window_indices(stamps_ns, t_ns, frames=self.frames, stride=self.stride)


@dataclass
class EpisodeTicks:
    """The action ticks of one episode that have a full window on every sensor, as arrays.

    `windows[i, k]` holds the frame positions (in `episode.frame_stamps[sensor k]`) of tick i's window, oldest first,
    always 3 of them: a static window repeats its one frame. `reference` is the first tick's windows.
    """

    episode: Episode
    t_ns: np.ndarray  # (N,) int64 log time of each kept action
    actions: np.ndarray  # (N,) int64 Action values (the class index)
    windows: np.ndarray  # (N, K, 3) int64
    dropped_ticks: int  # ticks before every sensor had a full window

    @property
    def reference(self) -> np.ndarray:
        """(K, 3) the windows of the first kept tick: the cylinder grasped and still full."""
        return self.windows[0]


@dataclass
class EpisodeSet:
    """Episodes found under some folders: usable ones, incomplete ones (skipped) and broken ones (with reasons)."""

    episodes: list[Episode]
    incomplete: list[tuple[Path, str]]
    broken: list[tuple[Path, str]]


def _is_incomplete(path: Path) -> bool:
    """Named .incomplete, or closed with complete=false; a folder without metadata.yaml under another name is no
    interrupted recording but a broken (or foreign) folder."""
    if path.name.endswith(INCOMPLETE_SUFFIX):
        return True
    if not (path / "metadata.yaml").is_file():
        return False
    try:
        return not _read_meta(path).complete
    except EpisodeError:
        return False


def collect_episodes(roots: Sequence[Path | str], *, read: Callable[[Path], Episode] = read_episode) -> EpisodeSet:
    """Scan folders of episode bags (MCAP or sqlite3); sort the skipped ones into incomplete and broken."""
    scan = scan_episodes(roots, read=read)
    incomplete = [(p, r) for p, r in scan.skipped if _is_incomplete(p)]
    broken = [(p, r) for p, r in scan.skipped if not _is_incomplete(p)]
    return EpisodeSet(episodes=scan.episodes, incomplete=incomplete, broken=broken)


def usable_episodes(roots: Sequence[Path | str], *, skip_bad: bool, log: Callable[[str], None] = print,
                    read: Callable[[Path], Episode] = read_episode) -> tuple[list[Episode], list[tuple[str, str]]]:
    """The complete episodes under `roots` in recording order, and (bag, reason) for every one left out.

    Incomplete episodes are always skipped (and logged); broken ones stop the caller with the list of every one of
    them unless `skip_bad` (the --skip-bad flag of `anytouch train` and `anytouch export`), which logs and skips them.
    """
    found = collect_episodes(roots, read=read)
    skipped = [(str(p), r) for p, r in found.incomplete]
    for path, reason in found.incomplete:
        log(f"skipped incomplete episode {path}: {reason}")
    if found.broken:
        text = "\n  ".join(f"{p}: {r}" for p, r in found.broken)
        if not skip_bad:
            raise EpisodeError(f"{len(found.broken)} bag(s) cannot be used (pass --skip-bad to go on without "
                               f"them):\n  {text}")
        for path, reason in found.broken:
            log(f"skipped broken episode {path}: {reason}")
        skipped += [(str(p), r) for p, r in found.broken]
    # Recording order (first action tick), not folder names: `<prefix>_<time>_<k>` sorts "_10" before "_9" within
    # a second, which made the split and batches depend on how the recording's seconds fell.
    episodes = sorted(found.episodes, key=lambda e: (e.actions[0][0] if e.actions else 0, str(e.path)))
    return episodes, skipped


def policy_sensors(episodes: Sequence[Episode], wanted: Sequence[str] | None = None) -> list[tuple[str, SensorType]]:
    """The sensors a policy trains on: `wanted` names (default: every sensor of the first episode), in that order.

    Every episode must have a tactile topic for each of them, with the same sensor type.
    """
    if not episodes:
        raise EpisodeError("no usable episodes")
    first = episodes[0]
    names = list(wanted) if wanted else sorted(first.meta.sensors)
    if not names:
        raise EpisodeError(f"{first.path}: episode metadata lists no sensors")
    types: dict[str, SensorType] = {}
    for ep in episodes:
        for name in names:
            label = ep.meta.sensors.get(name)
            if label is None or name not in ep.frame_stamps:
                raise EpisodeError(f"{ep.path}: no sensor {name!r} (topic {tactile_topic(name)!r}); "
                                   f"this episode has {sorted(ep.frame_stamps)}")
            kind = SensorType.from_name(label)
            if types.setdefault(name, kind) != kind:
                raise EpisodeError(f"{ep.path}: sensor {name!r} is a {kind.label}, but {first.path} has a "
                                   f"{types[name].label}; one policy needs one sensor type per name")
    return [(n, types[n]) for n in names]


def align_episode(episode: Episode, *, sensors: Sequence[str], spec: WindowSpec) -> EpisodeTicks:
    """Cut one window per sensor at every action tick; ticks before every sensor has a full window are dropped."""
    times, labels, windows = [], [], []
    dropped = 0
    stamps = [episode.frame_stamps[s] for s in sensors]
    for t_ns, action in episode.actions:
        cut = [idx for idx in (spec.indices(st, t_ns) for st in stamps) if idx is not None]
        if len(cut) < len(stamps):  # a sensor without a full window yet
            dropped += 1
            continue
        times.append(t_ns)
        labels.append(int(action))
        windows.append([idx * WINDOW_FRAMES if len(idx) == 1 else idx for idx in cut])
    if not times:
        raise EpisodeError(f"{episode.path}: no action tick has a full {spec.frames}-frame window on "
                           f"{[tactile_topic(s) for s in sensors]}")
    return EpisodeTicks(episode=episode, t_ns=np.asarray(times, np.int64), actions=np.asarray(labels, np.int64),
                        windows=np.asarray(windows, np.int64).reshape(len(times), len(sensors), WINDOW_FRAMES),
                        dropped_ticks=dropped)


def split_episodes(count: int, *, val_fraction: float = 0.2, seed: int = 0,
                   strata: Sequence[object] | None = None) -> tuple[list[int], list[int]]:
    """Episode indices for training and validation: seeded shuffle, round(val_fraction * count) validation episodes
    (at least one, and at least one left to train on).

    With `strata` (one label per episode, e.g. its (initial_g, target_g) pair) each stratum gives its own share and
    keeps at least one episode in training, so every pair that repeats is trained on. Strata too small for a share
    (a pair drawn once, as `sim record` draws them) then fill the validation set up to its size, from pairs that keep
    a training episode first: episodes whose pair is not trained on are validation on unseen pairs.
    """
    if count < 2:
        raise ConfigError(f"need at least 2 episodes to split training/validation by episode, got {count}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if strata is not None and len(strata) != count:
        raise ConfigError(f"strata has {len(strata)} labels for {count} episodes")
    rng = np.random.default_rng(seed)
    wanted = min(max(1, int(round(val_fraction * count))), count - 1)
    groups: dict[object, list[int]] = {}
    for i in range(count):
        groups.setdefault(strata[i] if strata is not None else 0, []).append(i)
    val: list[int] = []
    rest: list[tuple[object, int]] = []  # (stratum, episode) not yet in validation, shuffled within the stratum
    for key in sorted(groups, key=repr):
        members = [int(i) for i in rng.permutation(groups[key])]
        share = min(int(round(val_fraction * len(members))), len(members) - 1)
        val += members[:share]
        rest += [(key, i) for i in members[share:]]
    left = {key: sum(1 for k, _ in rest if k == key) for key in groups}
    order = [rest[j] for j in rng.permutation(len(rest))]
    for keep_pair in (True, False):  # top up: first episodes whose pair keeps another in training
        for key, i in order:
            if len(val) >= wanted:
                break
            if i not in val and (left[key] > 1 or not keep_pair):
                val.append(i)
                left[key] -= 1
    train = [i for i in range(count) if i not in val]
    return train, sorted(val)
