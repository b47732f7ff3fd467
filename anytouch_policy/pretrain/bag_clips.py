"""Self-supervised stage-1 samples cut from our own recorded episodes (rosbag2), for adapting to a new sensor.

For every sensor of every episode, with frames f_0 < f_1 < ... (grab-stamp order):

    video clip at start i:  frames i, i+s, i+2s (encoder input, oldest first) and i+3s (the next frame to predict)
    static sample at start i: frame i+2s alone (the newest input frame), repeated to 3 frames by the encoder

with s = stride (the encoder node's window stride) and starts i = 0, hop, 2*hop, ... The sensor-token slot comes
from the episode metadata (meta.sensors: name -> type label). Frames are decoded once and kept in memory resized
to the encoder input (S x S x 3 uint8: 37 KB per frame at 112 px, 150 KB at 224 px).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from anytouch_policy.data.episode import Episode, scan_episodes
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.pretrain.config import ClipKind
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import resize_rgb

#: Frames decoded per pass over a bag (bounds the memory held at native resolution).
_DECODE_CHUNK = 256


@dataclass(frozen=True)
class BagClip:
    """One sample: frame positions in a decoded (episode, sensor) stream."""

    stream: int  # index into BagClips.streams
    indices: tuple[int, ...]  # 1 (static) or 4 (video) positions
    sensor: SensorType

    @property
    def kind(self) -> ClipKind:
        return ClipKind.STATIC if len(self.indices) == 1 else ClipKind.VIDEO


@dataclass
class BagClips:
    """Decoded streams (each (n, S, S, 3) uint8) and the clips cut from them."""

    streams: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # "episode_path:sensor" per stream
    clips: list[BagClip] = field(default_factory=list)
    episodes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def frames(self, clip: BagClip) -> list[np.ndarray]:
        stream = self.streams[clip.stream]
        return [stream[i] for i in clip.indices]


def clip_starts(num_frames: int, *, stride: int, hop: int) -> list[int]:
    """Starts i with i + 3 * stride < num_frames (room for 3 inputs and the next frame)."""
    if stride < 1 or hop < 1:
        raise ConfigError(f"bag clips need stride >= 1 and hop >= 1, got stride={stride}, hop={hop}")
    return list(range(0, max(0, num_frames - 3 * stride), hop))


def _sensor_type(episode: Episode, name: str) -> SensorType:
    label = episode.meta.sensors.get(name)
    if label is None:
        raise EpisodeError(f"{episode.path}: sensor {name!r} has frames but no type in the episode metadata")
    try:
        return SensorType.from_name(label)
    except ConfigError as exc:
        raise EpisodeError(f"{episode.path}: sensor {name!r}: {exc}") from None


def _decode(episode: Episode, sensor: str, size: int) -> np.ndarray:
    count = len(episode.frame_stamps[sensor])
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for start in range(0, count, _DECODE_CHUNK):
        wanted = range(start, min(count, start + _DECODE_CHUNK))
        frames = episode.load_frames(sensor, wanted)
        for i in wanted:
            out[i] = resize_rgb(frames[i], size)
    return out


def load_bag_clips(roots: Sequence[str], *, size: int, stride: int = 1, hop: int = 1,
                   kinds: Sequence[ClipKind] = (ClipKind.VIDEO, ClipKind.STATIC),
                   on_episode: Callable[[str], None] | None = None) -> BagClips:
    """Scan episode folders, decode every tactile stream at `size` and cut clips; skipped episodes are listed."""
    scan = scan_episodes(list(roots))
    result = BagClips(skipped=[(str(p), why) for p, why in scan.skipped])
    for episode in scan.episodes:
        result.episodes += 1
        for name in episode.sensors:
            sensor = _sensor_type(episode, name)
            stream = _decode(episode, name, size)
            idx = len(result.streams)
            result.streams.append(stream)
            result.names.append(f"{episode.path}:{name}")
            for i in clip_starts(len(stream), stride=stride, hop=hop):
                if ClipKind.VIDEO in kinds:
                    result.clips.append(BagClip(idx, tuple(i + k * stride for k in range(4)), sensor))
                if ClipKind.STATIC in kinds:
                    result.clips.append(BagClip(idx, (i + 2 * stride,), sensor))
        if on_episode is not None:
            on_episode(str(episode.path))
    if not result.clips:
        raise ConfigError(f"no training clips in {list(roots)}: {result.episodes} usable episode(s), "
                          f"{len(result.skipped)} skipped, none with more than {3 * stride} frames per sensor")
    return result
