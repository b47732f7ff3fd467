"""Every arm command is bounded: step, tilt range, rate budget (capped at one step); silence means hold; nothing
non-finite passes; limits lie in their physical ranges; a backend's target never leads the measured tilt."""

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from anytouch_policy.bounds import Interval
from anytouch_policy.control.safety import TiltCommandFilter
from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import LIMIT_RANGES, ArmLimits
from anytouch_policy.sim.kinematics import TiltDrive

LIMITS = ArmLimits(min_tilt_deg=0.0, max_tilt_deg=90.0, max_step_deg=0.5, max_rate_deg_s=2.5, command_timeout_s=0.6)
NAN, INF = float("nan"), float("inf")
#: Examples per property test (each runs a sequence of up to 60 commands); the two together take ~5 s here.
EXAMPLES = 500


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


def test_the_budget_never_holds_more_than_one_step_after_a_silence():
    """Without the cap a 10 s silence would save up 25 deg of budget, and a burst would spend it at once."""
    f = TiltCommandFilter(LIMITS)
    f.filter(0.25, 45.0, 0.0)
    burst = [f.filter(0.5, 45.0, 10.0) for _ in range(20)]
    assert sum(burst) == pytest.approx(LIMITS.max_step_deg)
    assert burst[0] == pytest.approx(0.5) and burst[1:] == [0.0] * 19


def test_timeout_means_hold():
    f = TiltCommandFilter(LIMITS)
    assert f.timed_out(0.0)
    f.filter(0.25, 10.0, 1.0)
    assert not f.timed_out(1.5)
    assert f.timed_out(1.61)


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_non_finite_requests_are_refused_and_are_no_heartbeat(bad):
    f = TiltCommandFilter(LIMITS)
    f.filter(0.25, 45.0, 0.0)
    for t in (0.2, 0.4, 0.6, 0.8):
        with pytest.raises(ConfigError, match="tilt step must be a finite number"):
            f.filter(bad, 45.0, t)
        with pytest.raises(ConfigError, match="measured tilt must be a finite number"):
            f.filter(0.25, bad, t)  # a backend reporting NaN moves nothing either
    assert f.timed_out(0.8)  # only the first step counted: the NaN stream leads to the timeout hold
    assert f.filter(0.5, 45.0, 0.8) == pytest.approx(0.5)  # the budget was not spent by the refusals


@pytest.mark.parametrize(("field", "value", "match"), [
    ("max_step_deg", 0.0, r"ArmLimits.max_step_deg must be in \(0, 5\], got 0.0"),
    ("max_step_deg", NAN, r"max_step_deg must be in \(0, 5\], got nan"),
    ("max_step_deg", 6.0, r"max_step_deg must be in \(0, 5\], got 6.0"),
    ("command_timeout_s", -1.0, r"command_timeout_s must be in \(0, 5\]"),
    ("command_timeout_s", INF, r"command_timeout_s must be in \(0, 5\], got inf"),
    ("max_rate_deg_s", INF, r"max_rate_deg_s must be in \(0, 60\], got inf"),
    ("max_tilt_deg", 720.0, r"max_tilt_deg must be in \[0, 180\], got 720.0"),
    ("max_tilt_deg", -5.0, r"max_tilt_deg must be in \[0, 180\]"),
    ("min_tilt_deg", NAN, r"min_tilt_deg must be in \[-180, 180\), got nan"),
    ("min_tilt_deg", 95.0, r"min_tilt_deg \(95.0\) must be below max_tilt_deg \(90.0\)"),
])
def test_limits_outside_their_physical_range_are_refused(field, value, match):
    with pytest.raises(ConfigError, match=match):
        ArmLimits(**dict(LIMITS.__dict__, **{field: value}))


def test_limit_ranges_are_finite_and_hold_the_defaults():
    defaults = ArmLimits()
    for name, interval in LIMIT_RANGES.items():
        assert getattr(defaults, name) in interval and math.isfinite(interval.low) and math.isfinite(interval.high)
    assert str(LIMIT_RANGES["max_step_deg"]) == "(0, 5]" and Interval.parse(" [ -1.5 , 2) ") == Interval(
        -1.5, 2.0, high_open=True)


def test_the_target_never_leads_the_measured_tilt_by_more_than_one_step():
    lim = ArmLimits(max_step_deg=0.5)
    assert lim.target_step(0.25, target_deg=10.0, measured_deg=10.0) == 0.25
    assert lim.target_step(0.25, target_deg=10.4, measured_deg=10.0) == pytest.approx(0.1)  # capped at measured + 0.5
    assert lim.target_step(0.25, target_deg=10.5, measured_deg=10.0) == 0.0  # wait for the arm
    assert lim.target_step(-0.25, target_deg=10.1, measured_deg=10.0) == -0.25  # the arm keeps up: as asked
    assert lim.target_step(-0.25, target_deg=10.5, measured_deg=10.0) == -0.5  # a retract stops the lead at once
    assert lim.target_step(-0.25, target_deg=9.6, measured_deg=10.0) == pytest.approx(-0.1)  # symmetric
    assert lim.target_step(0.25, target_deg=9.5, measured_deg=10.0) == 0.5  # a pour stops a retract at once
    assert lim.target_step(3.0, target_deg=10.0, measured_deg=10.0) == 0.5  # the step limit
    assert lim.target_step(0.25, target_deg=119.9, measured_deg=119.9) == pytest.approx(0.1)  # the range
    assert lim.target_step(0.25, target_deg=125.0, measured_deg=125.0) == 0.0  # outside: never further out
    assert lim.target_step(-0.25, target_deg=125.0, measured_deg=125.0) == -0.25  # but back towards it
    for bad in (NAN, INF):
        with pytest.raises(ConfigError, match="finite"):
            lim.target_step(bad, target_deg=10.0, measured_deg=10.0)
        with pytest.raises(ConfigError, match="measured tilt"):
            lim.target_step(0.25, target_deg=10.0, measured_deg=bad)


