"""Bringup plans: node command lines, argument validation, the dry-run JSON (starting real nodes: tests/ros)."""

import io
import json

import pytest
import yaml

from anytouch_policy.bringup.plan import Mode, NodeSpec, Plan, make_plan, package_config, parse_sensors, run_plan
from anytouch_policy.cli.main import main
from anytouch_policy.errors import BundleError, ConfigError


def _ros_args(argv: list[str]) -> tuple[list[str], dict[str, str], list[str], dict[str, object]]:
    """Split a node command line the way rcl reads it: remaps, params files, -p overrides (YAML-parsed)."""
    i = argv.index("--ros-args")
    remaps, files, overrides = {}, [], {}
    rest = argv[i + 1:]
    for flag, value in zip(rest[::2], rest[1::2], strict=True):
        if flag == "-r":
            key, _, val = value.partition(":=")
            remaps[key] = val
        elif flag == "--params-file":
            files.append(value)
        elif flag == "-p":
            key, _, val = value.partition(":=")
            overrides[key] = yaml.safe_load(val)
        else:
            raise AssertionError(f"unexpected ROS argument {flag}")
    return argv[:i], remaps, files, overrides


def test_node_command_lines_carry_name_namespace_files_and_typed_overrides(tmp_path):
    extra = tmp_path / "lab.yaml"
    extra.write_text("{}\n")
    plan = make_plan("record", sim=True, sensors="true:digit,left:gelsight_mini", namespace="/rig1/",
                     config=[str(package_config("record.yaml")), str(extra)], output_dir="/data/eps")
    by_name = {n.name: n for n in plan.nodes}
    assert list(by_name) == ["sensor_true", "sensor_left", "arm", "teleop", "recorder"]
    assert by_name["teleop"].terminal and not by_name["recorder"].terminal
    head, remaps, files, overrides = _ros_args(by_name["recorder"].argv(python="py"))
    assert head == ["py", "-m", "anytouch_ros.recorder_node"]
    assert remaps == {"__node": "recorder", "__ns": "/rig1"}
    assert files == [str(package_config("record.yaml")), str(extra)]  # in order: later files win
    assert overrides == {"sensors": ["true", "left"], "sensor_types": ["digit", "gelsight_mini"], "rig": "sim",
                         "output_dir": "/data/eps"}  # a sensor named "true" stays a string
    _, _, _, sensor = _ros_args(by_name["sensor_true"].argv())
    assert sensor == {"sensor_name": "true", "sensor_type": "digit", "backend": "sim", "sim_index": 0}
    _, _, _, second = _ros_args(by_name["sensor_left"].argv())
    assert second["sim_index"] == 1  # the position in the rig's sensor list seeds the simulated look


def test_hardware_and_pour_overrides(tiny_encoder):
    plan = make_plan(Mode.POUR, sensors="left:gelsight_mini", policy="/m/p")
    nodes = {n.name: n.overrides for n in plan.nodes}
    assert nodes == {
        "sensor_left": {"sensor_name": "left", "sensor_type": "gelsight_mini", "backend": "gelsight_mini",
                        "sim_index": 0},
        "encoder": {"sensors": ["left"], "sensor_types": ["gelsight_mini"], "policy": "/m/p"},
        "policy": {"sensors": ["left"], "bundle": "/m/p"},
        "arm": {"backend": "xarm"},
    }
    assert all(n.params_files == (package_config("pour.yaml"),) for n in plan.nodes)
    encoder = {n.name: n.overrides for n in make_plan(Mode.POUR, encoder=str(tiny_encoder)).nodes}["encoder"]
    assert encoder["bundle"] == str(tiny_encoder) and "policy" not in encoder


