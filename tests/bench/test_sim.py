"""The sim bench's building blocks run and report what they claim (the full figures: `anytouch bench sim`)."""

from anytouch_policy.bench.sim import PAIRS, expert_errors, frames_digest, render_fps, touch_render_fps
from anytouch_policy.sensors import SensorType


def test_expert_errors_report_conservation_and_limits():
    figures = expert_errors(episodes=2, pairs=PAIRS[:1])
    row = figures["100->60"]
    assert row["mass_conservation_violations"] == 0 and row["limit_g"] == 1.5
    assert row["within_limit"] == (row["mean_abs_error_g"] <= 1.5)


def test_digest_is_reproducible_and_seed_dependent():
    assert frames_digest(seed=3, ticks=2) == frames_digest(seed=3, ticks=2) != frames_digest(seed=4, ticks=2)


def test_render_speed_is_measured():
    assert render_fps(SensorType.DIGIT, frames=20) > 0
    assert touch_render_fps("gelslim", frames=20) > 0
