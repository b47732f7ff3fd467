"""rclpy message conversions: round trips, strides and byte order, and agreement with the core's rosbags messages."""

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, JointState

from anytouch_policy.actions import Action
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.messages import image_msg, joint_state_msg, pose_step_msg
from anytouch_policy.errors import ConfigError, MessageError
from anytouch_ros.conversions import (
    action_from_msg,
    action_to_msgs,
    embedding_from_msg,
    embedding_to_msg,
    image_from_msg,
    image_to_msg,
    named_values_from_msg,
    named_values_to_msg,
    ns_to_time,
    step_from_msg,
    time_to_ns,
)

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, 1_795_599_152_085_593_988, -1])
def test_time_roundtrip(ns):
    stamp = ns_to_time(ns)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert time_to_ns(stamp) == ns
    assert time_to_ns(Time(sec=3, nanosec=5)) == 3_000_000_005


def test_image_roundtrip_through_cdr_and_data_is_an_array():
    rgb = RNG.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    msg = image_to_msg(rgb, 1_700_000_000_123_456_789, frame_id="left_gel")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (240, 320, 960, "rgb8")
    back = deserialize_message(serialize_message(msg), Image)
    assert type(back.data).__name__ == "array"  # what rclpy hands a subscriber
    np.testing.assert_array_equal(image_from_msg(back), rgb)
    assert time_to_ns(back.header.stamp) == 1_700_000_000_123_456_789 and back.header.frame_id == "left_gel"


def test_image_strides_views_padding_and_bgr():
    big = RNG.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    view = big[::2, 10:70]  # non-contiguous view: rows packed on the way out
    np.testing.assert_array_equal(image_from_msg(image_to_msg(view, 0, frame_id="f")), view)
    padded = Image(height=4, width=5, encoding="rgb8", step=16)  # 15 bytes of pixels + 1 of padding per row
    rows = RNG.integers(0, 256, (4, 16), dtype=np.uint8)
    padded.data = rows.tobytes()
    np.testing.assert_array_equal(image_from_msg(padded), rows[:, :15].reshape(4, 5, 3))
    bgr = image_to_msg(view, 0, frame_id="f")
    bgr.encoding = "bgr8"
    np.testing.assert_array_equal(image_from_msg(bgr), view[..., ::-1])


@pytest.mark.parametrize(("change", "match"), [
    ({"encoding": "mono8"}, "encoding 'mono8'"),
    ({"step": 10}, "do not fit"),
    ({"height": 5}, "do not fit"),
])
def test_image_layout_errors_name_the_problem(change, match):
    msg = image_to_msg(np.zeros((4, 5, 3), np.uint8), 0, frame_id="left_gel")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(MessageError, match=match):
        image_from_msg(msg)
    with pytest.raises(MessageError, match="H x W x 3 uint8"):
        image_to_msg(np.zeros((4, 5), np.uint8), 0, frame_id="left_gel")


def test_image_fields_equal_the_core_bag_message():
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    raw = serialize_message(image_to_msg(rgb, 42, frame_id="l_gel"))
    ours = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    core = image_msg(TYPESTORE, rgb, 42, frame_id="l_gel")
    for field in ("height", "width", "encoding", "is_bigendian", "step"):
        assert getattr(ours, field) == getattr(core, field)
    assert (ours.header.stamp, ours.header.frame_id) == (core.header.stamp, core.header.frame_id)
    np.testing.assert_array_equal(ours.data, core.data)


