"""The rig split over processes (ROS sim mode) without ROS: the wall-clock arm, sensors fed by sim/state snapshots
(byte-identical frames to the in-process rig), and the expert demonstrator driving episodes tick by tick."""

import numpy as np
import pytest

from anytouch_policy.actions import Action
from anytouch_policy.bringup.backends import make_arm, make_tactile_source
from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.hardware.base import ArmLimits
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.demonstrator import DemoPhase, ExpertDemonstrator
from anytouch_policy.sim.live import EPISODE_FIELDS, parse_sim_state, sim_state_values
from anytouch_policy.sim.params import SeedSplit, episode_seed
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_model import MODEL_DIR
from anytouch_policy.sim.sensor_params import Finger, SensorSpec
from anytouch_policy.sim.state import RigState

START_NS = 1_700_000_000_000_000_000  # "now" on the fake wall clock
TICK_NS = 200_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = START_NS

    def __call__(self) -> int:
        return self.now


def _arm(clock: FakeClock, **params):
    arm = make_arm("sim", **params)
    arm._clock = clock  # the backend's wall clock, fixed for the test
    arm.open()
    return arm


def test_arm_advances_on_the_wall_clock_and_skips_ahead_when_stalled():
    clock = FakeClock()
    arm = _arm(clock, max_lag_s=0.5)
    assert arm.episode_seed == episode_seed(SeedSplit.TRAIN, 0, 0)
    clock.now += 12_345_678
    assert arm.advance_to(clock.now) == 2  # whole 5 ms steps due by now
    clock.now += 3 * 10**9  # the process stalled for 3 s
    assert arm.advance_to(clock.now) == 100 and arm.skipped_steps > 400  # 0.5 s caught up, the rest jumped
    values, stamp = arm.sim_state()
    assert stamp <= clock.now and clock.now - stamp < 5_000_000 and arm.state().stamp_ns == stamp
    snap = parse_sim_state(values)
    assert snap.episode_seed == arm.episode_seed and snap.randomize and snap.initial_g == 100.0
    assert set(values) == set(RigState.field_names()) | set(EPISODE_FIELDS)


def test_new_episodes_refill_the_cylinder_with_the_next_seed_of_the_split():
    clock = FakeClock()
    arm = _arm(clock, seed=7, split="eval", initial_g=80.0)
    first = arm.episode_seed
    for _ in range(30):
        arm.apply_tilt_step(0.25)
        clock.now += TICK_NS
        arm.advance_to(clock.now)
    assert arm.sim.rig_state().mass_left_g < 80.0  # poured some
    second = arm.new_episode()
    assert (first, second) == (episode_seed(SeedSplit.EVAL, 7, 0), episode_seed(SeedSplit.EVAL, 7, 1))
    assert arm.sim.rig_state().mass_left_g == 80.0 and arm.sim.t_ns == 0
    with pytest.raises(ConfigError, match="sim split must be 'train' or 'eval'"):
        make_arm("sim", split="test")


@pytest.mark.parametrize("model", ["", "gelslim", "user file"])
def test_sensor_fed_every_physics_state_renders_the_in_process_rig_frames(model, tmp_path):
    """Same config, seed, sensor index and states: identical bytes; stamps = episode start on the wall clock +
    the rig's sim-clock stamps. (With its default wrist headroom the live arm's states differ from the rig's.)
    The sensor is the shipped model of its sensor_type, another shipped model, or a user's model file."""
    if model == "user file":
        text = (MODEL_DIR / "duragel.yaml").read_text().replace("slot: duragel", "slot: digit")
        (tmp_path / "mine.yaml").write_text(text.replace("fps: 50.0", "fps: 45.0"))
        model = str(tmp_path / "mine.yaml")
    spec = SensorSpec(model or SensorType.DIGIT, name="right", finger=Finger.RIGHT)
    actions = [Action.POUR] * 6 + [Action.WAIT, Action.RETRACT]
    clock = FakeClock()
    arm = _arm(clock, wrist_headroom=1.0)  # the rig's wrist speed exactly
    with SimRig(arm.rig_config, [spec], seed=arm.episode_seed) as rig:
        expected = {f.stamp_ns: f.image for a in actions for f in rig.step(a).frames["right"]}
    source = make_tactile_source("sim", sensor_type="" if model else "digit", model=model, name="right", index=0,
                                 finger="right")
    source.open()
    source.feed(*arm.sim_state())
    at_open = source.read()  # a frame due at t=0 precedes the rig's first tick (SimRig.open drops it)
    got = {}
    for action in actions:
        arm.apply_tilt_step(action.tilt_step_deg())
        for _ in range(40):
            clock.now += 5_000_000
            arm.advance_to(clock.now)
            source.feed(*arm.sim_state())
            if (frame := source.read()) is not None:
                got[frame.stamp_ns - START_NS] = frame.image
    count = round(1.6 * spec.model.format.fps)  # 1.6 s at the model's rate
    assert len(expected) == count and sorted(expected) == sorted(got)
    assert all(np.array_equal(expected[s], got[s]) for s in expected)
    assert next(iter(got.values())).shape == (spec.model.format.height, spec.model.format.width, 3)
    assert source.stats().frames == count + (at_open is not None) and source.diagnostics()["episodes"] == "1"


