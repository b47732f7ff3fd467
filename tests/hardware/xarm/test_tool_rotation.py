"""Tool-axis rotations in the xArm RPY convention, checked against an independent quaternion implementation."""

import math

import numpy as np
import pytest

from anytouch_policy.hardware.xarm.tool_rotation import (
    ToolAxis,
    axis_rotation,
    matrix_to_rpy,
    rpy_to_matrix,
    tilt_from_start,
    tilted_pose,
)
from tests.hardware.xarm.fake_xarm_report import quat_axis_angle, quat_conj, quat_from_rpy, quat_mul


def _quat_rotate(q, v):
    w, x, y, z = quat_mul(quat_mul(q, (0.0, *v)), quat_conj(q))
    return np.array([x, y, z])


@pytest.mark.parametrize("rpy", [(180, 0, 0), (10, 88, 20), (-35, -60, 170), (0, 90, 0), (45, -90, 30)])
def test_matrix_matches_quaternion_convention(rpy):
    rotation = rpy_to_matrix(*rpy)
    q = quat_from_rpy(*(math.radians(a) for a in rpy))
    for v in np.eye(3):
        assert np.allclose(rotation @ v, _quat_rotate(q, v), atol=1e-9)


@pytest.mark.parametrize("rpy", [(180, 0, 0), (10, 88, 20), (-35, -60, 170), (120, 30, -100)])
def test_rpy_round_trip(rpy):
    back = matrix_to_rpy(rpy_to_matrix(*rpy), near=rpy)
    assert np.allclose(back, rpy, atol=1e-6)


def test_gimbal_lock_keeps_the_reference_roll():
    roll, pitch, yaw = matrix_to_rpy(rpy_to_matrix(30, 90, 50), near=(30, 89, 50))
    assert pitch == pytest.approx(90, abs=1e-6)
    assert np.allclose(rpy_to_matrix(roll, pitch, yaw), rpy_to_matrix(30, 90, 50), atol=1e-9)
    assert roll == pytest.approx(30)


@pytest.mark.parametrize("axis", list(ToolAxis))
def test_tilted_pose_is_a_rotation_about_the_tool_axis_through_the_tcp(axis):
    start = (300.0, -20.0, 410.0, 10.0, 88.0, 20.0)  # near the MS-Bot pitch-90 pose
    pose = tilted_pose(start, axis, 7.5)
    assert pose[:3] == start[:3]  # the TCP does not move
    relative = quat_mul(quat_conj(quat_from_rpy(*map(math.radians, start[3:]))),
                        quat_from_rpy(*map(math.radians, pose[3:])))
    rot_axis, angle = quat_axis_angle(relative)
    assert math.degrees(angle) == pytest.approx(7.5, abs=1e-6)
    assert np.allclose(np.array(rot_axis), axis.vector, atol=1e-6)  # +7.5 about the signed axis, in tool frame


def test_a_stream_of_small_steps_stays_continuous_through_pitch_90():
    start = (0.0, 0.0, 0.0, 10.0, 88.0, 20.0)
    near = start[3:]
    previous_matrix = rpy_to_matrix(*near)
    for k in range(1, 41):
        pose = tilted_pose(start, ToolAxis.PLUS_Y, 0.25 * k, near_rpy=near)
        matrix = rpy_to_matrix(*pose[3:])
        step = np.degrees(np.arccos(np.clip((np.trace(previous_matrix.T @ matrix) - 1) / 2, -1, 1)))
        assert step == pytest.approx(0.25, abs=1e-6)
        assert abs(pose[4] - near[1]) < 1.0  # pitch moves by at most a step-size amount, never flips to 180 - p
        near, previous_matrix = pose[3:], matrix


def test_tilt_from_start_separates_on_and_off_axis():
    start = (10.0, 88.0, 20.0)
    on_axis = tilted_pose((0, 0, 0, *start), ToolAxis.MINUS_X, 12.0)
    tilt, off = tilt_from_start(start, on_axis[3:], ToolAxis.MINUS_X)
    assert tilt == pytest.approx(12.0, abs=1e-6) and off == pytest.approx(0.0, abs=1e-6)
    skewed = rpy_to_matrix(*on_axis[3:]) @ axis_rotation(np.array([0.0, 0.0, 1.0]), 3.0)
    tilt, off = tilt_from_start(start, matrix_to_rpy(skewed), ToolAxis.MINUS_X)
    assert off == pytest.approx(3.0, abs=0.1)
    assert tilt == pytest.approx(12.0, abs=0.2)
