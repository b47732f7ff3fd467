"""The YAML the launch files and bringup pass is what the nodes declare (no unknown, mistyped or misspelt keys), and
contradictory parameters are refused at start-up with a message naming them."""

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.parameter import Parameter

from anytouch_policy.bringup.plan import package_config
from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType
from anytouch_ros.arm_node import ArmNode
from anytouch_ros.encoder_node import EncoderNode
from anytouch_ros.expert_node import ExpertNode
from anytouch_ros.policy_node import PolicyNode
from anytouch_ros.recorder_node import RecorderNode
from anytouch_ros.sensor_node import SensorNode
from anytouch_ros.teleop_node import TeleopNode

NODES = {"teleop": TeleopNode, "recorder": RecorderNode, "sensor_left": SensorNode, "encoder": EncoderNode,
         "policy": PolicyNode, "arm": ArmNode, "expert": ExpertNode}


def _make(node_class, name: str, args: list[str]):
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "-r", f"__node:={name}", *args])
    try:
        return node_class(context=context), context
    except BaseException:
        context.try_shutdown()
        raise


def _flat(params: dict, prefix: str = "") -> dict:
    """Nested YAML mappings are dotted parameter names to rcl (xarm: {ip: ...} -> xarm.ip)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


#: What each node needs on top of the package YAML to start in a test (no hardware, tiny models).
def _needs(name: str, tmp_path, encoder_bundle, policy) -> dict[str, object]:
    return {"recorder": {"output_dir": str(tmp_path)}, "arm": {"backend": "sim"},
            "encoder": {"bundle": str(encoder_bundle), "sensors": ["left"], "sensor_types": ["gelsight_mini"]},
            "policy": {"bundle": str(policy)}}.get(name, {})


@pytest.mark.parametrize(("config", "name"), [(c, n) for c in ("record.yaml", "pour.yaml") for n in NODES
                                              if f"/**/{n}" in yaml.safe_load(package_config(c).read_text())])
def test_config_keys_are_declared_with_their_types(ros_env, tmp_path, encoder_bundle, pour_policy, config, name):
    path = package_config(config)
    expected = _flat(yaml.safe_load(path.read_text())[f"/**/{name}"]["ros__parameters"])
    needs = _needs(name, tmp_path, encoder_bundle, pour_policy)
    overrides = [a for k, v in needs.items() for a in ("-p", f"{k}:={yaml.safe_dump(v, default_flow_style=True)}")]
    node, context = _make(NODES[name], name, ["--params-file", str(path), *overrides])
    try:
        declared = {p: node.get_parameter_or(p, Parameter(p)).value for p in node._parameters}  # [] may be unset
        unknown = sorted(set(expected) - set(declared))
        assert not unknown, f"{config} sets parameters node {name} does not declare: {unknown}"
        for key, value in expected.items():
            if key not in needs:
                assert declared[key] == value, key
    finally:
        node.stop_workers()
        node.destroy_node()
        node.close()
        context.try_shutdown()


@pytest.mark.parametrize(("node_class", "args", "match"), [
    (TeleopNode, ["-p", "mode:=toggle"], "'mode' of node /t must be one of hold, latch; got 'toggle'"),
    (TeleopNode, ["-p", "control_rate_hz:=5"], "'control_rate_hz' of node /t.*INTEGER.*DOUBLE"),
    (TeleopNode, ["-p", "tilt_axis:=w"], "'tilt_axis' of node /t must be one of x, y, z"),
    (TeleopNode, ["-p", "hold_intial_s:=0.5"], "node /t has no parameter.s. hold_intial_s"),  # misspelt: refused
    (RecorderNode, ["-p", "sensor_types:=[webcam]", "-p", "sensors:=[left]"], "unknown sensor name 'webcam'"),
    (RecorderNode, ["-p", "prefix:=a/b"], "prefix must be a non-empty file name part"),
    (SensorNode, [], "sensor_name is required"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "sensor_type:=webcam"], "unknown sensor name 'webcam'"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "backend:=replay", "-p", "rate_hz:=30.0", "-p", "replay_bag:=/x"],
     "rate_hz .30.0. contradicts backend replay"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "backend:=digit", "-p", "device:=/dev/video0"],
     "a DIGIT is selected by its serial"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "sensor_type:=universal"], "no shipped sensor model for token slot "
     "universal"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "sim_model:=tac3d"], "unknown sensor model 'tac3d'; shipped models"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "digit.intensty:=3"], "has no parameter.s. digit.intensty"),
    (ArmNode, ["-p", "backend:=sim", "-p", "max_step_deg:=-1.0"], "'max_step_deg' of node /t must be in .0, 5.,"),
    (ArmNode, ["-p", "backend:=sim", "-p", "min_tilt_deg:=130.0"], "min_tilt_deg .130.0. must be below"),
    (ArmNode, ["-p", "backend:=sim", "-p", "sim_state_rate_hz:=30.0"], "sim_state_rate_hz' .* in .60, 1000., got 30.0"),
    (ArmNode, ["-p", "backend:=sim", "-p", "sim_split:=test"], "sim.split must be one of 'train' or 'eval', got 'te"),
    (ArmNode, ["-p", "backend:=sim", "-p", "sim_initial_g:=900.0"], "initial_g must be below 422 g"),
    (ArmNode, ["-p", "backend:=xarm"], "xarm: missing required parameter.s. ip, workspace_mm, tilt_axis"),
    (ArmNode, ["-p", "backend:=xarm", "-p", "xarm.ip:=''", "-p", "xarm.tilt_axis:=+y",
               "-p", "xarm.workspace_mm:=[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]"], "xarm.ip is required"),
    (ArmNode, ["-p", "backend:=xarm", "-p", "xarm.ip:=10.0.0.2", "-p", "xarm.tilt_axis:=+x",
               "-p", "xarm.workspace_mm:=[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]"], "xarm.tilt_axis '.x' turns about another"),
    (ArmNode, ["-p", "backend:=xarm", "-p", "xarm.ip:=10.0.0.2", "-p", "xarm.tilt_axis:=+y",
               "-p", "xarm.workspace_mm:=[1.0, 2.0]"],
     r"xarm.workspace_mm must hold 6 values \(items \[2\], \[3\], \[4\], \[5\] are missing\)"),
    (ExpertNode, ["-p", "episodes:=0"], "'episodes' of node /t must be in .1, 100000., got 0"),
    (EncoderNode, [], "set exactly one of parameters bundle .an encoder bundle. and policy"),
    (EncoderNode, ["-p", "bundle:=/x", "-p", "policy:=/y"], "set exactly one of parameters bundle"),
    (EncoderNode, ["-p", "bundle:=/x", "-p", "sensors:=[a, b]", "-p", "sensor_types:=[digit]"],
     "sensors .\\['a', 'b'\\]. and sensor_types .\\['digit'\\]. must have the same length"),
    (EncoderNode, ["-p", "bundle:=/x", "-p", "dtype:=int8"], "'dtype' of node /t must be one of float32"),
])
def test_bad_parameters_name_themselves(ros_env, tmp_path, node_class, args, match):
    extra = ["-p", f"output_dir:={tmp_path}"] if node_class is RecorderNode else []
    with pytest.raises(ConfigError, match=match):
        _make(node_class, "t", [*args, *extra])


@pytest.mark.parametrize(("node_class", "args", "match"), [
    # issue 11: each of these started and switched a protection off
    (ArmNode, ["-p", "max_step_deg:=.nan"], r"parameter 'max_step_deg' of node /t must be in \(0, 5\], got nan"),
    (ArmNode, ["-p", "max_rate_deg_s:=.inf"], r"'max_rate_deg_s' of node /t must be in \(0, 60\], got inf"),
    (ArmNode, ["-p", "command_timeout_s:=.inf"], r"'command_timeout_s' of node /t must be in \(0, 5\], got inf"),
    (ArmNode, ["-p", "max_tilt_deg:=720.0"], r"'max_tilt_deg' of node /t must be in \[0, 180\], got 720.0"),
    (ArmNode, ["-p", "min_tilt_deg:=-.inf"], r"'min_tilt_deg' of node /t must be in \[-180, 180\), got -inf"),
    (PolicyNode, ["-p", "max_age_s:=.nan"], r"'max_age_s' of node /t must be in \(0, 2\], got nan"),
    # one message per parameter (the policy node used to lump four into one)
    (PolicyNode, ["-p", "control_rate_hz:=0.0"], r"^parameter 'control_rate_hz' of node /t must be in \[1, 50\], "
                                                  r"got 0.0$"),
    (PolicyNode, ["-p", "delta_phi_deg:=-0.25"], r"^parameter 'delta_phi_deg' of node /t must be in \(0, 5\], "
                                                  r"got -0.25$"),
    (PolicyNode, ["-p", "deadline:=1.0"], r"^parameter 'deadline' of node /t must be in \(0, 1\), got 1.0$"),
    (PolicyNode, ["-p", "target_g:=.nan"], r"'target_g' of node /t must be in \(0, 1000\], got nan"),
    (TeleopNode, ["-p", "delta_phi_deg:=.inf"], r"'delta_phi_deg' of node /t must be in \(0, 5\], got inf"),
    (TeleopNode, ["-p", "hold_repeat_s:=.nan"], r"'hold_repeat_s' of node /t must be in \(0, 5\], got nan"),
    (ExpertNode, ["-p", "target_g:=.nan"], r"'target_g' of node /t must be in \(0, 1000\], got nan"),
    (RecorderNode, ["-p", "max_queue_mb:=.inf"], r"'max_queue_mb' of node /t must be in \(0, 65536\], got inf"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "rate_hz:=.nan"], r"'rate_hz' of node /t must be in \[0, 240\]"),
    (EncoderNode, ["-p", "stride:=-1"], r"'stride' of node /t must be in \[0, 60\], got -1"),
    # backend settings are finite numbers too, named by their dotted parameter
    (ArmNode, ["-p", "backend:=xarm", "-p", "xarm.ip:=10.0.0.2", "-p", "xarm.tilt_axis:=+y", "-p",
               "xarm.workspace_mm:=[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]", "-p", "xarm.tcp_speed_mm_s:=.nan"],
     r"xarm.tcp_speed_mm_s must be > 0, got nan"),
    (ArmNode, ["-p", "backend:=xarm", "-p", "xarm.ip:=10.0.0.2", "-p", "xarm.tilt_axis:=+y", "-p",
               "xarm.workspace_mm:=[1.0, 0.0, .inf, 0.0, 1.0, 0.0]"], r"xarm.workspace_mm\[2\] must be a finite"),
    (SensorNode, ["-p", "sensor_name:=l", "-p", "backend:=gelsight_mini", "-p", "serial:=X",
                  "-p", "gelsight_mini.border_fraction:=.nan"],
     r"gelsight_mini.border_fraction must be in \[0, 0.5\), got nan"),
])
def test_non_finite_and_out_of_range_numbers_are_refused_naming_parameter_and_value(ros_env, tmp_path, node_class,
                                                                                     args, match):
    extra = ["-p", f"output_dir:={tmp_path}"] if node_class is RecorderNode else []
    with pytest.raises(ConfigError, match=match):
        _make(node_class, "t", [*args, *extra])


@pytest.mark.parametrize("name", list(NODES))
def test_every_numeric_parameter_has_a_documented_range_and_refuses_nan(ros_env, tmp_path, encoder_bundle,
                                                                         pour_policy, name):
    """Each number a node declares carries its range in the descriptor (what `ros2 param describe` shows), and
    NaN (an integer parameter: a value outside every range) is refused for each with a message naming it."""
    needs = _needs(name, tmp_path, encoder_bundle, pour_policy)
    base = [a for k, v in needs.items() for a in ("-p", f"{k}:={yaml.safe_dump(v, default_flow_style=True)}")]
    if name == "sensor_left":
        base += ["-p", "sensor_name:=left"]
    node, context = _make(NODES[name], name, base)
    try:
        numbers = {p: node.describe_parameter(p) for p, v in node._parameters.items()
                   if p in node._ranges or isinstance(v.value, int | float) and not isinstance(v.value, bool)
                   and "." not in p}  # dotted ones are backend settings (dynamically typed, checked by the backend)
    finally:
        node.stop_workers()
        node.destroy_node()
        node.close()
        context.try_shutdown()
    assert numbers and set(numbers) == set(node._ranges)
    for param, descriptor in numbers.items():
        assert descriptor.additional_constraints == f"in {node._ranges[param]}"
        bad, shown = ("-1000000000000", "-1000000000000") if descriptor.type == Parameter.Type.INTEGER.value \
            else (".nan", "nan")
        with pytest.raises(ConfigError, match=f"parameter '{param}' of node /{name} must be in .*, got {shown}$"):
            _make(NODES[name], name, [*base, "-p", f"{param}:={bad}"])


def test_ros2_param_set_refuses_a_value_outside_the_range(ros_env, tmp_path):
    node, context = _make(RecorderNode, "t", ["-p", f"output_dir:={tmp_path}"])
    try:
        for value in (float("nan"), 5000.0):
            result = node.set_parameters([Parameter("target_g", value=value)])[0]
            assert not result.successful and "'target_g' of node /t must be in (0, 1000]" in result.reason
        assert node.set_parameters([Parameter("target_g", value=55.0)])[0].successful
        assert node.get_parameter("target_g").value == 55.0
    finally:
        node.destroy_node()
        node.close()
        context.try_shutdown()


@pytest.mark.parametrize(("node_class", "args", "match"), [
    (EncoderNode, ["-p", "sensors:=[left]"], "sensors \\['left'\\] .bundle: \\['left', 'right'\\]."),
    (EncoderNode, ["-p", "sensor_types:=[digit, digit]"], "sensor_types \\['digit', 'digit'\\] .bundle: "),
    (EncoderNode, ["-p", "token_mode:=universal"], "token_mode 'universal' .bundle: 'specific'."),
    (EncoderNode, ["-p", "stride:=2"], "stride 2 .bundle: 1.; leave them empty/0"),
    (PolicyNode, ["-p", "sensors:=[left]"], "sensors \\['left'\\] contradicts policy bundle .*trained on sensors"),
    (PolicyNode, ["-p", "target_g:=120.0"], "target_g .120.0. and initial_g .100.0. need 0 < target_g < initial_g"),
])
def test_parameters_contradicting_the_policy_bundle_are_refused(ros_env, pour_policy, node_class, args, match):
    key = "policy" if node_class is EncoderNode else "bundle"
    with pytest.raises(ConfigError, match=match):
        _make(node_class, "t", ["-p", f"{key}:={pour_policy}", *args])


def test_a_policy_bundle_configures_the_encoder(ros_env, pour_policy):
    node, context = _make(EncoderNode, "t", ["-p", f"policy:={pour_policy}", "-p", "device:=cpu",
                                             "-p", "sensors:=[left, right]"])  # equal to the bundle's: accepted
    try:
        assert node.stream.types == {"left": SensorType.GELSIGHT_MINI, "right": SensorType.DIGIT}
        assert node.stream.frames == 3 and node.runtime.token_mode.value == "specific"
    finally:
        node.stop_workers()
        node.destroy_node()
        context.try_shutdown()
    with pytest.raises(ConfigError, match="parameter bundle is required"):
        _make(PolicyNode, "t", [])


@pytest.mark.parametrize(("token_mode", "sensor_type"), [
    ("specific", "universal"),  # slot 9 is trained: accepted
    ("universal", "gelsight"),
    ("", "gelsight_mini"),  # "" = specific for an encoder bundle
])
def test_encoder_accepts_trained_tokens(ros_env, encoder_bundle, token_mode, sensor_type):
    node, context = _make(EncoderNode, "t", ["-p", f"bundle:={encoder_bundle}", "-p", "sensors:=[a]", "-p",
                                             f"sensor_types:=[{sensor_type}]", "-p", f"token_mode:={token_mode!r}",
                                             "-p", "device:=cpu"])
    try:
        assert node.runtime.token_mode.value == (token_mode or "specific")
        assert node.runtime.output_dim == 32  # the tiny preset
    finally:
        node.stop_workers()
        node.destroy_node()
        context.try_shutdown()


def test_encoder_refuses_a_specific_token_the_bundle_never_trained(ros_env, tmp_path):
    import torch

    from anytouch_policy.model import AnyTouchEncoder, save_encoder_bundle

    torch.manual_seed(0)
    save_encoder_bundle(tmp_path / "b", AnyTouchEncoder.from_preset("anytouch-tiny"), trained_slots=(0, 3, 9))
    with pytest.raises(ConfigError, match="sensor 'right': sensor 'digit' .token slot 1. has no trained token .* "
                                          "use token mode 'universal'"):
        _make(EncoderNode, "t", ["-p", f"bundle:={tmp_path / 'b'}", "-p", "sensors:=[left, right]",
                                 "-p", "sensor_types:=[gelsight_mini, digit]", "-p", "token_mode:=specific"])


@pytest.mark.parametrize("config", ["pour.yaml", "record.yaml"])
def test_rcl_reads_every_section_as_written(ros_env, config):
    """rcl parses YAML 1.1 (a bare y, on, no... are booleans): every value must reach the node with the type and
    value a reader of the file expects."""
    path = package_config(config)
    for key, section in yaml.safe_load(path.read_text()).items():
        name = key.removeprefix("/**/")
        context = Context()
        rclpy.init(context=context, args=["--ros-args", "-r", f"__node:={name}", "--params-file", str(path)])
        try:
            node = rclpy.create_node(name, context=context, automatically_declare_parameters_from_overrides=True)
            for param, value in _flat(section["ros__parameters"]).items():
                got = node.get_parameter(param).value
                assert type(got) is type(value) and got == value, f"{config} {key}.{param}: {got!r} != {value!r}"
            node.destroy_node()
        finally:
            context.try_shutdown()
