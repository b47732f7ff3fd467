"""The node plan: the one definition of the pour and record node sets and of their launch arguments.

`make_plan` turns the arguments into nodes, parameter files, overrides and which nodes are essential;
`anytouch bringup` runs that plan as supervised processes, and launch/pour.launch.py and launch/record.launch.py
build their launch_ros Node actions from it (bringup.launch), so the two cannot drift. `LAUNCH_ARGUMENTS` declares
each mode's launch arguments and `plan_from_launch` reads their string values.

`NodeSpec.argv` is the command line `ros2 launch` would run, minus the workspace: `python -m
anytouch_ros.<executable> --ros-args -r __node:=<name> [-r __ns:=/<ns>] --params-file <yaml> ... -p <k>:=<v> ...`.
rcl applies files and -p overrides in command-line order, so overrides win over the YAML (see config/*.yaml on why
those files must not contain a "/**" section).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from anytouch_policy.bringup.supervisor import ProcessSpec, Supervisor
from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType

PACKAGE = "anytouch_ros"

#: The sensors of a node set given no `sensors` argument (launch argument and `anytouch bringup --sensors`) and no
#: policy bundle, whose own sensors it otherwise runs.
DEFAULT_SENSORS = "left:gelsight_mini"

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Mode(StrEnum):
    POUR = "pour"  # sensors -> encoder -> policy -> arm
    RECORD = "record"  # sensors, arm, teleop (or the sim expert), recorder: demonstrations


@dataclass(frozen=True)
class NodeSpec:
    """One node process: what `launch_ros.actions.Node(...)` describes."""

    name: str
    executable: str  # console script of the package == module anytouch_ros.<executable>
    params_files: tuple[Path, ...]
    overrides: dict[str, object] = field(default_factory=dict)
    namespace: str = ""
    terminal: bool = False  # reads the operator's keyboard: inherits the terminal instead of a prefixed pipe
    essential: bool = False  # its end ends the set (launch: on_exit=Shutdown); see make_plan

    def argv(self, python: str = sys.executable) -> list[str]:
        args = [python, "-m", f"{PACKAGE}.{self.executable}", "--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:=/{self.namespace}"]
        for path in self.params_files:
            args += ["--params-file", str(path)]
        for key, value in self.overrides.items():
            args += ["-p", f"{key}:={json.dumps(value)}"]  # JSON is YAML: strings stay strings, lists stay typed
        return args

    def to_dict(self) -> dict:
        return {"name": self.name, "executable": self.executable, "namespace": self.namespace,
                "params_files": [str(p) for p in self.params_files], "overrides": self.overrides,
                "terminal": self.terminal, "essential": self.essential, "argv": self.argv()}


@dataclass(frozen=True)
class Plan:
    mode: Mode
    sim: bool
    namespace: str
    nodes: tuple[NodeSpec, ...]

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode.value, "sim": self.sim, "namespace": self.namespace,
                           "nodes": [n.to_dict() for n in self.nodes]}, indent=2)


@dataclass(frozen=True)
class LaunchArgument:
    """One argument a launch file declares (`name:=value`); every value arrives as a string."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()


_BOOL = ("true", "false")
_COMMON = (
    LaunchArgument("sim", "false", "simulated rig (sensor and arm backends 'sim') instead of the hardware", _BOOL),
    LaunchArgument("sensors", "", "name:type[,name:type...]; a driver node sensor_<name> per entry ('' = the "
                   f"policy bundle's sensors, else {DEFAULT_SENSORS})"),
    LaunchArgument("namespace", "", "namespace of every node and topic"),
)

#: The launch arguments of each mode, in declaration order. All but `teleop_prefix` (launch only: ros2 launch gives
#: nodes no terminal, so the teleop gets a window) map onto make_plan's keywords of the same name.
LAUNCH_ARGUMENTS: dict[Mode, tuple[LaunchArgument, ...]] = {
    Mode.POUR: (
        *_COMMON,
        LaunchArgument("policy", "", "policy bundle folder ('' = config's)"),
        LaunchArgument("encoder", "", "encoder bundle folder ('' = config's); not with policy, which has its own"),
        LaunchArgument("config", "", "parameter file ('' = the package's pour.yaml)"),
    ),
    Mode.RECORD: (
        *_COMMON,
        LaunchArgument("teleop", "true", "start the keyboard teleop (false: run it yourself in a terminal)", _BOOL),
        LaunchArgument("expert", "false", "scripted expert instead of the keyboard teleop (sim only: needs sim/state)",
                       _BOOL),
        LaunchArgument("teleop_prefix", "xterm -e", "command that gives the teleop a terminal window"),
        LaunchArgument("output_dir", "", "episodes directory ('' = config's)"),
        LaunchArgument("config", "", "parameter file ('' = the package's record.yaml)"),
    ),
}
LAUNCH_ONLY = frozenset({"teleop_prefix"})


