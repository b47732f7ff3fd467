"""Pour with a trained policy: tactile sensor drivers -> AnyTouch encoder -> 5 Hz policy -> arm.

    ros2 launch anytouch_ros pour.launch.py sim:=true policy:=/path/to/policy

Parameters come from config/pour.yaml (or config:=FILE); the arguments below override a few of them.
The encoder, policy and arm are essential: when one of them exits, the whole set shuts down (a sensor driver's
exit is only reported), as under `anytouch bringup pour`.
`anytouch bringup pour` starts the same nodes with the same parameters where launch_ros is not installed
(tests/launch/test_launch_files.py reads this file and checks it against that command).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "anytouch_ros"

ARGUMENTS = [
    DeclareLaunchArgument("sim", default_value="false", choices=["true", "false"],
                          description="simulated rig (sensor and arm backends 'sim') instead of the hardware"),
    DeclareLaunchArgument("policy", default_value="", description="policy bundle folder ('' = config's)"),
    DeclareLaunchArgument("encoder", default_value="",
                          description="encoder bundle folder ('' = config's); not with policy, which has its own"),
    DeclareLaunchArgument("sensors", default_value="left:gelsight_mini",
                          description="name:type[,name:type...]; a driver node sensor_<name> per entry"),
    DeclareLaunchArgument("namespace", default_value="", description="namespace of every node and topic"),
    DeclareLaunchArgument("config", default_value="", description="parameter file ('' = the package's pour.yaml)"),
]


def _nodes(context):
    sim = LaunchConfiguration("sim").perform(context) == "true"
    namespace = LaunchConfiguration("namespace").perform(context)
    policy = LaunchConfiguration("policy").perform(context)
    encoder = LaunchConfiguration("encoder").perform(context)
    config = LaunchConfiguration("config").perform(context)
    if not config:
        config = os.path.join(get_package_share_directory(PACKAGE), "config", "pour.yaml")
    sensors = [item.split(":") for item in LaunchConfiguration("sensors").perform(context).split(",")]
    names = [name for name, _ in sensors]
    kinds = [kind for _, kind in sensors]

    nodes = [
        Node(package=PACKAGE, executable="sensor_node", name="sensor_" + name, namespace=namespace, output="screen",
             parameters=[config, {"sensor_name": name, "sensor_type": kind, "backend": "sim" if sim else kind,
                                  "sim_index": index}])
        for index, (name, kind) in enumerate(sensors)
    ]
    encoder_overrides = {"sensors": names, "sensor_types": kinds}
    if encoder:
        encoder_overrides["bundle"] = encoder
    if policy:
        encoder_overrides["policy"] = policy  # the policy bundle brings the encoder it was trained with
    nodes.append(Node(package=PACKAGE, executable="encoder_node", name="encoder", namespace=namespace,
                      output="screen", parameters=[config, encoder_overrides],
                      on_exit=Shutdown(reason="the encoder node exited")))
    policy_overrides = {"sensors": names}
    if policy:
        policy_overrides["bundle"] = policy
    nodes.append(Node(package=PACKAGE, executable="policy_node", name="policy", namespace=namespace,
                      output="screen", parameters=[config, policy_overrides],
                      on_exit=Shutdown(reason="the policy node exited")))
    nodes.append(Node(package=PACKAGE, executable="arm_node", name="arm", namespace=namespace, output="screen",
                      parameters=[config, {"backend": "sim" if sim else "xarm"}],
                      on_exit=Shutdown(reason="the arm node exited")))
    return nodes


def generate_launch_description():
    return LaunchDescription(ARGUMENTS + [OpaqueFunction(function=_nodes)])
