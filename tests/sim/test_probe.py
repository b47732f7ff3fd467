"""Dynamics matter: flow rate is far better predicted from a 3-frame window than from one frame."""

import numpy as np

from anytouch_policy.sim.probe import collect, dynamics_r2, window_features
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.tactile import static_window


def test_flow_needs_the_window_poured_mass_does_not():
    data = collect(episodes=10, sensor=SensorSpec.parse("gelsight_mini"), seed=7)
    assert len(data.flow_g_s) > 500 and data.flow_g_s.max() > 3.0
    r2 = dynamics_r2(data, test_fraction=0.3)
    assert r2["flow_r2_3frame"] > 0.7
    assert r2["flow_r2_3frame"] - r2["flow_r2_1frame"] > 0.2
    # The load (how much has poured) is a static signal: one frame reads it about as well as three.
    assert r2["poured_r2_1frame"] > 0.5 and abs(r2["poured_r2_3frame"] - r2["poured_r2_1frame"]) < 0.1


def test_a_static_clip_has_no_frame_differences():
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    feats = window_features(static_window(frame))
    grid = 16 * 12  # thumbnail (3 channels) + high-pass energy + 2 frame differences, each on a 16 x 12 grid
    assert feats.size == 6 * grid
    assert feats[: 4 * grid].any() and not feats[4 * grid:].any()
