"""numpy <-> ROS message conversions on the rosbags typestore (no rclpy), for bags written and read without ROS.

The image layout rules (`packed_rgb`, `rgb_from_image`) and the step rotation (`axis_rotation_quaternion`) are
the ones anytouch_ros.conversions uses on rclpy messages too, so a bag and a live topic cannot disagree.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Protocol

import numpy as np
from rosbags.typesys.store import Typestore

from anytouch_policy.errors import MessageError

#: Tool axes a tilt step may turn about.
TILT_AXES = ("x", "y", "z")


def _time(ts: Typestore, stamp_ns: int):
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return ts.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)


def _header(ts: Typestore, stamp_ns: int, frame_id: str):
    return ts.types["std_msgs/msg/Header"](stamp=_time(ts, stamp_ns), frame_id=frame_id)


class ImageFields(Protocol):
    """The sensor_msgs/Image fields an image is decoded from: an rclpy message and a rosbags one both have them."""

    encoding: str
    height: int
    width: int
    step: int
    data: Any  # uint8 buffer: array.array('B') from rclpy, a numpy array from rosbags


def packed_rgb(rgb: np.ndarray, *, frame_id: str) -> np.ndarray:
    """The pixels of an rgb8 Image: an H x W x 3 uint8 array with packed rows (any strides in)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise MessageError(f"image for frame {frame_id!r} must be H x W x 3 uint8, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def rgb_from_image(msg: ImageFields, *, where: str) -> np.ndarray:
    """H x W x 3 uint8 RGB from an rgb8 or bgr8 Image, honouring row padding (step > 3 * width)."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise MessageError(f"{where}: encoding {msg.encoding!r} is not rgb8/bgr8")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if msg.step < msg.width * 3 or data.size != msg.height * msg.step:
        raise MessageError(f"{where}: {data.size} bytes do not fit height {msg.height} x step {msg.step} "
                           f"for width {msg.width}")
    img = data.reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    return np.ascontiguousarray(img[..., ::-1] if msg.encoding == "bgr8" else img)


def image_msg(ts: Typestore, rgb: np.ndarray, stamp_ns: int, *, frame_id: str):
    """sensor_msgs/Image rgb8 from an H x W x 3 uint8 array."""
    pixels = packed_rgb(rgb, frame_id=frame_id)
    h, w, _ = pixels.shape
    return ts.types["sensor_msgs/msg/Image"](
        header=_header(ts, stamp_ns, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3,
        data=pixels.reshape(-1),
    )


def stamp_from_cdr(raw: bytes | memoryview) -> int:
    """header.stamp (ns) of a serialised stamped message, read from its first bytes without decoding the rest."""
    little = bytes(raw[1:2]) in (b"\x01", b"\x03")
    sec, nsec = struct.unpack_from("<iI" if little else ">iI", raw, 4)
    return sec * 1_000_000_000 + nsec


def check_axis(axis: str) -> int:
    """The index of a tilt axis name in TILT_AXES; MessageError names anything else."""
    if axis not in TILT_AXES:
        raise MessageError(f"tilt axis must be one of {', '.join(TILT_AXES)}; got {axis!r}")
    return TILT_AXES.index(axis)


def axis_rotation_quaternion(axis: str, angle_rad: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation about one unit axis."""
    q = [0.0, 0.0, 0.0, math.cos(angle_rad / 2)]
    q[check_axis(axis)] = math.sin(angle_rad / 2)
    return q[0], q[1], q[2], q[3]


def pose_step_msg(ts: Typestore, stamp_ns: int, delta_deg: float, *, frame_id: str, axis: str):
    """geometry_msgs/PoseStamped holding a relative rotation of delta_deg about `axis` of the tool frame."""
    x, y, z, w = axis_rotation_quaternion(axis, math.radians(delta_deg))
    pose = ts.types["geometry_msgs/msg/Pose"](
        position=ts.types["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
        orientation=ts.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
    )
    return ts.types["geometry_msgs/msg/PoseStamped"](header=_header(ts, stamp_ns, frame_id), pose=pose)


def joint_state_msg(ts: Typestore, stamp_ns: int, values: dict[str, float]):
    """sensor_msgs/JointState used as a named float vector (names in `name`, values in `position`).

    velocity and effort are NaN ("not measured"), not empty: Fast CDR (rclpy) pads an empty float64 sequence to 8
    bytes and rosbags 0.11.9 then misreads the rest, so a live sim/state recorded raw would not decode.
    """
    names = list(values)
    unknown = np.full(len(names), np.nan, np.float64)
    return ts.types["sensor_msgs/msg/JointState"](
        header=_header(ts, stamp_ns, ""), name=names,
        position=np.asarray([float(values[n]) for n in names], dtype=np.float64),
        velocity=unknown, effort=unknown.copy(),
    )
