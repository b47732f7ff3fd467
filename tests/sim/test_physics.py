"""Bead physics: critical tilt, flow onset and stop, time of flight, milligram conservation."""

import numpy as np
import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import ArmLimits
from anytouch_policy.sim.devices import SimArm, SimGripper
from anytouch_policy.sim.episode import sample_episode
from anytouch_policy.sim.params import PhysicsParams, RigConfig
from anytouch_policy.sim.physics import BeadFlow, critical_tilt_deg, load_and_torque


def make_arm(seed=0, rate_deg_s=None, **config):
    config = RigConfig(**{"randomize": False, **config})
    setup = sample_episode(config, seed)
    gripper = SimGripper()
    arm = SimArm(setup, config=config, gripper=gripper, rate_deg_s=rate_deg_s)
    gripper.open()
    arm.open()
    gripper.activate()
    gripper.grasp()
    return arm


def run_ticks(arm, step_deg, ticks, check=None):
    for _ in range(ticks):
        arm.apply_tilt_step(step_deg)
        for _ in range(arm.config.steps_per_tick):
            arm.advance()
            if check is not None:
                check(arm)


def test_critical_tilt_rises_as_the_cylinder_empties():
    p = PhysicsParams()
    masses = [150, 120, 100, 60, 40, 20, 5]
    tilts = [critical_tilt_deg(m, p) for m in masses]
    assert all(a < b for a, b in zip(tilts, tilts[1:], strict=False))
    assert critical_tilt_deg(100, p) == pytest.approx(critical_tilt_deg(100, p.__class__(repose_angle_deg=20)) + 5)
    assert critical_tilt_deg(0.0, p) == pytest.approx(p.repose_angle_deg + 90.0)


def test_mass_conserved_to_the_milligram_at_every_step():
    rng = np.random.default_rng(3)
    for seed in range(3):
        arm = make_arm(seed, randomize=True)
        initial = arm.flow.initial_mg

        def check(a, initial=initial):
            f = a.flow
            assert f.left_mg + f.in_flight_mg + f.on_scale_mg == initial
            assert min(f.left_mg, f.in_flight_mg, f.on_scale_mg) >= 0

        for _ in range(150):
            run_ticks(arm, float(rng.choice([0.25, 0.0, -0.25], p=[0.6, 0.25, 0.15])), 1, check)
        assert arm.flow.on_scale_mg > 10_000  # it really poured


def test_pouring_everything_out_still_conserves():
    arm = make_arm(initial_g=30.0, rate_deg_s=20.0,
                   limits=ArmLimits(max_tilt_deg=179.0, max_step_deg=5.0, max_rate_deg_s=50.0))
    run_ticks(arm, 5.0, 60)
    run_ticks(arm, 0.0, 10)
    f = arm.flow
    assert f.left_mg == 0 and f.in_flight_mg == 0 and f.on_scale_mg == 30_000


def test_flow_only_beyond_critical_and_stops_after_retract():
    arm = make_arm()
    run_ticks(arm, 0.0, 25)  # the episode starts below the critical tilt: nothing flows while waiting
    assert arm.flow.left_mg == arm.flow.initial_mg
    first = None
    for _ in range(60):
        run_ticks(arm, 0.25, 1)
        s = arm.rig_state()
        if s.flow_g_s > 0 and first is None:
            first = s
    assert first is not None and first.tilt_deg > first.critical_tilt_deg
    assert arm.rig_state().mass_out_g > 5.0
    run_ticks(arm, -0.25, 30)
    s = arm.rig_state()
    assert s.tilt_deg < s.critical_tilt_deg and s.stream_excess_deg < 0
    left = arm.flow.left_mg
    run_ticks(arm, 0.0, 10)
    assert arm.flow.left_mg == left and arm.rig_state().flow_g_s == 0.0


def test_beads_land_after_the_time_of_flight():
    arm = make_arm()
    fall_ns = round(arm.setup.physics.fall_time_s * 1e9)
    t_first_out = None
    for _ in range(100_000):
        if arm.t_ns % round(arm.config.tick_s * 1e9) == 0:
            arm.apply_tilt_step(0.25)
        arm.advance()
        if t_first_out is None and arm.flow.in_flight_mg > 0:
            t_first_out = arm.t_ns
        if arm.flow.on_scale_mg > 0:
            break
    assert t_first_out is not None and arm.t_ns - t_first_out == fall_ns


def test_outflow_law_without_noise_or_lag():
    p = PhysicsParams(flow_noise=0.0, stream_lag_s=0.0)
    flow = BeadFlow(100.0, p, np.random.default_rng(0))
    tilt = critical_tilt_deg(100.0, p) + 1.0
    out = flow.step(round(p.dt_s * 1e9), tilt)
    assert out == int(p.flow_coeff_g_s * p.dt_s * 1000)  # 1 deg beyond critical: exactly k g/s, no lag, no noise


def test_load_and_torque_follow_mass_and_tilt():
    p = PhysicsParams()
    load_full, _ = load_and_torque(100, 90, tare_g=90, grasp_height_mm=50, physics=p)
    load_less, _ = load_and_torque(40, 90, tare_g=90, grasp_height_mm=50, physics=p)
    assert load_full - load_less == pytest.approx(0.060 * 9.81)
    _, upright = load_and_torque(100, 0, tare_g=90, grasp_height_mm=50, physics=p)
    _, tilted = load_and_torque(100, 90, tare_g=90, grasp_height_mm=50, physics=p)
    assert abs(upright) < abs(tilted)


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="flow_coeff_g_s"):
        PhysicsParams(flow_coeff_g_s=0)
    with pytest.raises(ConfigError, match="initial_g"):
        RigConfig(initial_g=10_000)
    with pytest.raises(ConfigError, match="whole number of physics steps"):
        RigConfig(tick_s=0.2033)
