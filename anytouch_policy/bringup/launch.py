"""The launch files' LaunchDescription, built from the node plan.

launch and launch_ros exist only in a ROS 2 workspace, so a launch file passes its classes in:

    def generate_launch_description():
        return launch_description("pour", LaunchClasses(LaunchDescription=LaunchDescription, ...))

It declares the mode's LAUNCH_ARGUMENTS; an OpaqueFunction reads their values when the launch runs, makes the plan
(plan_from_launch: the nodes `anytouch bringup` starts) and returns one Node per NodeSpec: its parameter files then
its overrides, on_exit=Shutdown for an essential node, and the teleop_prefix for the node that needs a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from anytouch_policy.bringup.plan import LAUNCH_ARGUMENTS, PACKAGE, Mode, NodeSpec, plan_from_launch


class LaunchClasses(NamedTuple):
    """The launch / launch_ros classes the description is built from."""

    LaunchDescription: Callable[..., Any]
    DeclareLaunchArgument: Callable[..., Any]
    OpaqueFunction: Callable[..., Any]
    LaunchConfiguration: Callable[..., Any]
    Node: Callable[..., Any]
    Shutdown: Callable[..., Any]


def node_action(spec: NodeSpec, classes: LaunchClasses, *, terminal_prefix: str) -> Any:
    """The launch_ros Node of one planned node."""
    kwargs: dict[str, Any] = {
        "package": PACKAGE, "executable": spec.executable, "name": spec.name, "namespace": spec.namespace,
        "output": "screen", "parameters": [*(str(path) for path in spec.params_files), dict(spec.overrides)],
    }
    if spec.essential:
        kwargs["on_exit"] = classes.Shutdown(reason=f"the {spec.name} node exited")
    if spec.terminal:
        kwargs["prefix"] = terminal_prefix
    return classes.Node(**kwargs)


def launch_description(mode: Mode | str, classes: LaunchClasses) -> Any:
    """The LaunchDescription of `ros2 launch anytouch_ros <mode>.launch.py`."""
    mode = Mode(mode)
    arguments = LAUNCH_ARGUMENTS[mode]

    def nodes(context: Any) -> list[Any]:
        values = {a.name: classes.LaunchConfiguration(a.name).perform(context) for a in arguments}
        plan = plan_from_launch(mode, values)
        return [node_action(spec, classes, terminal_prefix=values.get("teleop_prefix", "")) for spec in plan.nodes]

    declared = [classes.DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                              **({"choices": list(a.choices)} if a.choices else {}))
                for a in arguments]
    return classes.LaunchDescription([*declared, classes.OpaqueFunction(function=nodes)])
