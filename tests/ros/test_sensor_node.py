"""Sensor node over DDS: the sim backend renders the in-process rig's frames from sim/state; the replay backend
re-publishes a recorded episode's frames with their spacing; /diagnostics reports rate and counters."""

import signal
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from anytouch_policy.actions import Action
from anytouch_policy.bringup.backends import make_arm
from anytouch_policy.data import EpisodeMeta, EpisodeWriter, topics
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_model import MODEL_DIR
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_ros import qos
from anytouch_ros.conversions import image_from_msg, named_values_to_msg, time_to_ns
from tests.ros.diagnostics import newest_status, status_values

DEEP = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)  # the test wants every frame
START_NS = 1_800_000_000_000_000_000


def _diagnostics(collector, name: str, **expected: str) -> dict[str, str]:
    """The newest /diagnostics status `name` whose values include `expected` (waits for it)."""
    def values(items) -> dict[str, str] | None:
        status = newest_status((item.msg for item in items), name)
        if status is None:
            return None
        found = status_values(status)
        return found if expected.items() <= found.items() else None

    return values(collector.wait_until(lambda items: values(items) is not None, timeout_s=15))


def test_sim_backend_renders_the_rig_frames_from_sim_state(start_node, ros_node):
    arm = make_arm("sim", seed=4, wrist_headroom=1.0)  # the in-process rig's wrist speed: the same states
    clock = iter(range(START_NS, START_NS + 10**12, 5_000_000))
    arm._clock = lambda: next(clock)  # episode start on a fixed wall clock: stamps are predictable
    arm.open()
    actions = [Action.POUR] * 4 + [Action.WAIT] * 2
    spec = SensorSpec(SensorType.GELSIGHT_MINI, name="left")
    with SimRig(arm.rig_config, [spec], seed=arm.episode_seed) as rig:
        expected = {START_NS + f.stamp_ns: f.image for a in actions for f in rig.step(a).frames["left"]}
    frames = ros_node.collect(Image, topics.tactile_topic("left"), DEEP)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    states = ros_node.publisher(JointState, topics.SIM_STATE, qos.SIM_STATE)
    node = start_node("anytouch_ros.sensor_node", name="sensor_left", timeout_s=60,
                      params={"backend": "sim", "sensor_type": "gelsight_mini", "diagnostics_period_s": 0.5})
    ros_node.wait_for_match(states, 1)
    ros_node.wait_for_match(frames.subscription, 1)
    start = arm.sim_state()
    states.publish(named_values_to_msg(*start))
    for action in actions:  # every physics state, paced so no reader queue overflows
        arm.apply_tilt_step(action.tilt_step_deg())
        for _ in range(40):
            arm.advance_to(START_NS + arm.sim.t_ns + 5_000_000)
            states.publish(named_values_to_msg(*arm.sim_state()))
            time.sleep(0.004)
    got = frames.wait_until(lambda items: time_to_ns(items[-1].msg.header.stamp) >= max(expected), timeout_s=20)
    published = {time_to_ns(r.msg.header.stamp): r.msg for r in got}
    assert len(expected) == 30  # 1.2 s at 25 fps
    matched = [s for s in published if s in expected]
    assert len(matched) >= 28  # the image writer keeps 5 frames: a reader starved by a loaded machine loses some
    for stamp in matched:
        msg = published[stamp]
        assert msg.header.frame_id == "left_gel" and msg.encoding == "rgb8"
        assert np.array_equal(image_from_msg(msg), expected[stamp]), stamp
    assert set(published) - set(expected) <= {START_NS}  # at most a frame due at t=0, which SimRig.open() drops
    status = _diagnostics(diagnostics, "/sensor_left: /tactile/left/image_raw", states_received="241")
    assert status["episode_seed"] == str(arm.episode_seed) and status["state"] == "open"
    assert int(status["frames"]) == 30 + (START_NS in published) and status["dropped"] == "0"  # all rendered
    assert node.stop(signal.SIGINT) == 0


def _frame(k: int) -> np.ndarray:
    img = np.full((320, 240, 3), k, np.uint8)
    img[k, :, 2] = 255
    return img


