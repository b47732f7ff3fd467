"""`anytouch bench appearance`: the simulated GelSight Mini against taxim's real one."""

import json

import numpy as np
import pytest

from anytouch_policy.bench.appearance import appearance_gap, histogram_distance, radial_profile
from anytouch_policy.cli.main import main
from anytouch_policy.data.real_frames import load_ball_presses
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.sensor_model import load_sensor_model


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


def test_the_cli_prints_the_gap_of_the_shipped_mini(capsys):
    assert main(["bench", "appearance"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "gelsight_mini" and result["frame"] == [240, 320]
    assert result["presses"]["count"] == 24 and len(result["at_rest"]["radial_profile_real"]) == 16


def test_frames_of_another_shape_are_refused(real):
    with pytest.raises(ConfigError, match="different aspect"):
        appearance_gap(load_sensor_model("digit"), real)
