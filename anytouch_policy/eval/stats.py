"""Means and paired differences with 95 % confidence intervals, for every comparison the project prints.

Evaluation cells share their episode seeds, so two cells compare episode by episode: the paired difference has a far
smaller spread than either cell (the seed decides most of an episode's difficulty). Intervals are Student-t intervals:
per-episode errors are skewed, but 50 or more of them make the mean close to normal, and t is what a reader checks.

    cell = mean_ci(errors)                        # Estimate(mean, low, high, n)
    diff = paired_difference(dynamic, static)     # dynamic - static on the same seeds; diff.resolved: 0 outside
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from anytouch_policy.errors import ConfigError

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean and its confidence interval over n values."""

    mean: float
    low: float
    high: float
    n: int
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    @property
    def resolved(self) -> bool:
        """The interval excludes 0 (for a difference: the two sides really differ at this level)."""
        return self.low > 0.0 or self.high < 0.0

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def to_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "half_width": self.half_width, "resolved": self.resolved}


def mean_ci(values: Sequence[float], *, level: float = LEVEL) -> Estimate:
    """Mean with its two-sided Student-t interval; a single value gets an infinite interval, never a false one."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ConfigError(f"a confidence interval needs a non-empty list of values, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError("a confidence interval needs finite values (an episode error is NaN or inf)")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"confidence level must be in (0, 1), got {level}")
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(mean, -math.inf, math.inf, 1, level)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Estimate(mean, mean - half, mean + half, int(x.size), level)


def paired_difference(a: Sequence[float], b: Sequence[float], *, level: float = LEVEL) -> Estimate:
    """Mean of a[i] - b[i] with its interval; a and b are the same episodes (seeds) under two conditions."""
    if len(a) != len(b):
        raise ConfigError(f"a paired difference needs the same episodes on both sides, got {len(a)} and {len(b)}")
    return mean_ci(np.asarray(a, np.float64) - np.asarray(b, np.float64), level=level)
