"""On-disk cache of frozen-encoder embeddings, so a frozen policy encodes each window once, ever.

One `.npy` file per (encoder fingerprint, token slot, token mode, precision, episode identity, sensor, windows):
the key is the sha256 of those, where the episode identity is its resolved path plus a content stamp (name, size
and mtime of every file in the bag folder; re-recording or editing a bag changes it) and `windows` are the exact
frame positions of every window (stride and static/dynamic included). A different encoder, a retrained one, another
token mode or precision, or a changed bag misses the cache and is encoded afresh; nothing is ever overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anytouch_policy.data.episode import Episode, episode_stamp
from anytouch_policy.data.memo import BagMemo
from anytouch_policy.data.samples import EpisodeTicks
from anytouch_policy.errors import ConfigError, EpisodeError, TrainingError
from anytouch_policy.model.runtime import EncoderRuntime
from anytouch_policy.outputs import make_dir
from anytouch_policy.progress import bar_disabled
from anytouch_policy.sensors import SensorType

#: Windows per forward pass when filling the cache.
ENCODE_BATCH = 32


def default_cache_dir() -> Path:
    """$ANYTOUCH_CACHE, else $XDG_CACHE_HOME/anytouch/embeddings, else ~/.cache/anytouch/embeddings."""
    if os.environ.get("ANYTOUCH_CACHE"):
        return Path(os.environ["ANYTOUCH_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "anytouch" / "embeddings"


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    windows_encoded: int = 0


def check_cache_dir(root: Path | str, *, what: str) -> Path:
    """The cache folder exists (made if need be) and takes new files: checked before the bags are read."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{what} {root} is a file; the embedding cache is a folder")
    try:
        make_dir(root)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {root} is not writable")
    return root


class EmbeddingCache:
    """Content-addressed embedding files under `root`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.stats = CacheStats()

    def key(self, *, runtime: EncoderRuntime, episode: Episode, sensor: str, sensor_type: SensorType,
            windows: np.ndarray) -> str:
        if runtime.fingerprint is None:
            raise EpisodeError("embedding cache needs an encoder loaded from a bundle (its fingerprint is the key)")
        blob = json.dumps({
            "encoder": runtime.fingerprint, "slot": runtime.slot_for(sensor_type),
            "token_mode": runtime.token_mode.value, "precision": runtime.precision.value,
            "episode": str(episode.path.resolve()), "stamp": episode_stamp(episode.path), "sensor": sensor,
            "windows": hashlib.sha256(np.ascontiguousarray(windows, np.int64).tobytes()).hexdigest(),
            "shape": list(windows.shape),
        }, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self.file(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        try:
            emb = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # a torn file from a killed run: encode again
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return emb

    def put(self, key: str, emb: np.ndarray) -> None:
        path = self.file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(emb, np.float32), allow_pickle=False)
        os.replace(tmp, path)


def embed_episode_windows(runtime: EncoderRuntime, episode: Episode, *, sensor: str, sensor_type: SensorType,
                          windows: np.ndarray, memo: BagMemo | None = None) -> np.ndarray:
    """Embeddings (N, D) of windows (N, 3) of frame positions: decode each frame once (or take it from `memo`),
    resize, encode in batches."""
    frames = (memo or BagMemo()).frames(episode, sensor, np.unique(windows).tolist(), runtime.image_size)
    out = np.empty((len(windows), runtime.output_dim), np.float32)
    for start in range(0, len(windows), ENCODE_BATCH):
        chunk = windows[start:start + ENCODE_BATCH]
        clips = [[frames[int(i)] for i in row] for row in chunk]
        out[start:start + len(chunk)] = runtime.embed(clips, [sensor_type] * len(chunk))
    return out


def embed_ticks(ticks: Sequence[EpisodeTicks], *, sensors: Sequence[tuple[str, SensorType]],
                runtime: EncoderRuntime, cache: EmbeddingCache | None, progress: bool = True,
                memo: BagMemo | None = None) -> list[np.ndarray]:
    """Per episode, the embeddings (N_e, K, D) of every tick's window, from the cache where it has them."""
    out = []
    for et in tqdm(ticks, desc="encoding windows (frozen)", unit="episode", disable=bar_disabled(progress),
                   leave=False):
        emb = np.empty((len(et.t_ns), len(sensors), runtime.output_dim), np.float32)
        for k, (name, kind) in enumerate(sensors):
            unique, inverse = np.unique(et.windows[:, k], axis=0, return_inverse=True)
            key, got = None, None
            if cache is not None:
                key = cache.key(runtime=runtime, episode=et.episode, sensor=name, sensor_type=kind, windows=unique)
                got = cache.get(key)
                if got is not None and not np.isfinite(got).all():
                    raise TrainingError(f"{cache.file(key)}: the cached embeddings of {et.episode.path} sensor "
                                        f"{name!r} hold NaN or inf; delete that file (or train with --no-cache) and "
                                        f"run again")
            if got is None or got.shape != (len(unique), runtime.output_dim):
                got = embed_episode_windows(runtime, et.episode, sensor=name, sensor_type=kind, windows=unique,
                                            memo=memo)
                if not np.isfinite(got).all():
                    raise TrainingError(f"the encoder gave NaN or inf embeddings for {et.episode.path} sensor "
                                        f"{name!r} (precision {runtime.precision.value}); nothing was cached")
                if cache is not None and key is not None:
                    cache.stats.windows_encoded += len(unique)
                    cache.put(key, got)
            emb[:, k] = got[inverse.reshape(-1)]
        out.append(emb)
    return out
