"""Record demonstrations: tactile sensor drivers, arm, keyboard teleop (or the sim's scripted expert), recorder.

    ros2 launch anytouch_ros record.launch.py sim:=true
    ros2 launch anytouch_ros record.launch.py teleop:=false   # over SSH: then `ros2 run anytouch_ros teleop_node`
    ros2 launch anytouch_ros record.launch.py sim:=true expert:=true   # scripted demonstrations, no keyboard

The teleop reads a keyboard, and `ros2 launch` gives nodes no terminal: it runs in its own window
(teleop_prefix, default 'xterm -e', needs X). Without X pass teleop:=false and run it in a second terminal, or
use `anytouch bringup record`, which hands it your terminal. The nodes, their parameters (config/record.yaml or
config:=FILE) and which of them end the set (arm, recorder, teleop or expert) come from the node plan in
anytouch_policy.bringup.plan, which `anytouch bringup record` runs too.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from anytouch_policy.bringup.launch import LaunchClasses, launch_description


def generate_launch_description():
    return launch_description("record", LaunchClasses(
        LaunchDescription=LaunchDescription, DeclareLaunchArgument=DeclareLaunchArgument,
        OpaqueFunction=OpaqueFunction, LaunchConfiguration=LaunchConfiguration, Node=Node, Shutdown=Shutdown))
