"""Touch scenarios: the drawn plans, the stick-slip of the gel under a moving object, their frames in every model."""

import math

import numpy as np
import pytest

from anytouch_policy.sim.contacts import (
    FIELD_MM,
    STEP_NS,
    TANGENTIAL_N_PER_MM,
    TOUCH_KINDS,
    TWIST_SLIP_DEG,
    Key,
    TouchPlan,
    draw_touch,
    render_touch,
    simulate,
)
from anytouch_policy.sim.heightmap import ForceTable, Sphere
from anytouch_policy.sim.params import stream_rng
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_model import list_sensor_models, load_sensor_model
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params


def steps_of(plan, every_s=0.005):
    return [round(t * 1e9 / STEP_NS) for t in np.arange(0.0, plan.duration_s, every_s)]


def slide_plan(friction=0.5, distance=3.0):
    """Press a sphere 0.4 mm, slide it `distance` mm along x in 0.5 s, hold, let go."""
    sphere = Sphere(6.0)
    keys = (Key(0.0, 0.0, 0.0, 0.0, 0.0, "rest"), Key(0.5, 0.0, 0.0, 0.0, 0.4, "press"),
            Key(0.7, 0.0, 0.0, 0.0, 0.4, "hold"), Key(1.2, distance, 0.0, 0.0, 0.4, "slide"),
            Key(1.6, distance, 0.0, 0.0, 0.4, "hold"), Key(2.0, distance, 0.0, 0.0, 0.0, "release"),
            Key(2.2, distance, 0.0, 0.0, 0.0, "rest"))
    return TouchPlan(shape=sphere, keys=keys, friction=friction)


def test_plans_cover_every_shape_and_motion_and_stay_on_the_gel():
    plans = [draw_touch(stream_rng(s, 5)) for s in range(120)]
    assert {p.shape.kind for p in plans} == set(TOUCH_KINDS)
    assert {k.motion for p in plans for k in p.keys} >= {"rest", "press", "hold", "slide", "rotate", "repress",
                                                          "release"}
    for p in plans:
        assert all(abs(k.x_mm) <= FIELD_MM and abs(k.y_mm) <= FIELD_MM for k in p.keys)
        assert p.keys[0].depth_mm == 0.0 and p.keys[-1].depth_mm == 0.0
        assert all(b.t_s > a.t_s for a, b in zip(p.keys, p.keys[1:], strict=False))
    assert draw_touch(stream_rng(7, 5)) == draw_touch(stream_rng(7, 5))


def test_the_gel_sticks_then_the_object_slides_at_the_friction_limit():
    plan = slide_plan(friction=0.5, distance=3.0)
    states = simulate(plan, steps_of(plan))
    at = {round(k * STEP_NS * 1e-9, 3): s for k, s in states.items()}
    pressed = at[0.6]
    assert pressed.normal_n == pytest.approx(ForceTable(Sphere(6.0), 0.5).force_n(0.4), rel=1e-4)
    assert pressed.shear_x_n == 0.0 and pressed.slip_mm == 0.0 and not pressed.slipping
    limit = 0.5 * pressed.normal_n
    sliding = at[1.0]
    assert sliding.slipping and sliding.motion == "slide"
    assert sliding.shear_x_n == pytest.approx(limit, rel=1e-6)  # saturated: friction carries mu N
    held = at[1.4]
    assert held.shear_x_n == pytest.approx(limit, rel=1e-6) and not held.slipping  # static friction keeps it
    # everything the object moved beyond the stuck displacement slid over the gel
    assert held.slip_mm == pytest.approx(3.0 - limit / TANGENTIAL_N_PER_MM, abs=1e-3)
    released = at[2.1]
    assert released.normal_n == 0.0 and released.shear_x_n == 0.0 and released.depth_mm == 0.0


def test_high_friction_keeps_the_gel_stuck_to_a_short_slide():
    plan = slide_plan(friction=1.2, distance=0.1)
    states = simulate(plan, steps_of(plan))
    assert max(s.slip_mm for s in states.values()) == 0.0
    held = min(states.values(), key=lambda s: abs(s.t_ns - 1.4e9))
    assert held.shear_x_n == pytest.approx(0.1 * TANGENTIAL_N_PER_MM, rel=1e-6)


def test_turning_sticks_up_to_the_twist_limit():
    sphere = Sphere(6.0)
    keys = (Key(0.0, 0.0, 0.0, 0.0, 0.0, "rest"), Key(0.3, 0.0, 0.0, 0.0, 0.4, "press"),
            Key(0.8, 0.0, 0.0, 40.0, 0.4, "rotate"), Key(1.0, 0.0, 0.0, 40.0, 0.4, "hold"))
    plan = TouchPlan(shape=sphere, keys=keys, friction=0.5)
    states = simulate(plan, steps_of(plan))
    last = states[max(states)]
    assert last.twist_deg == pytest.approx(TWIST_SLIP_DEG * 0.5)
    assert last.slip_mm > 0.0 and last.torque_nmm > 0.0
    early = min(states.values(), key=lambda s: abs(s.t_ns - 0.33e9))
    assert 0.0 < early.twist_deg < TWIST_SLIP_DEG * 0.5


@pytest.mark.parametrize("model", list_sensor_models())
def test_a_touch_renders_in_every_model_and_moves_with_the_object(model):
    plan = slide_plan(friction=0.8, distance=3.0)
    states = simulate(plan, steps_of(plan))
    unmarked = load_sensor_model(model).model_copy(update={"markers": None})  # the imprint alone moves
    r = TactileRenderer(sample_sensor_params(SensorSpec(unmarked), episode_seed=2, index=0))
    by_t = {round(k * STEP_NS * 1e-9, 3): s for k, s in states.items()}
    rest, before, after = (render_touch(r, plan.shape, by_t[t], 3).astype(np.int16) for t in (0.1, 0.6, 1.5))
    assert np.abs(before - rest).mean() > 0.3
    # the imprint sits where the object is: its centroid moved by about 3 mm (x, in this model's pixels)
    def centroid(image):
        weight = np.abs(image - rest).sum(axis=2).astype(float)
        weight[weight < 30] = 0
        ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
        return (weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum()

    (x0, y0), (x1, y1) = centroid(before), centroid(after)
    ppm = r.params.model.px_per_mm
    a = math.radians(r.params.mount_angle_deg)
    assert x1 - x0 == pytest.approx(3.0 * ppm * math.cos(a), abs=0.25 * ppm)
    assert abs(y1 - y0) < 0.3 * ppm
