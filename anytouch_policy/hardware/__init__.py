"""Device backends without ROS: tactile cameras, the xArm and its Robotiq gripper, replayed episodes.

The interfaces (base) are what the rest of the project programs against; anytouch_policy.bringup.backends builds a
backend, real or simulated, from a name and parameters. This package never imports anytouch_policy.sim.
"""

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
]
