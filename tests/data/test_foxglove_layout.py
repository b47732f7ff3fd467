"""config/foxglove_episode.json, the Foxglove layout for episode bags (docs/ros.md): valid JSON in the layout format
Foxglove exports (configById + a mosaic of panel ids), showing the tactile image, the action, the tilt and the
scale, and every topic and field it reads is in a recorded episode bag. The bag is written by the ROS-free
demonstration recorder with the rig's default sensor name; tests/ros/test_sim_recording.py shows the recorder node
writes the same topics and types (plus arm/pose)."""

import json
from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from anytouch_policy.bringup.plan import DEFAULT_SENSORS
from anytouch_policy.data import topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.demo.record import record_expert_episodes
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec

LAYOUT = Path(__file__).resolve().parents[2] / "config" / "foxglove_episode.json"
RIG_SENSOR = DEFAULT_SENSORS.split(",")[0].split(":")[0]  # record.launch.py's and bringup's default sensor name


@pytest.fixture(scope="module")
def layout():
    return json.loads(LAYOUT.read_text())


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """Per topic of a recorded episode: (message type, message count)."""
    (path,) = record_expert_episodes(tmp_path_factory.mktemp("episodes"), episodes=1, target_g=60.0, seed=0,
                                     sensors=[SensorSpec(SensorType.GELSIGHT_MINI, name=RIG_SENSOR)],
                                     config=RigConfig(max_ticks=3))
    with AnyReader([Path(path)], default_typestore=TYPESTORE) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def placed(node):
    """Panel ids in a mosaic tree (a panel id, or {first, second, direction, splitPercentage})."""
    if isinstance(node, str):
        return [node]
    assert node["direction"] in ("row", "column") and 0 < node["splitPercentage"] < 100
    return placed(node["first"]) + placed(node["second"])


def shown(layout):
    """(topic, field or None) of every image topic and message path the panels read."""
    out = []
    for config in layout["configById"].values():
        if "imageMode" in config:
            out.append((config["imageMode"]["imageTopic"], None))
        for path in config.get("paths", []):
            topic, _, field = path["value"].partition(".")
            out.append((topic, field))
    return out


def test_the_layout_is_foxglove_layout_json(layout):
    assert set(layout) >= {"configById", "layout", "globalVariables", "userNodes", "playbackConfig"}
    ids = placed(layout["layout"])
    assert sorted(ids) == sorted(layout["configById"])  # every panel placed once, every placed panel configured
    assert {panel_id.split("!")[0] for panel_id in ids} == {"Image", "Plot", "StateTransitions"}


def test_it_shows_the_tactile_image_the_action_tilt_and_scale(layout):
    assert {t for t, _ in shown(layout)} == {topics.qualify(t) for t in (
        topics.tactile_topic(RIG_SENSOR), topics.ACTION, topics.ARM_TILT, topics.SCALE_MASS)}


def test_every_topic_and_field_it_reads_is_in_a_recorded_episode(layout, bag):
    for topic, field in shown(layout):
        assert topic in bag, (topic, sorted(bag))
        msgtype, count = bag[topic]
        assert count > 0, topic
        if field is None:
            assert msgtype == "sensor_msgs/msg/Image", (topic, msgtype)
        else:
            assert field in [name for name, _ in TYPESTORE.fielddefs[msgtype][1]], (topic, field, msgtype)
