"""Does the sim make dynamics matter? A fixed feature map plus ridge regression, fed one frame or a 3-frame window.

The same feature map serves both inputs: per frame a colour thumbnail and pooled high-pass energy (so a single frame
gets a non-linear view too), plus pooled absolute differences between consecutive frames. A single frame goes in as
a static clip (the frame repeated, as AnyTouch feeds images), so its differences are zero. Targets are the ground
truth at the tick: the outflow averaged over the last control tick, and the mass poured so far. Episodes come from
the scripted expert; train and test sets are split by episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.tactile import WINDOW_FRAMES, static_window

THUMB = (16, 12)  # width, height of the pooled grids


def window_features(window: Sequence[np.ndarray]) -> np.ndarray:
    """Feature vector of a window of RGB uint8 frames, oldest first."""
    feats: list[np.ndarray] = []
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in window]
    newest = window[-1]
    feats.append(cv2.resize(newest, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0)
    feats.append(cv2.resize(np.abs(cv2.Laplacian(grays[-1], cv2.CV_32F)), THUMB,
                            interpolation=cv2.INTER_AREA).ravel() / 16.0)
    for older, newer in zip(grays[:-1], grays[1:], strict=True):
        feats.append(cv2.resize(np.abs(newer - older), THUMB, interpolation=cv2.INTER_AREA).ravel() / 16.0)
    return np.concatenate(feats)


@dataclass(frozen=True)
class ProbeData:
    static: np.ndarray  # N x D features of the newest frame as a static clip
    dynamic: np.ndarray  # N x D features of the 3-frame window
    flow_g_s: np.ndarray  # N outflow over the last tick
    poured_g: np.ndarray  # N mass out of the cylinder
    episode: np.ndarray  # N episode index (for the split)


def collect(*, episodes: int, sensor: SensorSpec, seed: int = 0, config: RigConfig | None = None,
            target_g: float = 60.0) -> ProbeData:
    """Run the expert for `episodes` episodes (seed range TRAIN, run `seed`) and featurise every tick."""
    config = config or RigConfig()
    rows_s, rows_d, flows, poured, eps = [], [], [], [], []
    for i in range(episodes):
        expert = ScriptedExpert()
        with SimRig(config, [sensor], seed=episode_seed(SeedSplit.TRAIN, seed, i), render_newest=WINDOW_FRAMES) as rig:
            expert.begin_episode(rig.setup, target_g=target_g, config=config)
            prev = rig.state()
            expert.observe(prev)
            done = False
            while not done:
                result = rig.step(expert())
                expert.observe(result.state)
                frames = [f.image for f in result.frames[sensor.name]]
                if len(frames) == WINDOW_FRAMES:
                    rows_s.append(window_features(static_window(frames[-1])))
                    rows_d.append(window_features(frames))
                    flows.append((result.state.mass_out_g - prev.mass_out_g) / config.tick_s)
                    poured.append(result.state.mass_out_g)
                    eps.append(i)
                prev, done = result.state, result.done
    return ProbeData(np.array(rows_s), np.array(rows_d), np.array(flows), np.array(poured), np.array(eps))


def ridge_r2(x: np.ndarray, y: np.ndarray, train: np.ndarray, *, alphas: Sequence[float] = (0.1, 1, 10, 100, 1000)
             ) -> float:
    """Test R^2 of ridge regression (standardised inputs; alpha picked on a held-out part of the training set)."""
    test = ~train
    if train.sum() < 10 or test.sum() < 10:
        raise ConfigError("ridge_r2 needs at least 10 training and 10 test samples")
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mu) / sd
    idx = np.flatnonzero(train)
    fit, val = idx[: int(0.75 * len(idx))], idx[int(0.75 * len(idx)):]

    def solve(rows: np.ndarray, alpha: float) -> np.ndarray:
        a = np.c_[z[rows], np.ones(len(rows))]
        reg = alpha * np.eye(a.shape[1])
        reg[-1, -1] = 0.0
        return np.linalg.solve(a.T @ a + reg, a.T @ y[rows])

    def r2(rows: np.ndarray, w: np.ndarray) -> float:
        pred = np.c_[z[rows], np.ones(len(rows))] @ w
        residual, total = float(((y[rows] - pred) ** 2).sum()), float(((y[rows] - y[rows].mean()) ** 2).sum())
        if total == 0.0:  # a constant target: R² is undefined; scikit-learn's finite convention (1 if exact, else 0)
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total

    best = max(alphas, key=lambda a: r2(val, solve(fit, a)))
    return r2(np.flatnonzero(test), solve(idx, best))


def dynamics_r2(data: ProbeData, *, test_fraction: float = 0.25) -> dict[str, float]:
    """R^2 of flow rate and poured mass from one frame vs a 3-frame window (test episodes: the last fraction)."""
    n_eps = int(data.episode.max()) + 1
    train = data.episode < n_eps - max(1, round(test_fraction * n_eps))
    return {
        "flow_r2_1frame": ridge_r2(data.static, data.flow_g_s, train),
        "flow_r2_3frame": ridge_r2(data.dynamic, data.flow_g_s, train),
        "poured_r2_1frame": ridge_r2(data.static, data.poured_g, train),
        "poured_r2_3frame": ridge_r2(data.dynamic, data.poured_g, train),
    }
