"""Rotations about a tool axis through the TCP, in the xArm pose convention.

The pour is a rotation about one axis of the tool frame, through the TCP. Near the MS-Bot pose (pitch about 90 deg)
base-frame roll/pitch/yaw increments are ill-conditioned (gimbal lock), so targets are composed as rotation
matrices, R_target = R_start @ Rot(tool_axis, tilt), and only then written as the roll/pitch/yaw the controller
takes, choosing the decomposition closest to the previous target so consecutive targets never jump.

xArm convention: [x, y, z] in mm; roll, pitch, yaw in degrees about the fixed base X, Y, Z axes, applied in that
order, so R = Rz(yaw) @ Ry(pitch) @ Rx(roll).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np


class ToolAxis(StrEnum):
    """A signed axis of the tool frame; a positive tilt is a right-handed rotation about it (the pour direction)."""

    PLUS_X = "+x"
    MINUS_X = "-x"
    PLUS_Y = "+y"
    MINUS_Y = "-y"
    PLUS_Z = "+z"
    MINUS_Z = "-z"

    @property
    def vector(self) -> np.ndarray:
        """Unit vector of the axis in tool coordinates."""
        v = np.zeros(3)
        v["xyz".index(self.value[1])] = 1.0 if self.value[0] == "+" else -1.0
        return v


def rpy_to_matrix(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """Rotation matrix of an xArm roll/pitch/yaw triple (degrees)."""
    r, p, y = (math.radians(a) for a in (roll_deg, pitch_deg, yaw_deg))
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def _wrap_near(angle_deg: float, ref_deg: float) -> float:
    """The angle equal to `angle_deg` modulo 360 that lies closest to `ref_deg`."""
    return ref_deg + (angle_deg - ref_deg + 180.0) % 360.0 - 180.0


def matrix_to_rpy(rotation: np.ndarray, near: Sequence[float] | None = None) -> tuple[float, float, float]:
    """Roll/pitch/yaw (degrees) of a rotation matrix.

    A rotation has two roll/pitch/yaw decompositions (pitch p or 180 - p); with `near` (a previous triple) the one
    closest to it is returned, each angle unwrapped towards it, so a stream of targets stays continuous even at
    pitch 90 deg where roll and yaw are only defined up to their sum.
    """
    sp = float(np.clip(-rotation[2, 0], -1.0, 1.0))
    pitch = math.degrees(math.asin(sp))
    if abs(sp) < 1.0 - 1e-9:
        roll = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
        yaw = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    else:  # gimbal lock: only yaw -/+ roll is defined; keep the reference roll and solve for yaw
        roll = 0.0 if near is None else near[0]
        combined = math.degrees(math.atan2(-rotation[0, 1], rotation[1, 1]))
        yaw = combined + roll if sp > 0 else combined - roll
    candidates = [(roll, pitch, yaw), (roll + 180.0, 180.0 - pitch, yaw + 180.0)]
    if near is None:
        return tuple(_wrap_near(a, 0.0) for a in candidates[0])  # type: ignore[return-value]

    def unwrapped(c: tuple[float, float, float]) -> tuple[float, float, float]:
        return tuple(_wrap_near(a, r) for a, r in zip(c, near, strict=True))  # type: ignore[return-value]

    options = [unwrapped(c) for c in candidates]
    return min(options, key=lambda c: sum((a - r) ** 2 for a, r in zip(c, near, strict=True)))


def axis_rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation matrix of `angle_deg` about the unit vector `axis` (Rodrigues)."""
    k = np.asarray(axis, dtype=float)
    k = k / np.linalg.norm(k)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    a = math.radians(angle_deg)
    return np.eye(3) + math.sin(a) * kx + (1.0 - math.cos(a)) * (kx @ kx)


def rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """Axis times angle (degrees) of a rotation matrix; exact for angles below 180 deg."""
    cos_a = float(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))
    angle = math.acos(cos_a)
    skew = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    if angle < 1e-9:
        return np.degrees(skew / 2.0)
    return np.degrees(skew * angle / (2.0 * math.sin(angle)))


def tilted_pose(start_pose: Sequence[float], axis: ToolAxis, tilt_deg: float,
                near_rpy: Sequence[float] | None = None) -> tuple[float, float, float, float, float, float]:
    """The start pose rotated by `tilt_deg` about the tool `axis` through the TCP (position unchanged)."""
    rotation = rpy_to_matrix(*start_pose[3:6]) @ axis_rotation(axis.vector, tilt_deg)
    roll, pitch, yaw = matrix_to_rpy(rotation, near=near_rpy if near_rpy is not None else start_pose[3:6])
    return (float(start_pose[0]), float(start_pose[1]), float(start_pose[2]), roll, pitch, yaw)


def tilt_from_start(start_rpy: Sequence[float], pose_rpy: Sequence[float], axis: ToolAxis) -> tuple[float, float]:
    """(tilt about the tool axis, size of the rotation off that axis), degrees, of a pose relative to the start."""
    relative = rpy_to_matrix(*start_rpy).T @ rpy_to_matrix(*pose_rpy)
    rv = rotation_vector(relative)
    along = float(rv @ axis.vector)
    off_axis = float(np.linalg.norm(rv - along * axis.vector))
    return along, off_axis
