"""Record demonstrations: tactile sensor drivers, arm, keyboard teleop (or the sim's scripted expert), recorder.

    ros2 launch anytouch_ros record.launch.py sim:=true
    ros2 launch anytouch_ros record.launch.py teleop:=false   # over SSH: then `ros2 run anytouch_ros teleop_node`
    ros2 launch anytouch_ros record.launch.py sim:=true expert:=true   # scripted demonstrations, no keyboard

The teleop reads a keyboard, and `ros2 launch` gives nodes no terminal: it runs in its own window
(teleop_prefix, default 'xterm -e', needs X). Without X pass teleop:=false and run it in a second terminal, or
use `anytouch bringup record`, which hands it your terminal. Parameters: config/record.yaml (or config:=FILE).
The arm, the recorder and the teleop or expert are essential: when one of them exits (quitting the teleop, the
expert done), the whole set shuts down (a sensor driver's exit is only reported), as under `anytouch bringup record`.
`anytouch bringup record` starts the same nodes with the same parameters (tests/launch/test_launch_files.py).
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
    DeclareLaunchArgument("sensors", default_value="left:gelsight_mini",
                          description="name:type[,name:type...]; a driver node sensor_<name> per entry"),
    DeclareLaunchArgument("namespace", default_value="", description="namespace of every node and topic"),
    DeclareLaunchArgument("teleop", default_value="true", choices=["true", "false"],
                          description="start the keyboard teleop (false: run it yourself in a terminal)"),
    DeclareLaunchArgument("expert", default_value="false", choices=["true", "false"],
                          description="scripted expert instead of the keyboard teleop (sim only: needs sim/state)"),
    DeclareLaunchArgument("teleop_prefix", default_value="xterm -e",
                          description="command that gives the teleop a terminal window"),
    DeclareLaunchArgument("output_dir", default_value="", description="episodes directory ('' = config's)"),
    DeclareLaunchArgument("config", default_value="", description="parameter file ('' = the package's record.yaml)"),
]


def _nodes(context):
    sim = LaunchConfiguration("sim").perform(context) == "true"
    namespace = LaunchConfiguration("namespace").perform(context)
    teleop = LaunchConfiguration("teleop").perform(context) == "true"
    expert = LaunchConfiguration("expert").perform(context) == "true"
    output_dir = LaunchConfiguration("output_dir").perform(context)
    config = LaunchConfiguration("config").perform(context)
    if not config:
        config = os.path.join(get_package_share_directory(PACKAGE), "config", "record.yaml")
    sensors = [item.split(":") for item in LaunchConfiguration("sensors").perform(context).split(",")]
    names = [name for name, _ in sensors]
    kinds = [kind for _, kind in sensors]

    nodes = [
        Node(package=PACKAGE, executable="sensor_node", name="sensor_" + name, namespace=namespace, output="screen",
             parameters=[config, {"sensor_name": name, "sensor_type": kind, "backend": "sim" if sim else kind,
                                  "sim_index": index}])
        for index, (name, kind) in enumerate(sensors)
    ]
    nodes.append(Node(package=PACKAGE, executable="arm_node", name="arm", namespace=namespace, output="screen",
                      parameters=[config, {"backend": "sim" if sim else "xarm"}],
                      on_exit=Shutdown(reason="the arm node exited")))
    if expert:
        nodes.append(Node(package=PACKAGE, executable="expert_node", name="expert", namespace=namespace,
                          output="screen", parameters=[config, {}],
                          on_exit=Shutdown(reason="the expert node exited")))
    elif teleop:
        nodes.append(Node(package=PACKAGE, executable="teleop_node", name="teleop", namespace=namespace,
                          output="screen", prefix=LaunchConfiguration("teleop_prefix").perform(context),
                          parameters=[config, {}], on_exit=Shutdown(reason="the teleop exited")))
    recorder_overrides = {"sensors": names, "sensor_types": kinds}
    if sim:
        recorder_overrides["rig"] = "sim"
    if expert:
        recorder_overrides["source"] = "expert"
    if output_dir:
        recorder_overrides["output_dir"] = output_dir
    nodes.append(Node(package=PACKAGE, executable="recorder_node", name="recorder", namespace=namespace,
                      output="screen", parameters=[config, recorder_overrides],
                      on_exit=Shutdown(reason="the recorder node exited")))
    return nodes


def generate_launch_description():
    return LaunchDescription(ARGUMENTS + [OpaqueFunction(function=_nodes)])
