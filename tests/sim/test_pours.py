"""Pours drawn widely: controllers, flow and its stops, mass bookkeeping, slips of a weak grasp, other cylinders."""

import dataclasses

import numpy as np
import pytest

from anytouch_policy.sim.params import stream_rng
from anytouch_policy.sim.pours import (
    CONTROLLERS,
    SLIP_KINETIC,
    STEPS_PER_TICK,
    PourPlan,
    draw_pour,
    pour_truth,
    simulate,
)
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import GRAVITY_M_S2


def plan_of(controller: str, seed: int = 0, **changes) -> PourPlan:
    for s in range(seed, seed + 500):
        plan = draw_pour(stream_rng(s, 1), s)
        if plan.controller == controller:
            return dataclasses.replace(plan, **changes)
    raise AssertionError(controller)


def every_tick(plan: PourPlan) -> list[int]:
    return list(range(0, round(plan.duration_s / plan.physics.dt_s), STEPS_PER_TICK))


def test_draws_vary_cylinders_fills_speeds_grips_and_controllers():
    plans = [draw_pour(stream_rng(s, 1), s) for s in range(200)]
    assert {p.controller for p in plans} == set(CONTROLLERS)
    for name in ("initial_g", "tare_g", "rate_deg_s", "friction", "duration_s"):
        values = [getattr(p, name) for p in plans]
        assert max(values) > 1.5 * min(values), name
    radii = [p.physics.cylinder_radius_mm for p in plans]
    assert max(radii) > 1.5 * min(radii)
    assert all(p.initial_g < 0.76 * p.physics.capacity_g for p in plans)
    assert sum(len(p.grip) > 2 for p in plans) > 40  # weak phases and regrips
    assert draw_pour(stream_rng(3, 1), 3) == draw_pour(stream_rng(3, 1), 3)


@pytest.mark.parametrize("controller", ["script", "expert"])
def test_pours_flow_stop_and_conserve_mass(controller):
    plan = plan_of(controller, duration_s=40.0, grip=((0.0, 60.0),), friction=0.8)
    states = simulate(plan, every_tick(plan))
    truths = [pour_truth(plan, s) for s in states.values()]
    assert max(t["flow_g_s"] for t in truths) > 0.5  # beads flowed
    assert {t["motion"] for t in truths} >= {"pour", "retract"}
    last = states[max(states)]
    assert last.rig.flow_g_s == 0.0 and last.flow_mean_g_s == 0.0  # and stopped
    for s in states.values():
        total = s.rig.mass_left_g + s.rig.mass_in_flight_g + s.rig.mass_on_scale_g
        assert round(total * 1000) == round(plan.initial_g * 1000)
    poured = [t["poured_g"] for t in truths]
    assert np.all(np.diff(poured) > -1e-9) and poured[-1] > 1.0
    if controller == "expert":
        assert abs(poured[-1] - plan.target_g) < 5.0


def test_a_weak_grasp_slips_and_carries_only_the_kinetic_friction():
    plan = plan_of("carry", duration_s=6.0, friction=0.2)
    weight = (plan.initial_g + plan.tare_g) * GRAVITY_M_S2 / 1000.0
    hold = weight / (2 * 0.2)
    weak = dataclasses.replace(plan, grip=((0.0, 2 * hold), (2.0, 2 * hold), (2.2, 0.7 * hold), (4.0, 0.7 * hold),
                                           (4.2, 2 * hold)))
    states = simulate(weak, range(0, 1200, 10))
    at = {k * 5 / 1000: s for k, s in states.items()}
    assert at[1.0].slip_mm == 0.0 and not at[1.0].slipping and at[1.0].rig.load_n == pytest.approx(weight, rel=1e-4)
    sliding = at[3.0]
    assert sliding.slipping and sliding.slip_mm > 0.0
    assert sliding.rig.load_n == pytest.approx(2 * SLIP_KINETIC * 0.2 * 0.7 * hold)  # what the fingers still carry
    assert pour_truth(weak, sliding)["load_n"] == pytest.approx(weight, rel=1e-4)  # the weight, for probing
    assert not at[5.5].slipping and at[5.5].slip_mm == at[4.5].slip_mm > at[3.0].slip_mm
    strong = simulate(dataclasses.replace(plan, grip=((0.0, 2 * hold),)), range(0, 1200, 10))
    assert max(s.slip_mm for s in strong.values()) == 0.0

    # the slide shows: the contact's micro-texture moves with it
    r = TactileRenderer(sample_sensor_params(SensorSpec("gelsight_mini"), episode_seed=1, index=0))
    still = r.render(sliding.rig, 4)
    assert not np.array_equal(still, r.render(sliding.rig, 4, slip_mm=sliding.slip_mm))
    assert np.array_equal(still, r.render(sliding.rig, 4, slip_mm=0.0))


def test_a_larger_cylinder_presses_a_wider_band():
    plan = plan_of("script")
    state = simulate(plan, [0])[0].rig
    params = sample_sensor_params(SensorSpec("gelsight"), episode_seed=1, index=0)
    widths = []
    for scale in (0.6, 1.0, 1.2):
        r = TactileRenderer(params, cylinder_scale=scale)
        widths.append(int((r.band_depth_px(state.grip_force_n) > 0).sum()))
    assert widths[0] < widths[1] < widths[2]
    with pytest.raises(Exception, match="cylinder_scale"):
        TactileRenderer(params, cylinder_scale=0.0)
