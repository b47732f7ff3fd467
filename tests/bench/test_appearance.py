"""`anytouch bench appearance`: the simulated GelSight Mini against taxim's real one. The fitted model must be closer
to the real frames than the model before the fit (tests/sim/models/), on every figure of the gap."""

import json
from pathlib import Path

import numpy as np
import pytest

from anytouch_policy.bench.appearance import appearance_gap, histogram_distance, radial_profile
from anytouch_policy.cli.main import main
from anytouch_policy.data.real_frames import load_ball_presses
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.sensor_model import load_sensor_model

UNCALIBRATED = Path(__file__).resolve().parents[1] / "sim" / "models" / "gelsight_mini_uncalibrated.yaml"


@pytest.fixture(scope="module")
def real():
    return load_ball_presses()


def test_the_measures_see_what_they_should():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    assert histogram_distance(image, image) == pytest.approx(0.0, abs=1e-6)
    assert histogram_distance(image, np.full_like(image, 7)) > 0.9
    ys, xs = np.mgrid[0:60, 0:80]
    bright_centre = np.repeat((255 * (np.hypot(xs - 40, ys - 30) < 10)).astype(np.uint8)[..., None], 3, 2)
    profile = radial_profile(bright_centre)
    assert profile.shape == (16, 3) and profile[0, 0] == 255 and profile[-1].max() == 0


def test_the_fitted_mini_is_closer_to_the_real_one_than_before(real, capsys):
    assert main(["bench", "appearance"]) == 0
    after = json.loads(capsys.readouterr().out)
    before = appearance_gap(load_sensor_model(UNCALIBRATED), real)
    for key in ("histogram_bhattacharyya", "radial_profile_l1", "pixel_l1"):
        assert after["at_rest"][key] < 0.5 * before["at_rest"][key], key
    sim, measured = np.array(after["at_rest"]["sim"]["mean"]), np.array(after["at_rest"]["real"]["mean"])
    assert np.abs(sim - measured).max() < 5  # the real background's mean RGB is about (83, 99, 113)
    assert abs(after["at_rest"]["noise_sim"] / after["at_rest"]["noise_real"] - 1) < 0.25
    presses = after["presses"]
    assert presses["count"] == 24 and 0.4 < presses["energy_ratio"] < 2.5
    assert abs(presses["radius_sim"] / presses["radius_real"] - 1) < 0.15
    assert abs(np.log(presses["energy_ratio"])) < abs(np.log(before["presses"]["energy_ratio"]))


def test_frames_of_another_shape_are_refused(real):
    with pytest.raises(ConfigError, match="different aspect"):
        appearance_gap(load_sensor_model("digit"), real)
