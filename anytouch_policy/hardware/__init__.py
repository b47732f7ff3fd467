"""Device backends without ROS: tactile cameras, the arm and the gripper, real and simulated."""

from anytouch_policy.hardware.base import Arm, ArmLimits, ArmState, Gripper, GripperStatus, SourceStats, TactileSource

__all__ = ["Arm", "ArmLimits", "ArmState", "Gripper", "GripperStatus", "SourceStats", "TactileSource"]