# -- properties ---------------------------------------------------------------------------------------------------

REQUESTS = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([NAN, INF, -INF, 1e300, -1e300, 0.0, 0.25, -0.25]))
#: seconds between commands: bursts (0), jittery 5-50 Hz, silences of up to 20 s
GAPS = st.one_of(st.just(0.0), st.floats(0.0, 0.3), st.floats(0.3, 20.0))


@st.composite
def limits_and_start(draw) -> tuple[ArmLimits, float]:
    """Limits and a start tilt inside their range, ends included. The start is drawn between the ends, not computed
    as min + u * (max - min): that sum can round a hair above max_tilt_deg, a start the arm rightly refuses."""
    lo = draw(st.floats(-90.0, 90.0))
    hi = draw(st.floats(max(lo + 1.0, 0.0), 180.0))
    lim = ArmLimits(min_tilt_deg=lo, max_tilt_deg=hi, max_step_deg=draw(st.floats(0.01, 5.0)),
                    max_rate_deg_s=draw(st.floats(0.1, 60.0)), command_timeout_s=draw(st.floats(0.05, 5.0)))
    return lim, draw(st.one_of(st.sampled_from([lo, hi]), st.floats(lo, hi)))


#: Limits whose max_tilt_deg the old draw (min + 1.0 * (max - min)) overshot by one rounding step.
ROUNDING_CASE = (ArmLimits(min_tilt_deg=-34.293938112176704, max_tilt_deg=44.377281519042576), 44.377281519042576)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(setup=limits_and_start(), commands=st.lists(st.tuples(REQUESTS, GAPS), max_size=60))
def test_property_filter_bounds_rate_range_and_refuses_non_finite(setup, commands):
    """For any requests and times: no interval sees more motion than one step plus the rate budget of its length,
    the tilt (a backend that follows at once) never leaves its range, and nothing non-finite reaches the backend."""
    lim, tilt = setup
    f = TiltCommandFilter(lim)
    t, applied, backend = 0.0, [], []
    for request, gap in commands:
        t += gap
        try:
            step = f.filter(request, tilt, t)
        except ConfigError:
            assert not math.isfinite(request)
            continue
        assert math.isfinite(request) and math.isfinite(step)
        assert abs(step) <= abs(request) and step * request >= 0  # same sign, never larger
        backend.append(step)
        applied.append((t, abs(step)))
        tilt += step
        assert lim.min_tilt_deg - 1e-9 <= tilt <= lim.max_tilt_deg + 1e-9
    assert all(math.isfinite(s) for s in backend)
    for i, (t0, _) in enumerate(applied):
        moved = 0.0
        for t1, amount in applied[i:]:
            moved += amount
            assert moved <= lim.max_step_deg + lim.max_rate_deg_s * (t1 - t0) + 1e-9


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(setup=limits_and_start(), wrist=st.floats(0.1, 60.0), commands=st.lists(st.tuples(REQUESTS, GAPS), max_size=60))
@example(setup=ROUNDING_CASE, wrist=1.0, commands=[(0.25, 0.2), (-0.25, 0.2)])
def test_property_a_backend_target_stays_within_one_step_of_the_wrist(setup, wrist, commands):
    """The sim backend's drive behind the filter: whatever arrives, the target stays within one step of the wrist
    (so `wait` stops it within one step), inside the range, and finite."""
    lim, start = setup
    f = TiltCommandFilter(lim)
    drive = TiltDrive(start, limits=lim, rate_deg_s=wrist)
    t = 0.0
    for request, gap in commands:
        for _ in range(min(round(gap / 0.005), 400)):  # the wrist moves between commands (5 ms physics steps)
            drive.advance(0.005, round(t * 1e9))
            t += 0.005
        before = drive.target_deg
        try:
            drive.command(f.filter(request, drive.tilt_deg, t), round(t * 1e9))
        except ConfigError:
            assert not math.isfinite(request) and drive.target_deg == before
        else:
            assert (drive.target_deg - before) * request >= 0  # never against the request
        assert math.isfinite(drive.target_deg) and math.isfinite(drive.tilt_deg)
        assert abs(drive.target_deg - drive.tilt_deg) <= lim.max_step_deg + 1e-9
        assert lim.min_tilt_deg - 1e-9 <= drive.target_deg <= lim.max_tilt_deg + 1e-9
