"""The launch files are the node plan: each builds its LaunchDescription with bringup.launch.launch_description, and
that description starts exactly the nodes `anytouch bringup` starts, with the same parameter files and overrides, and
shuts down on the same essential nodes (launch: `on_exit=Shutdown(...)`; bringup: their end stops the set).

launch_ros is not installed here, so the description is built with small recording classes in place of the launch
ones, and its OpaqueFunction is performed with a context for every combination of arguments.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from pathlib import Path

import pytest
import yaml

from anytouch_policy.bringup.launch import LaunchClasses, launch_description
from anytouch_policy.bringup.plan import (
    DEFAULT_SENSORS,
    LAUNCH_ARGUMENTS,
    Mode,
    make_plan,
    package_config,
    plan_from_launch,
)
from anytouch_policy.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"


class Recorded:
    """A launch action: keeps what it was built with."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchDescription(Recorded): ...


class DeclareLaunchArgument(Recorded): ...


class OpaqueFunction(Recorded): ...


class Node(Recorded): ...


class Shutdown(Recorded): ...


class LaunchConfiguration:
    """`LaunchConfiguration(name).perform(context)`: here the context is the dict of argument values."""

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


CLASSES = LaunchClasses(LaunchDescription=LaunchDescription, DeclareLaunchArgument=DeclareLaunchArgument,
                        OpaqueFunction=OpaqueFunction, LaunchConfiguration=LaunchConfiguration, Node=Node,
                        Shutdown=Shutdown)


def _describe(mode: str) -> tuple[dict[str, DeclareLaunchArgument], OpaqueFunction]:
    desc = launch_description(mode, CLASSES)
    assert isinstance(desc, LaunchDescription) and len(desc.args) == 1 and not desc.kwargs
    *declared, opaque = desc.args[0]
    assert all(isinstance(d, DeclareLaunchArgument) for d in declared) and isinstance(opaque, OpaqueFunction)
    return {d.args[0]: d for d in declared}, opaque


def _expected(mode: str, values: dict[str, str]):
    """make_plan called as a user of `anytouch bringup` would, from the same choices (typed by hand here)."""
    kwargs: dict[str, object] = {"sim": values["sim"] == "true", "sensors": values["sensors"],
                                 "namespace": values["namespace"],
                                 "config": [values["config"]] if values["config"] else []}
    if mode == "pour":
        kwargs |= {"policy": values["policy"], "encoder": values["encoder"]}
    else:
        kwargs |= {"teleop": values["teleop"] == "true", "expert": values["expert"] == "true",
                   "output_dir": values["output_dir"]}
    return make_plan(mode, **kwargs)


