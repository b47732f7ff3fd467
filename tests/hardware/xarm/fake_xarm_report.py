"""The controller side of the xArm "rich" report (port 30002) and the quaternion maths of the stand-in.

Offsets follow the report layout the SDK parses (xarm/x3/base.py `_handle_report_data`, rich branch; xArm
developer manual 2.1.6): a big-endian u32 length counting itself, then state | mode << 4, cmdnum, joint
angles, TCP pose, torques, brake/enable bits, error, warning, TCP offset, payload, collision sensitivities,
gravity, arm identity, version, motion limits, servo codes, temperatures, speeds, counter, world offset, IO,
axis-angle pose, reduced-mode settings. Floats are little-endian, integers big-endian, as on the real wire.

The rotation maths is written with quaternions on purpose: the backend uses rotation matrices, so the tests
compare two independent implementations.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

RICH_REPORT_SIZE = 587


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(w, x, y, z) of the fixed-axis X-Y-Z rotation (radians): q = qz(yaw) * qy(pitch) * qx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (cy * cp * cr + sy * sp * sr, cy * cp * sr - sy * sp * cr,
            cy * sp * cr + sy * cp * sr, sy * cp * cr - cy * sp * sr)


def quat_to_rpy(q: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """Roll, pitch, yaw (radians) of a unit quaternion, pitch in [-pi/2, pi/2]."""
    w, x, y, z = q
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def quat_mul(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def quat_conj(q: tuple[float, ...]) -> tuple[float, float, float, float]:
    return (q[0], -q[1], -q[2], -q[3])


def quat_axis_angle(q: tuple[float, ...]) -> tuple[tuple[float, float, float], float]:
    """(unit axis, angle in radians, in [0, pi]) of a unit quaternion."""
    w, x, y, z = q if q[0] >= 0 else (-q[0], -q[1], -q[2], -q[3])
    s = math.sqrt(x * x + y * y + z * z)
    if s < 1e-12:
        return (1.0, 0.0, 0.0), 0.0
    return (x / s, y / s, z / s), 2 * math.atan2(s, w)


def quat_slerp(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[float, float, float, float]:
    dot = sum(p * q for p, q in zip(a, b, strict=True))
    if dot < 0:
        b, dot = tuple(-v for v in b), -dot
    if dot > 0.9999995:
        out = tuple(p + t * (q - p) for p, q in zip(a, b, strict=True))
    else:
        theta = math.acos(dot)
        s = math.sin(theta)
        out = tuple((math.sin((1 - t) * theta) * p + math.sin(t * theta) * q) / s for p, q in zip(a, b, strict=True))
    n = math.sqrt(sum(v * v for v in out))
    return tuple(v / n for v in out)  # type: ignore[return-value]


@dataclass
class ReportState:
    """Everything the stand-in puts into one report."""

    state: int
    mode: int
    cmdnum: int
    angles: list[float]  # 7 joint angles, rad
    pose: list[float]  # x, y, z mm; roll, pitch, yaw rad
    enabled: bool
    error: int
    warn: int
    tcp_offset: list[float]  # mm, rad
    tcp_load: list[float]  # kg, mm
    collision_sensitivity: int
    version: str
    reduced_mode: bool
    reduced_boundary: list[int]  # x_max, x_min, y_max, y_min, z_max, z_min (mm)
    reduced_tcp_speed: float
    reduced_joint_speed: float  # rad/s
    pose_aa: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # rotation vector, rad


def encode_rich_report(s: ReportState) -> bytes:
    """One report packet of RICH_REPORT_SIZE bytes."""
    f32 = lambda values: struct.pack(f"<{len(values)}f", *values)  # noqa: E731 - local shorthand
    motors = 0x3F if s.enabled else 0x00  # six joints: brake released and motor enabled
    parts = [
        struct.pack(">IBH", RICH_REPORT_SIZE, (s.state & 0x0F) | (s.mode << 4), s.cmdnum),  # 0..6
        f32(s.angles), f32(s.pose), f32([0.0] * 7),  # 7..86 angles, pose, torques
        bytes([motors, motors, s.error, s.warn]),  # 87..90
        f32(s.tcp_offset), f32(s.tcp_load),  # 91..130
        bytes([s.collision_sensitivity, 3]), f32([0.0, 0.0, -1.0]),  # 131..144 sensitivities, gravity
        bytes([6, 6, 0, 0, 0, 0]),  # 145..150 arm type (xArm6 X4), axis, master/slave ids, motor ids
        s.version.encode()[:30].ljust(30, b"\0"),  # 151..180
        f32([10000.0, 1.0, 50000.0, 0.1, 1000.0]),  # 181..200 tcp jerk, min/max acc, min/max speed
        f32([500.0, 0.01, 20.0, 0.01, math.pi]),  # 201..220 joint jerk, min/max acc, min/max speed
        f32([500.0, 10.0]),  # 221..228 rotation jerk, max rotation acc
        bytes(16),  # 229..244 servo and tool-gpio codes
        struct.pack(">7b", *([35] * 7)),  # 245..251 temperatures
        f32([0.0] * 8), struct.pack(">I", 0), f32([0.0] * 6),  # 252..311 speeds, counter, world offset
        bytes([0, 0, 0, 1, 0]), f32([0.0] * 6),  # 312..340 io reset, not simulation, collision det., tool model
        struct.pack(">7H", *([4800] * 7)), f32([0.5] * 7),  # 341..382 joint voltages, currents
        bytes(50), f32([0.0] * 12), bytes([0]),  # 383..481 controller gpio, f/t sensor, identification progress
        f32(s.pose_aa),  # 482..493
        bytes([int(s.reduced_mode), int(s.reduced_mode)]),  # 494 config bits, 495 reduced mode
        struct.pack(">6h", *s.reduced_boundary), f32([s.reduced_tcp_speed, s.reduced_joint_speed]),  # 496..515
        f32([-2 * math.pi, 2 * math.pi] * 7), bytes([0, 0]),  # 516..573 reduced joint ranges, fence, rebound
        struct.pack(">I", 0), bytes([0, 0, 0]), struct.pack(">3h", 0, 0, 0),  # 574..586
    ]
    packet = b"".join(parts)
    assert len(packet) == RICH_REPORT_SIZE, len(packet)
    return packet
