"""Every arm command is bounded: step, tilt range, rate budget; silence means hold."""

import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import ArmLimits
from anytouch_policy.safety import TiltCommandFilter

LIMITS = ArmLimits(min_tilt_deg=0.0, max_tilt_deg=90.0, max_step_deg=0.5, max_rate_deg_s=2.5, command_timeout_s=0.6)


def test_step_and_range_clamps():
    f = TiltCommandFilter(LIMITS)
    assert f.filter(0.25, 45.0, 0.0) == pytest.approx(0.25)
    assert f.filter(3.0, 45.0, 1.0) == pytest.approx(0.5)  # step limit
    assert f.filter(0.5, 89.9, 2.0) == pytest.approx(0.1)  # top of the range
    assert f.filter(-0.5, 0.2, 3.0) == pytest.approx(-0.2)  # bottom of the range
    assert f.filter(0.25, 95.0, 4.0) == 0.0  # outside the range: never push further out
    assert f.filter(-0.25, 95.0, 5.0) == pytest.approx(-0.25)  # but moving back in is allowed
    assert f.clamped == 4


def test_rate_budget_stops_a_runaway_publisher():
    f = TiltCommandFilter(LIMITS)
    total = sum(f.filter(0.25, 45.0, k * 0.01) for k in range(100))  # 100 Hz for one second
    assert total == pytest.approx(0.5 + 0.99 * 2.5, abs=0.01)  # initial budget + refill at 2.5 deg/s
    f5 = TiltCommandFilter(LIMITS)
    assert sum(f5.filter(0.25, 45.0, k * 0.2) for k in range(5)) == pytest.approx(1.25)  # 5 Hz passes untouched


def test_timeout_means_hold():
    f = TiltCommandFilter(LIMITS)
    assert f.timed_out(0.0)
    f.filter(0.25, 10.0, 1.0)
    assert not f.timed_out(1.5)
    assert f.timed_out(1.61)


@pytest.mark.parametrize("field,value", [("max_step_deg", 0.0), ("command_timeout_s", -1.0), ("max_tilt_deg", -5.0)])
def test_contradictory_limits_rejected(field, value):
    kwargs = dict(LIMITS.__dict__, **{field: value})
    with pytest.raises(ConfigError, match=field if field != "max_tilt_deg" else "min_tilt_deg"):
        TiltCommandFilter(ArmLimits(**kwargs))