def test_embedding_roundtrip_and_byte_order():
    vec = RNG.standard_normal(768).astype(np.float64)
    msg = embedding_to_msg(vec, 5, sensor="left")
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.header.frame_id) == (1, 768, 3072, "32FC1", "left")
    back = embedding_from_msg(deserialize_message(serialize_message(msg), Image))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, vec.astype(np.float32))
    swapped = Image(height=1, width=3, encoding="32FC1", is_bigendian=1, step=12)
    swapped.data = np.array([1.5, -2.0, 3.25], ">f4").tobytes()
    np.testing.assert_array_equal(embedding_from_msg(swapped), [1.5, -2.0, 3.25])
    with pytest.raises(MessageError, match="1 x D 32FC1"):
        embedding_from_msg(image_to_msg(np.zeros((1, 3, 3), np.uint8), 0, frame_id="left"))
    with pytest.raises(MessageError, match="non-empty float vector"):
        embedding_to_msg(np.zeros((2, 3), np.float32), 0, sensor="left")


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(("axis", "delta"), [("y", 0.25), ("x", 0.5), ("z", 1.0)])
def test_action_step_equals_the_core_pose_step(action, axis, delta):
    label, step = action_to_msgs(action, 1_795_000_000_200_000_000, delta_phi_deg=delta, frame_id="tool", axis=axis)
    assert action_from_msg(label) is action
    ours = TYPESTORE.deserialize_cdr(serialize_message(step), "geometry_msgs/msg/PoseStamped")
    core = pose_step_msg(TYPESTORE, 1_795_000_000_200_000_000, action.tilt_step_deg(delta), frame_id="tool", axis=axis)
    assert ours.header.frame_id == core.header.frame_id == "tool"
    assert ours.header.stamp == core.header.stamp
    for part in ("x", "y", "z"):
        assert getattr(ours.pose.position, part) == 0.0
    for part in ("x", "y", "z", "w"):
        assert getattr(ours.pose.orientation, part) == getattr(core.pose.orientation, part)
    assert step_from_msg(step, axis=axis, frame_id="tool") == pytest.approx(action.tilt_step_deg(delta), abs=1e-12)
    q = step.pose.orientation
    assert math.isclose(q.x**2 + q.y**2 + q.z**2 + q.w**2, 1.0)


def test_step_from_msg_refuses_what_is_not_a_tilt_step():
    _, step = action_to_msgs(Action.POUR, 0, delta_phi_deg=0.25, frame_id="tool", axis="y")
    with pytest.raises(MessageError, match="expected frame_id 'gripper'"):
        step_from_msg(step, axis="y", frame_id="gripper")
    with pytest.raises(MessageError, match="not about the x axis"):
        step_from_msg(step, axis="x", frame_id="tool")
    moved = deserialize_message(serialize_message(step), PoseStamped)
    moved.pose.position.z = 0.01
    with pytest.raises(MessageError, match="pure rotations"):
        step_from_msg(moved, axis="y", frame_id="tool")
    with pytest.raises(MessageError, match="tilt axis"):
        action_to_msgs(Action.POUR, 0, delta_phi_deg=0.25, frame_id="tool", axis="w")
    for bad in (0.0, float("nan"), float("inf")):  # a NaN step size would publish a NaN rotation
        with pytest.raises(ConfigError, match=r"delta_phi_deg must be in \(0, 5\]"):
            action_to_msgs(Action.POUR, 0, delta_phi_deg=bad, frame_id="tool", axis="y")


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(("position", "orientation", "match"), [
    ((0.0, 0.0, 0.0), (0.0, NAN, 0.0, 1.0), "non-finite number"),  # issue 11: was a full +0.5 deg pour step
    ((0.0, 0.0, 0.0), (NAN, 0.0, 0.0, 1.0), "non-finite number"),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, NAN), "non-finite number"),
    ((0.0, 0.0, 0.0), (0.0, INF, 0.0, 1.0), "non-finite number"),
    ((NAN, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), "non-finite number"),
    ((0.0, 0.0, -INF), (0.0, 0.0, 0.0, 1.0), "non-finite number"),
    ((0.0, 0.0, 0.0), (0.0, 0.5, 0.0, 1.0), "not unit length"),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.5), "not unit length"),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), "not unit length"),
])
def test_step_from_msg_refuses_non_finite_and_non_unit_steps(position, orientation, match):
    _, step = action_to_msgs(Action.WAIT, 0, delta_phi_deg=0.25, frame_id="tool", axis="y")
    p, q = step.pose.position, step.pose.orientation
    p.x, p.y, p.z = position
    q.x, q.y, q.z, q.w = orientation
    with pytest.raises(MessageError, match=match):
        step_from_msg(step, axis="y", frame_id="tool")


def test_named_values_match_the_core_sim_state():
    values = {"tilt_deg": 41.5, "mass_left_g": 90.25, "flow_g_s": 0.0}
    msg = named_values_to_msg(values, 77)
    assert named_values_from_msg(deserialize_message(serialize_message(msg), JointState)) == values
    ours = TYPESTORE.deserialize_cdr(serialize_message(msg), "sensor_msgs/msg/JointState")  # rosbags reads rclpy's
    core = joint_state_msg(TYPESTORE, 77, values)
    assert ours.name == core.name and ours.header == core.header
    for field in ("position", "velocity", "effort"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(core, field))
    with pytest.raises(MessageError, match="2 names but 1 positions"):
        named_values_from_msg(JointState(name=["a", "b"], position=[1.0]))
