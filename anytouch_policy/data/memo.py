"""Episodes and resized frames read once for several training runs on the same bags.

`anytouch demo` trains six policies on one set of bags in one process; each run would otherwise read every bag's
timeline again and decode and resize every frame again (about 35 s of each run on 2 cores for 40 demonstrations).
A BagMemo handed to `train(..., memo=...)` keeps both for the runs that follow. A bag whose files changed since
(size or modification time) is read again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from anytouch_policy.data.episode import Episode, episode_stamp, read_episode
from anytouch_policy.tactile import resize_rgb

Signature = tuple[tuple[str, int, int], ...]  # episode_stamp of a bag folder


class BagMemo:
    """Episodes (timelines, no images) by folder, and frames resized to a size by (folder, sensor, size)."""

    def __init__(self) -> None:
        self._episodes: dict[Path, tuple[Signature, Episode]] = {}
        self._frames: dict[tuple[Path, str, int], tuple[Signature, dict[int, np.ndarray]]] = {}

    def read_episode(self, path: Path | str) -> Episode:
        """read_episode(path), from memory when the bag is unchanged (errors are not kept: a bad bag reads again)."""
        real = Path(path).resolve()
        signature = episode_stamp(real) if real.is_dir() else ()
        kept = self._episodes.get(real)
        if kept is not None and kept[0] == signature:
            return kept[1]
        episode = read_episode(path)
        self._episodes[real] = (signature, episode)
        return episode

    def frames(self, episode: Episode, sensor: str, indices: Iterable[int], size: int) -> dict[int, np.ndarray]:
        """The frames at positions `indices` of `sensor`, resized to `size` (tactile.resize_rgb), decoding only
        those not kept yet."""
        real = episode.path.resolve()
        signature = episode_stamp(real)
        kept = self._frames.get((real, sensor, size))
        if kept is None or kept[0] != signature:  # new, or the bag changed: its old frames go
            kept = self._frames[(real, sensor, size)] = (signature, {})
        store = kept[1]
        wanted = [int(i) for i in indices]
        missing = sorted({i for i in wanted if i not in store})
        if missing:
            for i, frame in episode.load_frames(sensor, missing).items():
                store[i] = resize_rgb(frame, size)
        return {i: store[i] for i in wanted if i in store}