def parse_sensors(text: str) -> list[tuple[str, str]]:
    """`name:type[,name:type...]` (the `sensors` launch argument) -> [(name, type)], validated, types as written."""
    out: list[tuple[str, str]] = []
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) != 2 or not _NAME_RE.match(parts[0]):
            raise ConfigError(f"sensors: {item!r} is not name:type (name of letters, digits and _, e.g. "
                              f"{DEFAULT_SENSORS!r}; several separated by commas, no spaces)")
        SensorType.from_name(parts[1])  # ConfigError lists the valid types
        out.append((parts[0], parts[1]))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"sensors: a name appears twice in {text!r}")
    return out


def policy_sensors(policy: str | Path) -> list[tuple[str, str]]:
    """The (name, type) pairs a policy bundle was trained with, from its checked config.json (no weights loaded)."""
    from anytouch_policy.policy.bundle import read_policy_config

    listed = ",".join(f"{s.name}:{s.type.label}" for s in read_policy_config(policy).sensors)
    try:
        return parse_sensors(listed)
    except ConfigError as exc:
        raise ConfigError(f"policy bundle {policy}: its sensors cannot name nodes ({exc}); pass --sensors") from None


def package_config(name: str) -> Path:
    """config/<name> of the package: the source checkout's, else the ROS share directory, else the pip one."""
    candidates = [Path(__file__).resolve().parents[2] / "config" / name]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / name)
    except (ImportError, LookupError, OSError):  # no workspace sourced (OSError: AMENT_PREFIX_PATH unset)
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "config" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"config/{name} not found; looked in {', '.join(str(c) for c in candidates)}")


def check_parameter_file(path: Path) -> None:
    """A ROS 2 parameter file: YAML whose top level maps node names (or /**) to their settings."""
    from anytouch_policy.schema import load_yaml

    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        data = load_yaml(path)  # the files-we-read rules: safe loader, a key written twice refused
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: not a readable YAML file ({exc})") from None
    if data is None:  # empty, or only comments: nothing to apply
        return
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: a parameter file maps node names to their ros__parameters; this one "
                          f"holds a {type(data).__name__}")
    bad = [str(k) for k, v in data.items() if not isinstance(v, dict) or "ros__parameters" not in v]
    if bad:
        raise ConfigError(f"--config {path}: entries {bad[:3]} hold no ros__parameters mapping")


