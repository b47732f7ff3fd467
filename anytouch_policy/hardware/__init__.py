"""Device backends without ROS: tactile cameras, the arm and the gripper, real and simulated."""

from anytouch_policy.hardware.base import (
    Arm,
    ArmLimits,
    ArmState,
    ArmStatus,
    Gripper,
    GripperStatus,
    SourceState,
    SourceStats,
    TactileSource,
)
from anytouch_policy.hardware.factory import make_arm, make_gripper, make_tactile_source

__all__ = [
    "Arm",
    "ArmLimits",
    "ArmState",
    "ArmStatus",
    "Gripper",
    "GripperStatus",
    "SourceState",
    "SourceStats",
    "TactileSource",
    "make_arm",
    "make_gripper",
    "make_tactile_source",
]
