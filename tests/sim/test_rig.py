"""The rig: sensors at their own rates on one clock, deterministic frames, the ROS split reproduces it, done."""

import numpy as np
import pytest

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.devices import sim_arm_and_gripper, sim_tactile_source
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.sim.state import RigState

SENSORS = [SensorSpec.parse("gelsight_mini"), SensorSpec.parse("digit:right"), SensorSpec.parse("digit:left:30")]
ACTIONS = [Action.POUR] * 8 + [Action.WAIT] * 2 + [Action.RETRACT] * 2


def run(seed, sensors=SENSORS, actions=ACTIONS, **kw):
    with SimRig(RigConfig(), sensors, seed=seed, **kw) as rig:
        return [rig.step(a) for a in actions]


def test_sensors_render_at_their_rates_and_layouts():
    results = run(4)
    expect = {"gelsight_mini_left": (25.0, (240, 320, 3)), "digit_right": (60.0, (320, 240, 3)),
              "digit_left": (30.0, (320, 240, 3))}
    for name, (fps, shape) in expect.items():
        frames = [f for r in results for f in r.frames[name]]
        assert len(frames) == pytest.approx(fps * 0.2 * len(results), abs=1)
        stamps = np.array([f.stamp_ns for f in frames])
        assert np.all(np.diff(stamps) == round(1e9 / fps))  # one clock, no gaps, no repeats
        assert all(f.image.shape == shape and f.image.dtype == np.uint8 for f in frames)
        for r in results:  # stamped inside the tick that produced them
            assert all(r.state.t_ns - 0.2e9 < f.stamp_ns <= r.state.t_ns for f in r.frames[name])


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, b, c = run(9, actions=ACTIONS[:4]), run(9, actions=ACTIONS[:4]), run(10, actions=ACTIONS[:4])
    for ra, rb, rc in zip(a, b, c, strict=True):
        assert ra.state == rb.state
        for name in ra.frames:
            assert [f.stamp_ns for f in ra.frames[name]] == [f.stamp_ns for f in rb.frames[name]]
            assert all(np.array_equal(x.image, y.image) for x, y in zip(ra.frames[name], rb.frames[name],
                                                                         strict=True))
            assert not any(np.array_equal(x.image, y.image) for x, y in zip(ra.frames[name], rc.frames[name],
                                                                             strict=False))


def test_render_newest_keeps_only_the_last_frames_of_each_tick():
    full, newest = run(2, actions=ACTIONS[:3]), run(2, actions=ACTIONS[:3], render_newest=2)
    for rf, rn in zip(full, newest, strict=True):
        for name in rf.frames:
            assert len(rn.frames[name]) == 2
            assert [f.stamp_ns for f in rn.frames[name]] == [f.stamp_ns for f in rf.frames[name][-2:]]
            assert np.array_equal(rn.frames[name][-1].image, rf.frames[name][-1].image)


def test_split_processes_reproduce_the_rig():
    """Arm node (SimArm) publishing flat states + a sensor node rendering from them == the in-process rig."""
    seed, spec = 21, SENSORS[0]
    config = RigConfig()
    actions = ACTIONS[:6]
    rig_frames = [f for r in run(seed, sensors=[spec], actions=actions) for f in r.frames[spec.name]]

    sensor_node = sim_tactile_source(spec, episode_seed=seed, index=0)
    arm_node, gripper = sim_arm_and_gripper(config, seed)
    names = RigState.field_names()
    with gripper, arm_node:
        gripper.activate()
        gripper.grasp(force=config.grasp_force)
        sensor_node.update_state(RigState.from_lists(names, arm_node.rig_state().to_list()))
        sensor_node.drain(newest=0)
        for action in actions:
            arm_node.apply_tilt_step(action.tilt_step_deg())
            for _ in range(config.steps_per_tick):
                arm_node.advance()
                sensor_node.update_state(RigState.from_lists(names, arm_node.rig_state().to_list()))
        node_frames = [sensor_node.render(r) for r in sensor_node.drain()]
    assert len(node_frames) == len(rig_frames) == 30
    for a, b in zip(rig_frames, node_frames, strict=True):
        assert a.stamp_ns == b.stamp_ns and np.array_equal(a.image, b.image)


def test_episode_is_done_after_retracting_below_critical_with_everything_landed():
    config = RigConfig(randomize=False)
    with SimRig(config, [], seed=0) as rig:
        result = None
        for _ in range(40):
            result = rig.step(Action.POUR)
        assert rig.poured_g > 5.0 and not result.done
        ticks = 0
        while not result.done:
            result = rig.step(Action.RETRACT)
            ticks += 1
            assert ticks < 60
        s = result.state
        assert s.mass_in_flight_g == 0 and s.flow_g_s == 0
        assert s.tilt_deg <= s.critical_tilt_deg - config.end_margin_deg
        assert s.mass_on_scale_g == pytest.approx(rig.poured_g)
        with pytest.raises(ConfigError, match="done"):
            rig.step(Action.WAIT)


def test_waiting_never_ends_an_episode_but_max_ticks_does():
    with SimRig(RigConfig(max_ticks=30), [], seed=1) as rig:
        results = [rig.step(Action.WAIT) for _ in range(30)]
    assert not any(r.done for r in results[:-1])
    assert results[-1].done and results[-1].timed_out and rig.poured_g == 0.0
    with SimRig(RigConfig(max_ticks=150), [], seed=1) as rig:  # pour, then wait: the flow dies out, not the episode
        results = [rig.step(Action.POUR) for _ in range(40)] + [rig.step(Action.WAIT) for _ in range(100)]
    assert rig.poured_g > 10.0 and results[-1].state.flow_g_s < 0.5 and not any(r.done for r in results)


def test_rig_rejects_duplicate_sensor_names():
    with pytest.raises(ConfigError, match="unique"):
        SimRig(RigConfig(), [SENSORS[0], SENSORS[0]], seed=0)
