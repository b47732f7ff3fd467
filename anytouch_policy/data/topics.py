"""Topic names and message types shared by the ROS nodes and the episode bags.

Names are relative so a launch namespace applies; bags store them fully qualified ("/" + namespace + name) and the
episode reader matches them by suffix, so episodes recorded under any namespace read back the same way.
"""

from __future__ import annotations

TACTILE_IMAGE = "tactile/{sensor}/image_raw"  # sensor_msgs/Image rgb8, header.stamp = grab time, frame_id <sensor>_gel
EMBEDDING = "anytouch/embedding"  # sensor_msgs/Image 32FC1, 1 x D per sensor; frame_id = sensor, stamp = newest frame
ACTION = "pour/action"  # std_msgs/String: pour | wait | retract, published at 5 Hz
CARTESIAN_STEP = "pour/cartesian_step"  # geometry_msgs/PoseStamped: relative rotation in the tool frame
ARM_TILT = "arm/tilt"  # std_msgs/Float64, deg about the tool tilt axis (xArm: from bring-up pose; sim: upright)
ARM_POSE = "arm/pose"  # geometry_msgs/PoseStamped, base frame, metres + quaternion
SCALE_MASS = "scale/mass"  # std_msgs/Float64, grams on the scale (sim ground truth, or a real scale driver)
SIM_STATE = "sim/state"  # sensor_msgs/JointState: RigState field names in `name`, values in `position`
EPISODE_EVENT = "episode/event"  # std_msgs/String: start | end | abort (teleop keys -> recorder)
ARM_ESTOP = "arm/estop"  # std_msgs/Bool, transient-local: true = emergency stop (the arm node latches it)
ARM_RECOVER = "arm/recover"  # std_srvs/Trigger service: the operator clears a latched e-stop
DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray; absolute, as every ROS diagnostics tool expects

MSGTYPES: dict[str, str] = {
    TACTILE_IMAGE: "sensor_msgs/msg/Image",
    EMBEDDING: "sensor_msgs/msg/Image",
    ACTION: "std_msgs/msg/String",
    CARTESIAN_STEP: "geometry_msgs/msg/PoseStamped",
    ARM_TILT: "std_msgs/msg/Float64",
    ARM_POSE: "geometry_msgs/msg/PoseStamped",
    SCALE_MASS: "std_msgs/msg/Float64",
    SIM_STATE: "sensor_msgs/msg/JointState",
    EPISODE_EVENT: "std_msgs/msg/String",
    ARM_ESTOP: "std_msgs/msg/Bool",
}


def tactile_topic(sensor: str) -> str:
    """Relative image topic of a named sensor (the name is the user's, e.g. "left_mini")."""
    return TACTILE_IMAGE.format(sensor=sensor)


def qualify(name: str, namespace: str = "") -> str:
    """Fully qualified topic name as a bag stores it."""
    ns = namespace.strip("/")
    return f"/{ns}/{name}" if ns else f"/{name}"
