"""Feature statistics in LeRobot's stats.json convention, computed exactly (every frame, every pixel).

    vectors (N,) or (N, D)  -> min, max, mean, std (population), count [N], q01 q10 q50 q90 q99; shape (1,) or (D,)
    RGB images              -> the same per channel, divided by 255, shape (3, 1, 1); count = frames

LeRobot estimates image statistics from a sample of frames read at every 2nd pixel, and quantiles from histograms
averaged over episodes (docs/export.md); the keys, shapes and units here are the same, the
values are the exact ones (numpy's "linear" quantiles). uint8 images are counted in 256-bin histograms per channel,
so a dataset's statistics are the sum of its episodes' histograms and no pixel is held twice.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of a column: (N,) gives shape (1,) per statistic, (N, D) gives (D,)."""
    data = np.asarray(values, np.float64)
    flat = data.reshape(len(data), -1)
    stats = {"min": flat.min(axis=0), "max": flat.max(axis=0), "mean": flat.mean(axis=0), "std": flat.std(axis=0),
             "count": np.array([len(data)], np.int64)}
    for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
        stats[key] = np.quantile(flat, q, axis=0)
    return stats


class ImageHistogram:
    """Per-channel counts of the 256 values of uint8 RGB frames, and how many frames went in."""

    def __init__(self) -> None:
        self.counts = np.zeros((3, 256), np.int64)
        self.frames = 0

    def add(self, rgb: np.ndarray, times: int = 1) -> None:
        """Count one H x W x 3 uint8 frame `times` times (a frame that fills several rows)."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 uint8 frame, got {rgb.shape} {rgb.dtype}")
        for c in range(3):
            self.counts[c] += times * np.bincount(rgb[..., c].ravel(), minlength=256)
        self.frames += times

    @classmethod
    def merged(cls, parts: Iterable[ImageHistogram]) -> ImageHistogram:
        total = cls()
        for part in parts:
            total.counts += part.counts
            total.frames += part.frames
        return total

    def stats(self) -> dict[str, np.ndarray]:
        """Per-channel statistics scaled to [0, 1], each of shape (3, 1, 1); count = frames."""
        if self.frames == 0:
            raise ValueError("no frames counted")
        levels = np.arange(256, dtype=np.float64)
        n = self.counts.sum(axis=1).astype(np.float64)
        mean = self.counts @ levels / n
        var = (self.counts * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
        present = self.counts > 0
        stats = {"min": present.argmax(axis=1).astype(np.float64),
                 "max": (255 - present[:, ::-1].argmax(axis=1)).astype(np.float64),
                 "mean": mean, "std": np.sqrt(var)}
        for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
            stats[key] = np.array([_histogram_quantile(self.counts[c], q) for c in range(3)])
        out = {k: (v / 255.0).reshape(3, 1, 1) for k, v in stats.items()}
        out["count"] = np.array([self.frames], np.int64)
        return out


def _histogram_quantile(counts: np.ndarray, q: float) -> float:
    """np.quantile(values, q) (method "linear") of the values a histogram of integer levels counts."""
    cumulative = np.cumsum(counts)
    position = q * (cumulative[-1] - 1)
    below = int(np.floor(position))
    lo = np.searchsorted(cumulative, below, side="right")
    hi = np.searchsorted(cumulative, below + 1, side="right") if position > below else lo
    return float(lo + (position - below) * (hi - lo))


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, list]]:
    """Nested lists, as LeRobot's serialize_dict writes stats.json."""
    return {feature: {k: np.asarray(v).tolist() for k, v in s.items()} for feature, s in stats.items()}
