"""numpy and core types <-> rclpy messages, without cv_bridge (the PyPI build is broken with numpy 2).

rclpy hands `Image.data` over as an `array.array('B')`, which supports the buffer protocol, so reading is a zero-copy
`np.frombuffer`; writing assigns `ndarray.tobytes()` (one copy, ~15 us for 320 x 240 x 3). The image layout and
axis rules are the core's (`anytouch_policy.data.messages`, the rosbags side), so a message published live and
one written by the sim demo serialise to the same CDR bytes.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from anytouch_policy.actions import Action
from anytouch_policy.data.messages import axis_rotation_quaternion, check_axis, packed_rgb, rgb_from_image
from anytouch_policy.errors import MessageError

NS_PER_S = 1_000_000_000


def ns_to_time(stamp_ns: int) -> Time:
    """builtin_interfaces/Time from integer nanoseconds (nanosec always in [0, 1e9))."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def time_to_ns(stamp: Time) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time (e.g. a header stamp)."""
    return stamp.sec * NS_PER_S + stamp.nanosec


def image_to_msg(rgb: np.ndarray, stamp_ns: int, *, frame_id: str) -> Image:
    """sensor_msgs/Image rgb8 from an H x W x 3 uint8 array (any strides; the message rows are packed)."""
    pixels = packed_rgb(rgb, frame_id=frame_id)
    height, width, _ = pixels.shape
    msg = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3)
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = pixels.tobytes()
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """H x W x 3 uint8 RGB from an rgb8 or bgr8 Image (the core's rule: row padding honoured)."""
    return rgb_from_image(msg, where=f"image {msg.header.frame_id!r}")


def embedding_to_msg(vector: np.ndarray, stamp_ns: int, *, sensor: str) -> Image:
    """An embedding row as a 32FC1 Image, 1 x D; frame_id = sensor name, stamp = newest frame of the window."""
    vec = np.asarray(vector)
    if vec.ndim != 1 or vec.size == 0 or not np.issubdtype(vec.dtype, np.floating):
        raise MessageError(f"embedding of sensor {sensor!r} must be a non-empty float vector, "
                           f"got {vec.shape} {vec.dtype}")
    msg = Image(height=1, width=vec.size, encoding="32FC1", is_bigendian=0,
                step=4 * vec.size)
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = sensor
    msg.data = np.ascontiguousarray(vec, dtype="<f4").tobytes()  # little-endian, as is_bigendian=0 says
    return msg


def embedding_from_msg(msg: Image) -> np.ndarray:
    """float32 vector (D,) from a 1 x D 32FC1 Image, in either byte order."""
    where = f"embedding {msg.header.frame_id!r}"
    if msg.encoding != "32FC1" or msg.height != 1:
        raise MessageError(f"{where}: expected a 1 x D 32FC1 image, got {msg.height} x {msg.width} {msg.encoding!r}")
    data = bytes(msg.data)
    if msg.step != 4 * msg.width or len(data) != msg.step:
        raise MessageError(f"{where}: {len(data)} bytes, step {msg.step} do not hold {msg.width} float32 values")
    return np.frombuffer(data, dtype=">f4" if msg.is_bigendian else "<f4").astype(np.float32)


def action_to_msgs(
    action: Action, stamp_ns: int, *, delta_phi_deg: float, frame_id: str, axis: str
) -> tuple[String, PoseStamped]:
    """The pair a 5 Hz tick publishes: the label on pour/action and the relative tool-frame rotation on
    pour/cartesian_step (+delta pour, -delta retract, identity for wait), with the fields of
    `anytouch_policy.data.messages.pose_step_msg`."""
    step = PoseStamped()
    step.header.stamp = ns_to_time(stamp_ns)
    step.header.frame_id = frame_id
    x, y, z, w = axis_rotation_quaternion(axis, math.radians(action.tilt_step_deg(delta_phi_deg)))
    q = step.pose.orientation
    q.x, q.y, q.z, q.w = x, y, z, w
    return String(data=action.label), step