def test_the_policy_bundle_names_the_sensors_unless_told(mini_policy, tmp_path, capsys):
    """The demo's policy (sensor gelsight_mini_left) runs with the README's pour command, no --sensors: the sensor
    nodes, the encoder and the policy get the bundle's names and types, the sim renders them on the named finger."""
    plan = make_plan(Mode.POUR, sim=True, policy=str(mini_policy))
    nodes = {n.name: n.overrides for n in plan.nodes}
    assert nodes["sensor_gelsight_mini_left"] == {"sensor_name": "gelsight_mini_left", "sensor_type": "gelsight_mini",
                                                  "backend": "sim", "sim_index": 0, "sim_finger": "left"}
    assert nodes["encoder"]["sensors"] == ["gelsight_mini_left"] == nodes["policy"]["sensors"]
    assert nodes["encoder"]["sensor_types"] == ["gelsight_mini"]
    hardware = {n.name: n.overrides for n in make_plan(Mode.POUR, policy=str(mini_policy)).nodes}
    assert hardware["sensor_gelsight_mini_left"]["backend"] == "gelsight_mini"  # the driver of that type
    assert "sim_finger" not in hardware["sensor_gelsight_mini_left"]
    # told: the given sensors win (the nodes then refuse a contradiction, naming the bundle: tests/ros)
    told = make_plan(Mode.POUR, sim=True, policy=str(mini_policy), sensors="left:gelsight_mini")
    assert [n.name for n in told.nodes][0] == "sensor_left"
    # no policy, or record mode: the default sensor
    assert [n.name for n in make_plan(Mode.POUR, sim=True).nodes][0] == "sensor_left"
    assert [n.name for n in make_plan(Mode.RECORD, sim=True).nodes][0] == "sensor_left"
    # the README's command, dry run
    assert main(["bringup", "pour", "--sim", "--policy", str(mini_policy), "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in printed["nodes"]] == ["sensor_gelsight_mini_left", "encoder", "policy", "arm"]
    with pytest.raises(BundleError, match="policy bundle folder not found"):
        make_plan(Mode.POUR, sim=True, policy=str(tmp_path / "missing"))


def test_expert_records_simulated_demonstrations_only():
    nodes = {n.name: n for n in make_plan(Mode.RECORD, sim=True, expert=True).nodes}
    assert list(nodes) == ["sensor_left", "arm", "expert", "recorder"]  # the expert replaces the keyboard
    assert not nodes["expert"].terminal and nodes["recorder"].overrides["source"] == "expert"
    with pytest.raises(ConfigError, match="add --sim"):
        make_plan(Mode.RECORD, expert=True)
    with pytest.raises(ConfigError, match="--expert and --output-dir apply to `bringup record` only"):
        make_plan(Mode.POUR, sim=True, expert=True)


def test_essential_nodes_are_those_without_which_the_set_is_useless():
    def essential(plan: Plan) -> set[str]:
        return {n.name for n in plan.nodes if n.essential}

    sensors = "left:gelsight_mini,right:digit"
    assert essential(make_plan(Mode.POUR, sim=True, sensors=sensors)) == {"encoder", "policy", "arm"}
    assert essential(make_plan(Mode.RECORD, sim=True, sensors=sensors)) == {"arm", "teleop", "recorder"}
    assert essential(make_plan(Mode.RECORD, sim=True, expert=True)) == {"arm", "expert", "recorder"}
    assert essential(make_plan(Mode.RECORD, teleop=False)) == {"arm", "recorder"}


@pytest.mark.parametrize(("text", "match"), [
    ("left", "not name:type"),
    ("left:gelsight_mini, right:digit", "not name:type"),  # no spaces: node names cannot hold them
    ("1left:digit", "not name:type"),
    ("left:webcam", "unknown sensor name 'webcam'"),
    ("a:digit,a:digit", "appears twice"),
])
def test_bad_sensor_lists_are_refused(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_sensors(text)


def test_options_of_the_other_mode_and_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--policy and --encoder apply to `bringup pour` only"):
        make_plan("record", policy="/m/p")
    with pytest.raises(ConfigError, match="apply to `bringup record` only"):
        make_plan("pour", teleop=False)
    with pytest.raises(ConfigError, match="namespace 'a b'"):
        make_plan("pour", namespace="a b")
    with pytest.raises(ConfigError, match="no such file"):
        make_plan("pour", config=[str(tmp_path / "missing.yaml")])
    for name, text, message in (("list.yaml", "- a\n- b\n", "holds a list"),
                                ("binary.yaml", "\x00\x01: [", "not a readable YAML file"),
                                ("flat.yaml", "rate_hz: 5\n", r"entries \['rate_hz'\] hold no ros__parameters"),
                                ("twice.yaml", "policy:\n  ros__parameters: {rate_hz: 5}\npolicy: {}\n",
                                 "key 'policy' given twice")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=rf"--config .*{name}: .*{message}"):
            make_plan("pour", config=[str(tmp_path / name)])
    with pytest.raises(ConfigError, match="a policy bundle brings its own encoder"):
        make_plan("pour", policy="/m/p", encoder="/m/e")
    with pytest.raises(BundleError, match="model bundle folder not found: .*nowhere"):  # now, not by the node
        make_plan("pour", encoder=str(tmp_path / "nowhere"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="--output-dir .*afile is a file"):
        make_plan("record", output_dir=str(tmp_path / "afile"))
    with pytest.raises(ValueError, match="'fly'"):
        make_plan("fly")


def test_dry_run_prints_the_plan(capsys):
    assert main(["bringup", "pour", "--sim", "--sensors", "l:digit,r:gelsight_mini", "--namespace", "rig2",
                 "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["mode"] == "pour" and plan["sim"] and plan["namespace"] == "rig2"
    assert [n["name"] for n in plan["nodes"]] == ["sensor_l", "sensor_r", "encoder", "policy", "arm"]
    assert plan["nodes"][0]["argv"][1:3] == ["-m", "anytouch_ros.sensor_node"]
    assert plan["nodes"][2]["overrides"] == {"sensors": ["l", "r"], "sensor_types": ["digit", "gelsight_mini"]}
    assert [n["essential"] for n in plan["nodes"]] == [False, False, True, True, True]
    assert main(["bringup", "record", "--policy", "x", "--dry-run"]) == 2  # clean error, no traceback


def test_run_plan_refuses_missing_modules_and_a_keyboard_node_without_terminal(monkeypatch):
    config = (package_config("record.yaml"),)
    missing = Plan(Mode.RECORD, False, "", (NodeSpec("ghost", "ghost_node", config),))
    with pytest.raises(ConfigError, match="anytouch_ros.ghost_node"):
        run_plan(missing)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    keyboard = Plan(Mode.RECORD, False, "", (NodeSpec("teleop", "teleop_node", config, terminal=True),))
    with pytest.raises(ConfigError, match="teleop reads the keyboard but stdin is not a terminal"):
        run_plan(keyboard)
