"""The YAML the launch files and bringup pass is what the implemented nodes declare: no unknown or mistyped keys."""

import pytest
import rclpy
import yaml
from rclpy.context import Context

from anytouch_policy.bringup import package_config
from anytouch_policy.errors import ConfigError
from anytouch_ros.recorder_node import RecorderNode
from anytouch_ros.teleop_node import TeleopNode

NODES = {"teleop": TeleopNode, "recorder": RecorderNode}  # part B adds its nodes here


def _make(node_class, name: str, args: list[str]):
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "-r", f"__node:={name}", *args])
    try:
        return node_class(context=context), context
    except BaseException:
        context.try_shutdown()
        raise


@pytest.mark.parametrize(("config", "name"), [("record.yaml", "teleop"), ("record.yaml", "recorder")])
def test_config_keys_are_declared_with_their_types(ros_env, tmp_path, config, name):
    path = package_config(config)
    expected = yaml.safe_load(path.read_text())[f"/**/{name}"]["ros__parameters"]
    node, context = _make(NODES[name], name, ["--params-file", str(path), "-p", f"output_dir:={tmp_path}"])
    try:
        declared = {p: node.get_parameter(p).value for p in node._parameters}
        unknown = sorted(set(expected) - set(declared))
        assert not unknown, f"{config} sets parameters node {name} does not declare: {unknown}"
        for key, value in expected.items():
            if key != "output_dir":
                assert declared[key] == value, key
    finally:
        node.close()
        node.destroy_node()
        context.try_shutdown()


@pytest.mark.parametrize(("node_class", "args", "match"), [
    (TeleopNode, ["-p", "mode:=toggle"], "'mode' of node /t must be one of hold, latch; got 'toggle'"),
    (TeleopNode, ["-p", "control_rate_hz:=5"], "'control_rate_hz' of node /t.*INTEGER.*DOUBLE"),
    (TeleopNode, ["-p", "tilt_axis:=w"], "'tilt_axis' of node /t must be one of x, y, z"),
    (RecorderNode, ["-p", "sensor_types:=[webcam]", "-p", "sensors:=[left]"], "unknown sensor name 'webcam'"),
    (RecorderNode, ["-p", "prefix:=a/b"], "prefix must be a non-empty file name part"),
])
def test_bad_parameters_name_themselves(ros_env, tmp_path, node_class, args, match):
    with pytest.raises(ConfigError, match=match):
        _make(node_class, "t", [*args, "-p", f"output_dir:={tmp_path}"])


@pytest.mark.parametrize("config", ["pour.yaml", "record.yaml"])
def test_rcl_reads_every_section_as_written(ros_env, config):
    """rcl parses YAML 1.1 (a bare y, on, no... are booleans): every value, pending nodes' included, must reach the
    node with the type and value a reader of the file expects."""
    path = package_config(config)
    for key, section in yaml.safe_load(path.read_text()).items():
        name = key.removeprefix("/**/")
        context = Context()
        rclpy.init(context=context, args=["--ros-args", "-r", f"__node:={name}", "--params-file", str(path)])
        try:
            node = rclpy.create_node(name, context=context, automatically_declare_parameters_from_overrides=True)
            for param, value in section["ros__parameters"].items():
                got = node.get_parameter(param).value
                assert type(got) is type(value) and got == value, f"{config} {key}.{param}: {got!r} != {value!r}"
            node.destroy_node()
        finally:
            context.try_shutdown()