def action_from_msg(msg: String) -> Action:
    """The Action of a pour/action label (ConfigError lists the valid labels)."""
    return Action.from_label(msg.data)


def step_from_msg(msg: PoseStamped, *, axis: str, frame_id: str, tol: float = 1e-6) -> float:
    """Signed degrees about `axis` of a pour/cartesian_step; refuses non-finite numbers, translations, rotations
    about other axes, non-unit quaternions and other frames (every comparison with NaN is False, so finiteness is
    checked first)."""
    where = f"cartesian step in frame {msg.header.frame_id!r}"
    check_axis(axis)
    if msg.header.frame_id != frame_id:
        raise MessageError(f"{where}: expected frame_id {frame_id!r}")
    p, q = msg.pose.position, msg.pose.orientation
    numbers = (p.x, p.y, p.z, q.x, q.y, q.z, q.w)
    if not all(math.isfinite(v) for v in numbers):
        raise MessageError(f"{where}: non-finite number in position ({p.x}, {p.y}, {p.z}) or orientation "
                           f"({q.x}, {q.y}, {q.z}, {q.w})")
    if max(abs(p.x), abs(p.y), abs(p.z)) > tol:
        raise MessageError(f"{where}: steps are pure rotations, got translation ({p.x}, {p.y}, {p.z})")
    comps = {"x": q.x, "y": q.y, "z": q.z}
    if any(abs(v) > tol for k, v in comps.items() if k != axis):
        raise MessageError(f"{where}: rotation is not about the {axis} axis ({q.x}, {q.y}, {q.z}, {q.w})")
    if abs(math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w) - 1.0) > 1e-3:
        raise MessageError(f"{where}: quaternion is not unit length ({q.x}, {q.y}, {q.z}, {q.w})")
    angle = 2.0 * math.atan2(comps[axis], q.w)
    return math.degrees(math.remainder(angle, 2.0 * math.pi))


def pose_to_msg(pose: tuple[float, ...], stamp_ns: int, *, frame_id: str) -> PoseStamped:
    """geometry_msgs/PoseStamped (metres, quaternion) from an xArm pose (x, y, z mm; roll, pitch, yaw deg about the
    fixed base axes, R = Rz(yaw) Ry(pitch) Rx(roll))."""
    x, y, z, roll, pitch, yaw = (float(v) for v in pose)
    cr, sr = math.cos(math.radians(roll) / 2), math.sin(math.radians(roll) / 2)
    cp, sp = math.cos(math.radians(pitch) / 2), math.sin(math.radians(pitch) / 2)
    cy, sy = math.cos(math.radians(yaw) / 2), math.sin(math.radians(yaw) / 2)
    msg = PoseStamped()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x / 1000.0, y / 1000.0, z / 1000.0
    q = msg.pose.orientation
    q.w = cr * cp * cy + sr * sp * sy
    q.x = sr * cp * cy - cr * sp * sy
    q.y = cr * sp * cy + sr * cp * sy
    q.z = cr * cp * sy - sr * sp * cy
    return msg


def named_values_to_msg(values: dict[str, float], stamp_ns: int) -> JointState:
    """sensor_msgs/JointState used as a named float vector (sim/state): names in `name`, values in `position`,
    velocity and effort NaN like the core's joint_state_msg (empty float64 sequences do not survive rosbags)."""
    unknown = [math.nan] * len(values)
    msg = JointState(name=list(values), position=[float(v) for v in values.values()], velocity=unknown,
                     effort=unknown)
    msg.header.stamp = ns_to_time(stamp_ns)
    return msg


def named_values_from_msg(msg: JointState) -> dict[str, float]:
    """The named float vector of a sim/state message."""
    if len(msg.name) != len(msg.position):
        raise MessageError(f"named values: {len(msg.name)} names but {len(msg.position)} positions")
    return {name: float(v) for name, v in zip(msg.name, msg.position, strict=True)}