def make_plan(
    mode: Mode | str,
    *,
    sim: bool = False,
    sensors: str = "",
    namespace: str = "",
    policy: str = "",
    encoder: str = "",
    teleop: bool = True,
    expert: bool = False,
    output_dir: str = "",
    config: list[str] | tuple[str, ...] = (),
) -> Plan:
    """The node set of `anytouch bringup <mode>` and `ros2 launch anytouch_ros <mode>.launch.py`.

    `config`: parameter files replacing the package's config/<mode>.yaml (the launch files take one, `config:=`);
    several are applied in order, later ones win. `expert` (record, sim only) starts the scripted expert instead of
    the keyboard teleop. With `policy` the encoder node gets the policy bundle too (it brings its own encoder; the
    encoder node refuses an encoder bundle next to it).

    Essential nodes, whose end ends the whole set (bringup; launch: on_exit=Shutdown): those without which the set is
    useless, the encoder, policy and arm of `pour`; the arm and recorder of `record`, and its teleop or expert, whose
    exit is how a session ends (the operator quits, the expert has recorded its episodes). A sensor driver is not:
    its death is reported, and the policy holds (stale data -> wait) until a driver publishes again.
    """
    mode = Mode(mode)
    if mode is Mode.POUR and (not teleop or expert or output_dir):
        raise ConfigError("--no-teleop, --expert and --output-dir apply to `bringup record` only")
    if expert and not sim:
        raise ConfigError("--expert drives the simulated rig from its ground truth (sim/state): add --sim")
    if mode is Mode.RECORD and (policy or encoder):
        raise ConfigError("--policy and --encoder apply to `bringup pour` only")
    if policy and encoder:
        raise ConfigError("--encoder: a policy bundle brings its own encoder; give --policy or --encoder, not both")
    if encoder:  # checked now, not when the encoder node starts
        from anytouch_policy.model.bundle import read_bundle_config

        read_bundle_config(encoder)
    if output_dir and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ConfigError(f"--output-dir {output_dir} is a file; episodes are written into a folder")
    namespace = namespace.strip("/")
    if namespace and not all(_NAME_RE.match(part) for part in namespace.split("/")):
        raise ConfigError(f"namespace {namespace!r} must be names of letters, digits and _ separated by /")
    files = tuple(Path(c).resolve() for c in config) or (package_config(f"{mode.value}.yaml"),)
    for path in files:
        check_parameter_file(path)
    from_policy = not sensors and mode is Mode.POUR and bool(policy)
    pairs = policy_sensors(policy) if from_policy else parse_sensors(sensors or DEFAULT_SENSORS)
    names, kinds = [n for n, _ in pairs], [k for _, k in pairs]

    def node(name: str, executable: str, overrides: Mapping[str, object], *, terminal: bool = False,
             essential: bool = True) -> NodeSpec:
        return NodeSpec(name, executable, files, dict(overrides), namespace, terminal, essential)

    fingers: dict[str, object] = {}
    if sim and from_policy:  # imported here: the sim package takes a second to load, a launch file needs it not
        from anytouch_policy.sim.sensor_params import Finger

        fingers = {name: Finger.of_name(name).name.lower() for name in names}
    nodes = [node(f"sensor_{name}", "sensor_node", {"sensor_name": name, "sensor_type": kind,
                                                     "backend": "sim" if sim else kind, "sim_index": index}
                  | ({"sim_finger": fingers[name]} if name in fingers else {}), essential=False)
             for index, (name, kind) in enumerate(pairs)]
    if mode is Mode.POUR:
        nodes.append(node("encoder", "encoder_node", {"sensors": names, "sensor_types": kinds}
                          | ({"bundle": encoder} if encoder else {}) | ({"policy": policy} if policy else {})))
        nodes.append(node("policy", "policy_node", {"sensors": names} | ({"bundle": policy} if policy else {})))
        nodes.append(node("arm", "arm_node", {"backend": "sim" if sim else "xarm"}))
    else:
        nodes.append(node("arm", "arm_node", {"backend": "sim" if sim else "xarm"}))
        if expert:
            nodes.append(node("expert", "expert_node", {}))
        elif teleop:
            nodes.append(node("teleop", "teleop_node", {}, terminal=True))
        recorder: dict[str, object] = {"sensors": names, "sensor_types": kinds}
        if sim:
            recorder["rig"] = "sim"
        if expert:
            recorder["source"] = "expert"
        if output_dir:
            recorder["output_dir"] = output_dir
        nodes.append(node("recorder", "recorder_node", recorder))
    return Plan(mode, sim, namespace, tuple(nodes))


def plan_from_launch(mode: Mode | str, values: Mapping[str, str]) -> Plan:
    """The plan for the launch arguments' string values (every argument of LAUNCH_ARGUMENTS[mode], as performed)."""
    mode = Mode(mode)
    declared = {a.name: a for a in LAUNCH_ARGUMENTS[mode]}
    if set(values) != set(declared):
        raise ConfigError(f"{mode.value} launch arguments {sorted(values)} differ from the declared {sorted(declared)}")
    kwargs: dict[str, Any] = {}  # make_plan's keyword arguments, each of its own type
    for name, value in values.items():
        argument = declared[name]
        if argument.choices and value not in argument.choices:
            raise ConfigError(f"launch argument {name}:={value!r} must be one of {list(argument.choices)}")
        if name in LAUNCH_ONLY:
            continue
        if name == "config":
            kwargs[name] = [value] if value else []
        else:
            kwargs[name] = value == "true" if argument.choices == _BOOL else value
    return make_plan(mode, **kwargs)


def run_plan(plan: Plan, *, stop_timeout_s: float = 10.0, out: TextIO | None = None,
             env: dict[str, str] | None = None) -> int:
    """Start the plan's nodes under a Supervisor; returns its exit status."""
    missing = [n.executable for n in plan.nodes if importlib.util.find_spec(f"{PACKAGE}.{n.executable}") is None]
    if missing:
        raise ConfigError(f"node modules not found: {', '.join(f'{PACKAGE}.{m}' for m in sorted(set(missing)))} "
                          "(is the anytouch_ros package installed, or the repository on PYTHONPATH?)")
    terminal = [n.name for n in plan.nodes if n.terminal]
    if terminal and not sys.stdin.isatty():
        raise ConfigError(f"node {', '.join(terminal)} reads the keyboard but stdin is not a terminal: run bringup "
                          "in a terminal, or pass --no-teleop and run `python -m anytouch_ros.teleop_node` elsewhere")
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")  # children's lines arrive as printed
    specs = [ProcessSpec(n.name, n.argv(), terminal=n.terminal, essential=n.essential) for n in plan.nodes]
    return Supervisor(specs, env=env, out=out, stop_timeout_s=stop_timeout_s).run()