def _combinations(mode: str, user_config: Path, policy: Path, encoder: Path) -> list[dict[str, str]]:
    """Every combination; sensors '' = the policy bundle's (gelsight_mini_left), else the default."""
    choices = {"sim": ["false", "true"], "sensors": ["", DEFAULT_SENSORS, "left:gelsight_mini,right:digit"],
               "namespace": ["", "rig1"], "config": ["", str(user_config)]}
    if mode == "pour":
        choices |= {"policy": ["", str(policy)], "encoder": ["", str(encoder)]}
    else:
        choices |= {"teleop": ["true", "false"], "expert": ["false", "true"], "output_dir": ["", "/data/episodes"],
                    "teleop_prefix": ["xterm -e"]}
    return [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_launch_description_starts_the_nodes_bringup_starts(mode, tmp_path, mini_policy, tiny_encoder):
    declared, opaque = _describe(mode)
    user_config = tmp_path / "mine.yaml"
    user_config.write_text("{}\n")
    combos = _combinations(mode, user_config, mini_policy, tiny_encoder)
    from_bundle = 0
    refused, variants, essential_sets = 0, set(), set()
    for values in combos:
        assert set(values) == set(declared)
        if values.get("expert") == "true" and values["sim"] == "false":  # both refuse at once
            with pytest.raises(ConfigError, match="--expert drives the simulated rig"):
                opaque.kwargs["function"](values)
            with pytest.raises(ConfigError, match="--expert drives the simulated rig"):
                _expected(mode, values)
            refused += 1
            continue
        if values.get("policy") and values.get("encoder"):  # a policy brings its own encoder: refused at once
            for start in (opaque.kwargs["function"], lambda v: _expected(mode, v)):
                with pytest.raises(ConfigError, match="a policy bundle brings its own encoder"):
                    start(values)
            refused += 1
            continue
        nodes = opaque.kwargs["function"](values)
        plan = _expected(mode, values)
        assert [n.kwargs["name"] for n in nodes] == [s.name for s in plan.nodes]
        if values["sensors"] == "" and values.get("policy"):  # the bundle's sensor, as `bringup --policy` takes it
            assert nodes[0].kwargs["name"] == "sensor_gelsight_mini_left"
            from_bundle += 1
        elif values["sensors"] == "":
            assert nodes[0].kwargs["name"] == "sensor_left"
        for node, spec in zip(nodes, plan.nodes, strict=True):
            assert isinstance(node, Node) and not node.args
            kw = dict(node.kwargs)
            on_exit, prefix = kw.pop("on_exit", None), kw.pop("prefix", None)
            assert kw == {"package": "anytouch_ros", "executable": spec.executable, "name": spec.name,
                          "namespace": spec.namespace, "output": "screen",
                          "parameters": [*map(str, spec.params_files), spec.overrides]}, (values, spec)
            assert (on_exit is not None) == spec.essential
            if on_exit is not None:
                assert isinstance(on_exit, Shutdown) and set(on_exit.kwargs) == {"reason"} and spec.name in str(
                    on_exit.kwargs["reason"])
            assert prefix == (values["teleop_prefix"] if spec.terminal else None)
        default = str(package_config(f"{mode}.yaml"))
        assert nodes[0].kwargs["parameters"][0] == (str(user_config) if values["config"] else default)
        essential = frozenset(s.name for s in plan.nodes if s.essential)
        assert essential and essential != {s.name for s in plan.nodes}  # some nodes end the set, the sensors do not
        essential_sets.add(essential)
        variants.add(str([(n.kwargs["name"], n.kwargs["parameters"]) for n in nodes]))
    # not vacuous: the arguments change which nodes start and with what
    assert len(combos) == {"pour": 96, "record": 192}[mode] and len(variants) >= 16
    assert refused == {"pour": 24, "record": 48}[mode]
    assert from_bundle == {"pour": 8, "record": 0}[mode]
    assert len(essential_sets) == {"pour": 1, "record": 3}[mode]  # record: with teleop, with expert, with neither


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_launch_argument_defaults_match_bringup(mode):
    declared, _ = _describe(mode)
    assert list(declared) == [a.name for a in LAUNCH_ARGUMENTS[Mode(mode)]]
    defaults = {k: p.default for k, p in inspect.signature(make_plan).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for name, argument in declared.items():
        default = argument.kwargs["default_value"]
        assert argument.kwargs["description"]
        if name in ("teleop_prefix", "config"):  # launch-only: a terminal window; the package file when empty
            continue
        expected = defaults[name]
        assert default == (str(expected).lower() if isinstance(expected, bool) else expected), name
        assert ("choices" in argument.kwargs) == isinstance(expected, bool), name
    assert declared["config"].kwargs["default_value"] == "" and defaults["config"] == ()


def test_launch_values_are_checked():
    values = {a.name: a.default for a in LAUNCH_ARGUMENTS[Mode.POUR]}
    assert [n.name for n in plan_from_launch("pour", values).nodes] == ["sensor_left", "encoder", "policy", "arm"]
    with pytest.raises(ConfigError, match=r"launch argument sim:='yes' must be one of \['true', 'false'\]"):
        plan_from_launch("pour", values | {"sim": "yes"})
    with pytest.raises(ConfigError, match="differ from the declared"):
        plan_from_launch("pour", values | {"teleop": "true"})
    with pytest.raises(ConfigError, match="no such file"):
        plan_from_launch("pour", values | {"config": "/nowhere/pour.yaml"})


_REAL_CLASSES = {"LaunchDescription": "launch", "DeclareLaunchArgument": "launch.actions",
                 "OpaqueFunction": "launch.actions", "Shutdown": "launch.actions",
                 "LaunchConfiguration": "launch.substitutions", "Node": "launch_ros.actions"}


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_each_launch_file_only_calls_launch_description_with_its_mode(mode):
    tree = ast.parse((LAUNCH / f"{mode}.launch.py").read_text())
    body = tree.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)  # the docstring
    imported = {}
    for stmt in body[1:-1]:
        assert isinstance(stmt, ast.ImportFrom), ast.dump(stmt)
        imported |= {alias.name: stmt.module for alias in stmt.names if alias.asname is None}
    assert imported == _REAL_CLASSES | {"LaunchClasses": "anytouch_policy.bringup.launch",
                                         "launch_description": "anytouch_policy.bringup.launch"}
    func = body[-1]
    assert isinstance(func, ast.FunctionDef) and func.name == "generate_launch_description" and not func.args.args
    assert len(func.body) == 1 and isinstance(func.body[0], ast.Return)
    call = func.body[0].value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "launch_description"
    assert not call.keywords and len(call.args) == 2
    assert isinstance(call.args[0], ast.Constant) and call.args[0].value == mode
    classes = call.args[1]
    assert isinstance(classes, ast.Call) and isinstance(classes.func, ast.Name) and classes.func.id == "LaunchClasses"
    assert not classes.args
    assert {k.arg: k.value.id for k in classes.keywords if isinstance(k.value, ast.Name)} == {
        name: name for name in _REAL_CLASSES}


def test_every_planned_node_has_a_module_and_every_node_module_is_planned():
    plans = [make_plan(m, sim=True) for m in Mode] + [make_plan(Mode.RECORD, sim=True, expert=True)]
    executables = {n.executable for plan in plans for n in plan.nodes}
    present = {p.stem for p in (REPO / "anytouch_ros").glob("*_node.py")}
    assert executables == present
    for module in present:
        tree = ast.parse((REPO / "anytouch_ros" / f"{module}.py").read_text())
        assert any(isinstance(s, ast.FunctionDef) and s.name == "main" for s in tree.body), module


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_config_sections_name_the_launched_nodes(mode):
    data = yaml.safe_load(package_config(f"{mode}.yaml").read_text())
    assert "/**" not in data, "a '/**' section would beat the launch overrides (rcl merges -p into it)"
    assert all(key.startswith("/**/") for key in data)
    sections = {key.removeprefix("/**/") for key in data}
    plans = [make_plan(mode, sim=True)] + ([make_plan(mode, sim=True, expert=True)] if mode == "record" else [])
    assert sections == {n.name for plan in plans for n in plan.nodes}  # default sensors: sensor_left
    for section in data.values():
        assert set(section) == {"ros__parameters"}
    shared: dict[str, set] = {}
    for params in (s["ros__parameters"] for s in data.values()):
        for key in ("control_rate_hz", "delta_phi_deg", "tilt_axis", "tool_frame"):
            if key in params:
                shared.setdefault(key, set()).add(params[key])
    assert shared and all(len(values) == 1 for values in shared.values()), shared
    params = {key.removeprefix("/**/"): section["ros__parameters"] for key, section in data.items()}
    grams = params["policy"] if mode == "pour" else params["recorder"]
    assert params["arm"]["sim_initial_g"] == grams["initial_g"]  # the sim pours what the metadata/conditioning says
    if mode == "record":
        assert params["expert"]["target_g"] == grams["target_g"]
