"""Confidence intervals on hand-made samples, where the right answer is known."""

import math

import numpy as np
import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.eval.stats import mean_ci, paired_difference


def test_mean_ci_matches_the_t_table():
    # n = 5, mean 3, sample sd sqrt(2.5): half width = t(0.975, 4) * sd / sqrt(5), t = 2.776445 (printed tables)
    est = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert est.mean == 3.0 and est.n == 5
    assert est.half_width == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert est.low == pytest.approx(3.0 - est.half_width) and est.resolved


def test_interval_narrows_with_n_and_covers_the_true_mean():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        est = mean_ci(rng.normal(2.0, 1.0, 30))
        hits += est.low <= 2.0 <= est.high
    assert 0.92 <= hits / 400 <= 0.98  # a 95 % interval covers the mean about 95 % of the time
    assert mean_ci(rng.normal(0, 1, 400)).half_width < mean_ci(rng.normal(0, 1, 25)).half_width


def test_pairing_resolves_what_two_separate_intervals_cannot():
    # The seed decides most of an episode's error; condition a is 0.3 g worse on every seed, give or take 0.1 g.
    rng = np.random.default_rng(1)
    difficulty = rng.uniform(0.0, 4.0, 50)
    b = difficulty
    a = difficulty + 0.3 + rng.normal(0.0, 0.1, 50)
    ca, cb = mean_ci(a), mean_ci(b)
    assert ca.low < cb.high  # the two cells' intervals overlap: unpaired, no verdict
    diff = paired_difference(a, b)
    assert diff.resolved and diff.low > 0.2 and diff.high < 0.4
    assert not paired_difference(difficulty, difficulty[::-1]).resolved  # no real difference: 0 inside


def test_refusals_and_degenerate_cases():
    assert mean_ci([2.5]).low == -math.inf and not mean_ci([2.5]).resolved
    for bad in ([], [1.0, float("nan")], [1.0, float("inf")]):
        with pytest.raises(ConfigError):
            mean_ci(bad)
    with pytest.raises(ConfigError, match="same episodes"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)
