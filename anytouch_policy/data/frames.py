"""Decoded tactile frames for training: every frame some window uses, decoded once and resized once.

Native frames are 230 KB (GelSight Mini 240 x 320); a 112 px encoder input is 37 KB. Resizing at decode time with the
same `tactile.resize_rgb` the runtime uses (so the runtime's own resize is then the identity) keeps a run's memory
at about 40 KB per distinct frame and takes the resize out of every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from anytouch_policy.data.memo import BagMemo
from anytouch_policy.data.samples import EpisodeTicks
from anytouch_policy.errors import EpisodeError
from anytouch_policy.progress import bar_disabled


@dataclass
class FrameTable:
    """All frames a set of episodes' windows use, resized: `frames[rows[i, k]]` is tick i's window of sensor k."""

    frames: np.ndarray  # (M, S, S, 3) uint8
    rows: list[np.ndarray]  # per episode: (N_e, K, 3) int64 rows into `frames`

    @property
    def size(self) -> int:
        return int(self.frames.shape[1])


def load_frame_table(ticks: Sequence[EpisodeTicks], *, sensors: Sequence[str], size: int,
                     progress: bool = True, memo: BagMemo | None = None) -> FrameTable:
    """Decode (one pass over each bag per sensor) and resize every frame the ticks' windows use; from `memo` where
    an earlier run kept them."""
    chunks: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    offset = 0
    bar = tqdm(ticks, desc=f"decoding frames ({size} px)", unit="episode", disable=bar_disabled(progress), leave=False)
    for et in bar:
        ep_rows = np.empty_like(et.windows)
        for k, sensor in enumerate(sensors):
            wanted = np.unique(et.windows[:, k])
            decoded = (memo or BagMemo()).frames(et.episode, sensor, wanted.tolist(), size)  # a new memo keeps nothing
            missing = [int(i) for i in wanted if int(i) not in decoded]
            if missing:
                raise EpisodeError(f"{et.episode.path}: frames {missing[:5]} of sensor {sensor!r} could not be read")
            block = np.stack([decoded[int(i)] for i in wanted])
            lookup = np.full(int(wanted.max()) + 1, -1, np.int64)
            lookup[wanted] = np.arange(len(wanted)) + offset
            ep_rows[:, k] = lookup[et.windows[:, k]]
            chunks.append(block)
            offset += len(wanted)
        rows.append(ep_rows)
    frames = np.concatenate(chunks) if chunks else np.empty((0, size, size, 3), np.uint8)
    return FrameTable(frames=frames, rows=rows)
