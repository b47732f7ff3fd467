"""A simulated demonstration recorded through the real nodes (sim sensor, sim arm, scripted expert, recorder) reads
back like an episode written directly with EpisodeWriter: same topics, message types and metadata fields."""

import math

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from anytouch_policy.actions import Action
from anytouch_policy.data import EpisodeMeta, EpisodeWriter, read_episode, topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.messages import axis_rotation_quaternion
from anytouch_policy.hardware.sim_live import sim_state_values
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_params import SensorSpec

TARGET_G = 5.0


def _write_direct(path, *, ticks: int = 12) -> None:
    """A few ticks of the in-process rig written with EpisodeWriter's typed helpers (the ROS-free path)."""
    spec = SensorSpec(SensorType.GELSIGHT_MINI, name="left")
    meta = EpisodeMeta(initial_g=100.0, target_g=TARGET_G, sensors={"left": "gelsight_mini"}, source="expert",
                       seed=3)
    with SimRig(RigConfig(), [spec], seed=3) as rig, EpisodeWriter(path, meta=meta) as writer:
        for _ in range(ticks):
            result = rig.step(Action.POUR)
            t = int(result.state.t_ns)
            for frame in result.frames["left"]:
                writer.write_image("left", frame.stamp_ns, frame.image)
            writer.write_action(t, result.action)
            writer.write_step(t, result.applied_step_deg)
            writer.write_float(topics.ARM_TILT, t, result.state.tilt_deg)
            writer.write_float(topics.SCALE_MASS, t, result.state.mass_on_scale_g)
            writer.write_sim_state(t, sim_state_values(result.state, episode_seed=3, randomize=True))
            x, y, z, w = axis_rotation_quaternion("y", math.radians(result.state.tilt_deg))
            types = TYPESTORE.types
            pose = types["geometry_msgs/msg/PoseStamped"](
                header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=t),
                                                    frame_id="link_base"),
                pose=types["geometry_msgs/msg/Pose"](position=types["geometry_msgs/msg/Point"](x=0.3, y=0.0, z=0.25),
                                                     orientation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z,
                                                                                                       w=w)))
            writer.write_raw(topics.ARM_POSE, pose.__msgtype__, t, TYPESTORE.serialize_cdr(pose, pose.__msgtype__))
        writer.close(final_g=result.state.mass_on_scale_g)


def _layout(path) -> dict[str, str]:
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


@pytest.mark.slow
def test_expert_demonstration_through_the_nodes_matches_direct_writing(start_node, tmp_path):
    out = tmp_path / "episodes"
    recorder = start_node("anytouch_ros.recorder_node", timeout_s=120, params={
        "output_dir": str(out), "sensors": ["left"], "sensor_types": ["gelsight_mini"], "rig": "sim",
        "source": "expert", "target_g": TARGET_G, "note": "ros"})
    arm = start_node("anytouch_ros.arm_node", timeout_s=120, params={"backend": "sim", "sim_seed": 1})
    sensor = start_node("anytouch_ros.sensor_node", name="sensor_left", timeout_s=120,
                        params={"backend": "sim", "sensor_type": "gelsight_mini"})
    recorder.wait_for_output("recording .* on episode/event", timeout_s=30)
    expert = start_node("anytouch_ros.expert_node", timeout_s=120, params={
        "target_g": TARGET_G, "episodes": 1, "pause_s": 0.0, "max_ticks": 150})
    assert expert.wait(timeout_s=90) == 0, expert.output()[-2000:]  # one episode, then it exits
    recorder.wait_for_output("episode saved", timeout_s=20)
    for node in (recorder, arm, sensor):
        assert node.stop() == 0

    (path,) = out.glob("episode_*")
    ep = read_episode(path)
    seed = episode_seed(SeedSplit.TRAIN, 1, 1)  # the arm's second episode: the expert's `start` began it
    assert ep.meta.complete and ep.meta.source == "expert" and ep.meta.seed == seed and ep.meta.note == "ros"
    assert ep.meta.extra == {"end_reason": "end"} and abs(ep.meta.final_g - TARGET_G) < 2.0
    assert {a for _, a in ep.actions} == set(Action) and 25 <= len(ep.actions) <= 150
    stamps = ep.frame_stamps["left"]
    span_s = (stamps[-1] - stamps[0]) / 1e9
    assert len(stamps) == pytest.approx(25 * span_s, rel=0.1)  # the native 25 Hz
    tilt_t, tilt = ep.series[topics.ARM_TILT]
    assert np.ptp(tilt) > 1.0 and len(tilt_t) == pytest.approx(25 * span_s, rel=0.15)

    direct = tmp_path / "direct"
    _write_direct(direct)
    other = read_episode(direct)
    assert _layout(path) == _layout(direct)  # same topics, same message types
    assert set(ep.meta.__dict__) == set(other.meta.__dict__) and ep.sensors == other.sensors
    assert set(ep.series) == set(other.series) == {topics.ARM_TILT, topics.SCALE_MASS}
    (mine,), (theirs,) = (e.load_frames("left", [0]).values() for e in (ep, other))
    assert mine.shape == theirs.shape == (240, 320, 3) and mine.dtype == theirs.dtype
