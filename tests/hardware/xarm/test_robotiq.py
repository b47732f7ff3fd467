"""Robotiq 2F-140 backend through the real SDK's robotiq_* methods, the stand-in's tool RS-485 and gripper model."""

import time

import pytest

from anytouch_policy.bringup.backends import make_gripper
from anytouch_policy.errors import ConfigError, DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import ArmLimits
from anytouch_policy.hardware.xarm.arm import XArmArm
from anytouch_policy.hardware.xarm.config import XArmConfig
from anytouch_policy.hardware.xarm.robotiq import RobotiqConfig, RobotiqGripper
from anytouch_policy.hardware.xarm.tool_rotation import ToolAxis
from tests.hardware.xarm.fake_robotiq import FakeRobotiq


def _arm(controller):
    config = XArmConfig(ip=controller.host, workspace_mm=(600, 0, 300, -300, 700, 100), tilt_axis=ToolAxis.PLUS_Y)
    return XArmArm(config, limits=ArmLimits(command_timeout_s=5.0))


def _wait(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_activation_resets_activates_and_polls_until_ready(make_controller):
    controller = make_controller(robotiq=FakeRobotiq(activation_s=0.3))
    with _arm(controller) as arm, make_gripper("robotiq", arm=arm, poll_period_s=0.05) as gripper:
        assert gripper.status().activated and gripper.status().fault == 0
        assert controller.arm.baud_index == 5  # the SDK set the tool RS-485 to 115200 first
        writes = [frame for _, frame in controller.robotiq.requests if frame[1] == 0x10]
        assert writes[0][7] == 0x00 and writes[1][7] == 0x01  # reset (rACT=0), then activate (rACT=1)
        reads = [t for t, frame in controller.robotiq.requests if frame[1] == 0x03]
        assert len(reads) >= 3  # polled while gSTA went 1 -> 3


def test_activation_that_never_completes_fails_within_the_timeout(make_controller):
    controller = make_controller(robotiq=FakeRobotiq(never_activates=True))
    controller.arm.baud_index = 5  # already 115200: no 1.3 s baud switch inside the timed part
    with _arm(controller) as arm:
        gripper = RobotiqGripper(RobotiqConfig(activation_timeout_s=0.6), arm=arm)
        started = time.monotonic()
        with pytest.raises(DeviceError, match="timed out after 0.6 s: gSTA=1"):
            gripper.open()
        assert time.monotonic() - started < 1.5
        with pytest.raises(DeviceNotConnectedError, match="before activation"):
            gripper.grasp()


def test_activation_fault_is_named(make_controller):
    controller = make_controller(robotiq=FakeRobotiq(activation_s=0.1, activation_fault=0x0D))
    with _arm(controller) as arm, pytest.raises(DeviceError, match=r"gFLT 0x0D \(ACTIVATION_FAULT\)"):
        RobotiqGripper(RobotiqConfig(activation_timeout_s=2.0), arm=arm).open()


def test_grasp_and_release_never_wait_for_the_arm_or_the_fingers(make_controller):
    controller = make_controller(robotiq=FakeRobotiq(activation_s=0.1, object_at=180))
    with _arm(controller) as arm, RobotiqGripper(RobotiqConfig(poll_period_s=0.05), arm=arm) as gripper:
        controller.simulate_motion(1.0)  # the arm reports a mode-0 trajectory still running
        started = time.monotonic()
        gripper.grasp(position=255, speed=64, force=100)
        assert time.monotonic() - started < 0.3
        write = [frame for _, frame in controller.robotiq.requests if frame[1] == 0x10][-1]
        assert write[7] & 0x09 == 0x09 and tuple(write[10:13]) == (255, 64, 100)  # rACT|rGTO, pos, speed, force
        assert _wait(lambda: gripper.status().moving, timeout=1.0)
        assert _wait(lambda: gripper.status().object_detected, timeout=3.0)
        assert gripper.status().position == pytest.approx(180, abs=2)
        started = time.monotonic()
        gripper.release()
        assert time.monotonic() - started < 0.3
        assert _wait(lambda: gripper.status().position == 0 and not gripper.status().moving, timeout=3.0)

        # the control: the SDK's defaults would have blocked until the arm stopped
        controller.simulate_motion(1.0)
        started = time.monotonic()
        arm.sdk.robotiq_set_position(255, wait=False)
        assert time.monotonic() - started > 0.7


def test_register_values_are_checked():
    with pytest.raises(ConfigError, match="grasp_force"):
        RobotiqConfig(grasp_force=300)
