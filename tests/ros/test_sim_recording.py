"""A simulated demonstration recorded through the real nodes (sim sensor, sim arm, scripted expert, recorder) reads
back like one written directly with EpisodeWriter by anytouch_policy.demo.record (the ROS-free demonstration
recorder training uses): same topics and message types (plus arm/pose, which only a live arm publishes), same
metadata fields, same timelines."""

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from anytouch_policy.actions import Action
from anytouch_policy.data import read_episode, topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.demo.record import record_expert_episodes
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.sensor_params import SensorSpec

TARGET_G = 5.0


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
    assert {a for _, a in ep.actions} == set(Action) and 10 <= len(ep.actions) <= 150
    stamps = ep.frame_stamps["left"]
    span_s = (stamps[-1] - stamps[0]) / 1e9
    assert len(stamps) == pytest.approx(25 * span_s, rel=0.1)  # the native 25 Hz
    tilt_t, tilt = ep.series[topics.ARM_TILT]
    assert np.ptp(tilt) > 1.0 and len(tilt_t) == pytest.approx(25 * span_s, rel=0.15)

    (direct,) = record_expert_episodes(tmp_path / "direct", episodes=1, seed=3, config=RigConfig(), target_g=TARGET_G,
                                       sensors=[SensorSpec(SensorType.GELSIGHT_MINI, name="left")])
    other = read_episode(direct)
    live, written = _layout(path), _layout(direct)
    assert set(live) - set(written) == {"/" + topics.ARM_POSE} and set(written) <= set(live)
    assert all(live[topic] == msgtype for topic, msgtype in written.items())  # same message types
    assert set(ep.meta.__dict__) == set(other.meta.__dict__) and ep.sensors == other.sensors
    assert (ep.meta.source, ep.meta.rig, ep.meta.extra) == (other.meta.source, other.meta.rig, other.meta.extra)
    assert set(ep.series) == set(other.series) == {topics.ARM_TILT, topics.SCALE_MASS}
    # both measure the tilt from upright: an episode starts pre-tilted near the critical tilt, far from 0
    assert abs(float(other.series[topics.ARM_TILT][1][0]) - float(tilt[0])) < 20.0 and float(tilt[0]) > 45.0
    (mine,), (theirs,) = (e.load_frames("left", [0]).values() for e in (ep, other))
    assert mine.shape == theirs.shape == (240, 320, 3) and mine.dtype == theirs.dtype