def test_sensor_model_must_fill_the_sensor_type_slot():
    source = make_tactile_source("sim", sensor_type="gelslim", name="left")  # the shipped model of that slot
    assert source.spec.model.name == "gelslim" and source.sensor_type is SensorType.GELSLIM
    with pytest.raises(ConfigError, match="sim sensor model 'gelslim' fills token slot gelslim, but sensor_type is "
                                          "'digit'"):
        make_tactile_source("sim", sensor_type="digit", model="gelslim", name="left")
    with pytest.raises(ConfigError, match="give its sensor_type"):
        make_tactile_source("sim", name="left")
    with pytest.raises(ConfigError, match="unknown sensor model 'tac3d'"):
        make_tactile_source("sim", model="tac3d", name="left")


def test_sensor_rebuilds_for_a_new_episode_and_refuses_foreign_states():
    clock = FakeClock()
    arm = _arm(clock)
    source = make_tactile_source("sim", sensor_type="gelsight_mini", name="left")
    source.open()
    assert source.stats().state == "waiting"
    source.feed({"tilt_deg": 1.0}, clock.now)  # an arm without the episode fields
    assert source.read() is None and source.diagnostics()["bad_states"] == "1"
    for _ in range(10):
        clock.now += 20_000_000
        arm.advance_to(clock.now)
        source.feed(*arm.sim_state())
    assert source.read(timeout_s=0.1) is not None and source.episode_seed == arm.episode_seed
    arm.new_episode()  # sim time starts over
    clock.now += 50_000_000
    arm.advance_to(clock.now)
    source.feed(*arm.sim_state())
    frame = source.read()
    assert source.episode_seed == arm.episode_seed and source.diagnostics()["episodes"] == "2"
    assert frame is None or frame.stamp_ns <= clock.now


def _run(demo: ExpertDemonstrator, arm, clock: FakeClock, max_ticks: int = 2000) -> list[tuple[str, float]]:
    """The ROS set in one loop: arm node (episode/event start -> new episode), expert at 5 Hz."""
    events = []
    for _ in range(max_ticks):
        out = demo.tick(parse_sim_state(arm.sim_state()[0]))
        if out.event:
            events.append((out.event, arm.mass_on_scale_g))
            if out.event == "start":
                arm.new_episode()
        arm.apply_tilt_step(out.action.tilt_step_deg())
        clock.now += TICK_NS
        arm.advance_to(clock.now)
        if out.finished:
            return events
    raise AssertionError(f"not finished after {max_ticks} ticks: {events}")


def test_expert_demonstrator_pours_episodes_back_to_back():
    clock = FakeClock()
    arm = _arm(clock, seed=3)
    demo = ExpertDemonstrator(target_g=20.0, episodes=2, pause_ticks=3)
    events = _run(demo, arm, clock)
    assert [e for e, _ in events] == ["start", "end", "start", "end"] and demo.phase is DemoPhase.FINISHED
    poured = [g for e, g in events if e == "end"]
    assert all(abs(g - 20.0) < 3.0 for g in poured), poured  # the scripted expert pours to about a gram
    assert arm.episode == 2 and demo.episode_seed == episode_seed(SeedSplit.TRAIN, 3, 2)
    assert demo.tick(None).finished


def test_expert_aborts_a_stuck_episode_and_needs_a_sim_arm():
    clock = FakeClock()
    arm = _arm(clock, limits=ArmLimits(max_tilt_deg=97.0))  # the wrist cannot reach the pouring tilt
    demo = ExpertDemonstrator(target_g=20.0, episodes=1, max_ticks=20)
    assert [e for e, _ in _run(demo, arm, clock)] == ["start", "abort"] and demo.aborted == 1
    stuck = ExpertDemonstrator(target_g=20.0, episodes=1, start_timeout_ticks=5)
    snap = parse_sim_state(sim_state_values(arm.sim.rig_state(), episode_seed=5, randomize=True))
    assert stuck.tick(snap).event == "start"
    with pytest.raises(DeviceError, match="needs the simulated arm"):
        for _ in range(10):
            stuck.tick(snap)  # sim/state never shows a new episode
