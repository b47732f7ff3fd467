"""The one image and axis rule that bags (rosbags messages) and live topics (rclpy, tests/ros) share."""

import numpy as np
import pytest

from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.messages import axis_rotation_quaternion, check_axis, image_msg, packed_rgb, rgb_from_image
from anytouch_policy.errors import MessageError

RNG = np.random.default_rng(3)
IMAGE = "sensor_msgs/msg/Image"


def _bag_image(**fields):
    """A rosbags Image as a reader hands it over (serialised and decoded again)."""
    msg = TYPESTORE.types[IMAGE](header=image_msg(TYPESTORE, np.zeros((1, 1, 3), np.uint8), 0, frame_id="f").header,
                                 is_bigendian=0, **fields)
    return TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, IMAGE), IMAGE)


def test_padded_rows_and_bgr_decode_to_rgb():
    rows = RNG.integers(0, 256, (4, 17), dtype=np.uint8)  # 5 pixels (15 bytes) + 2 bytes of padding per row
    padded = _bag_image(height=4, width=5, encoding="rgb8", step=17, data=rows.reshape(-1))
    np.testing.assert_array_equal(rgb_from_image(padded, where="w"), rows[:, :15].reshape(4, 5, 3))
    bgr = _bag_image(height=4, width=5, encoding="bgr8", step=17, data=rows.reshape(-1))
    np.testing.assert_array_equal(rgb_from_image(bgr, where="w"), rows[:, :15].reshape(4, 5, 3)[..., ::-1])


def test_a_strided_view_is_packed_and_comes_back_equal():
    view = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)[::3, 5:25]
    packed = packed_rgb(view, frame_id="f")
    assert packed.flags.c_contiguous and np.array_equal(packed, view)
    msg = TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(image_msg(TYPESTORE, view, 7, frame_id="f"), IMAGE), IMAGE)
    assert (msg.height, msg.width, msg.step) == (10, 20, 60)
    np.testing.assert_array_equal(rgb_from_image(msg, where="w"), view)


@pytest.mark.parametrize(("fields", "match"), [
    ({"height": 2, "width": 2, "encoding": "mono8", "step": 2, "data": np.zeros(4, np.uint8)},
     "bag.mcap /left: encoding 'mono8' is not rgb8/bgr8"),
    ({"height": 2, "width": 2, "encoding": "rgb8", "step": 5, "data": np.zeros(10, np.uint8)}, "do not fit"),
    ({"height": 3, "width": 2, "encoding": "rgb8", "step": 6, "data": np.zeros(12, np.uint8)},
     "12 bytes do not fit height 3 x step 6 for width 2"),
])
def test_layout_errors_name_where_and_what(fields, match):
    with pytest.raises(MessageError, match=match):
        rgb_from_image(_bag_image(**fields), where="bag.mcap /left")


def test_only_three_dimensional_uint8_rgb_is_packed():
    for bad in (np.zeros((4, 5), np.uint8), np.zeros((4, 5, 4), np.uint8), np.zeros((4, 5, 3), np.float32)):
        with pytest.raises(MessageError, match="frame 'left_gel' must be H x W x 3 uint8"):
            packed_rgb(bad, frame_id="left_gel")


def test_axes():
    assert [check_axis(a) for a in "xyz"] == [0, 1, 2]
    x, y, z, w = axis_rotation_quaternion("y", np.pi / 2)
    assert (x, z) == (0.0, 0.0) and y == pytest.approx(w) == pytest.approx(np.sqrt(0.5))
    with pytest.raises(MessageError, match="tilt axis must be one of x, y, z; got 'w'"):
        axis_rotation_quaternion("w", 0.1)
