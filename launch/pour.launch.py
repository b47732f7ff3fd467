"""Pour with a trained policy: tactile sensor drivers -> AnyTouch encoder -> 5 Hz policy -> arm.

    ros2 launch anytouch_ros pour.launch.py sim:=true policy:=/path/to/policy

The nodes, their parameters (config/pour.yaml or config:=FILE, then the arguments' overrides) and which of them end
the set when they exit (encoder, policy, arm) come from the node plan in anytouch_policy.bringup.plan, which
`anytouch bringup pour` runs where launch_ros is not installed. `ros2 launch ... --show-args` lists the arguments.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from anytouch_policy.bringup.launch import LaunchClasses, launch_description


def generate_launch_description():
    return launch_description("pour", LaunchClasses(
        LaunchDescription=LaunchDescription, DeclareLaunchArgument=DeclareLaunchArgument,
        OpaqueFunction=OpaqueFunction, LaunchConfiguration=LaunchConfiguration, Node=Node, Shutdown=Shutdown))