def test_replay_backend_republishes_the_recorded_frames(start_node, ros_node, tmp_path):
    episode = tmp_path / "demo"
    meta = EpisodeMeta(initial_g=100.0, target_g=60.0, sensors={"right": "digit"})
    period = 50_000_000
    with EpisodeWriter(episode, meta=meta) as writer:
        for k in range(12):
            writer.write_image("right", 3_000_000_000 + k * period, _frame(k))
        writer.write_action(3_000_000_000, Action.WAIT)
    frames = ros_node.collect(Image, topics.tactile_topic("right"), DEEP)
    before = time.time_ns()
    node = start_node("anytouch_ros.sensor_node", name="sensor_right", timeout_s=60, params={
        "backend": "replay", "sensor_type": "digit", "replay_bag": str(episode), "replay_loop": True})
    got = frames.wait_until(lambda items: len(items) >= 24, timeout_s=30)
    ks = [int(image_from_msg(r.msg)[0, 0, 0]) for r in got]
    assert any(k2 < k1 for k1, k2 in zip(ks, ks[1:], strict=False)), ks  # it looped
    for r, k in zip(got, ks, strict=True):
        assert np.array_equal(image_from_msg(r.msg), _frame(k))
    stamps = [time_to_ns(r.msg.header.stamp) for r in got]
    assert min(stamps) >= before  # shifted to now
    gaps = [(t2 - t1, (k2 - k1) % 12) for t1, t2, k1, k2 in zip(stamps, stamps[1:], ks, ks[1:], strict=False)]
    assert all(dt == dk * period for dt, dk in gaps)  # the recorded spacing, across the loop too
    assert sum(dk == 1 for _, dk in gaps) >= 0.9 * len(gaps)  # (a frame a loaded node did not publish is counted)
    assert node.stop(signal.SIGINT) == 0
    bad = start_node("anytouch_ros.sensor_node", name="sensor_left", timeout_s=60, params={
        "backend": "replay", "sensor_type": "gelsight_mini", "replay_bag": str(episode), "replay_sensor": "right"})
    assert bad.wait() == 2
    assert "sensor_type 'gelsight_mini' contradicts backend replay, which delivers digit frames" in bad.output()


def test_sim_backend_renders_the_sensor_model_named_by_sim_model(start_node, ros_node, tmp_path):
    """A user's model file through the node's parameters: frames of its resolution; a slot that contradicts
    sensor_type is refused at start-up, naming both."""
    text = (MODEL_DIR / "gelsight.yaml").read_text().replace("resolution: [400, 300]", "resolution: [224, 168]")
    (tmp_path / "wide.yaml").write_text(text)
    arm = make_arm("sim", seed=1)
    arm._clock = lambda: START_NS  # episode start on a fixed wall clock
    arm.open()
    frames = ros_node.collect(Image, topics.tactile_topic("wide"), DEEP)
    states = ros_node.publisher(JointState, topics.SIM_STATE, qos.SIM_STATE)
    node = start_node("anytouch_ros.sensor_node", name="sensor_wide", timeout_s=60, params={
        "backend": "sim", "sensor_type": "gelsight", "sim_model": str(tmp_path / "wide.yaml")})
    ros_node.wait_for_match(states, 1)
    ros_node.wait_for_match(frames.subscription, 1)
    for _ in range(20):  # 0.1 s of sim time: 3 frames at 30 fps
        arm.advance_to(START_NS + arm.sim.t_ns + 5_000_000)
        states.publish(named_values_to_msg(*arm.sim_state()))
        time.sleep(0.004)
    got = frames.wait_until(lambda items: len(items) >= 2, timeout_s=20)
    assert all(image_from_msg(r.msg).shape == (168, 224, 3) for r in got)
    assert node.stop(signal.SIGINT) == 0
    bad = start_node("anytouch_ros.sensor_node", name="sensor_bad", timeout_s=60, params={
        "backend": "sim", "sensor_type": "digit", "sim_model": str(tmp_path / "wide.yaml")})
    assert bad.wait() == 2
    assert "fills token slot gelsight, but sensor_type is 'digit'" in bad.output()
