"""The launch files and `anytouch bringup` start the same nodes, with the same parameter files and overrides, and
agree on which nodes are essential (launch: `on_exit=Shutdown(...)`; bringup: their end stops the set).

launch_ros is not installed here, so the launch files are read with `ast` and their `_nodes(context)` function is
interpreted by a small evaluator that knows only the constructs those files use (plain assignments, ifs, list
comprehensions, string splits, Node(...), Shutdown(...) and LaunchConfiguration(...).perform(context)). Anything
else fails the test loudly, so a launch-file edit outside that subset cannot slip through unchecked.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import posixpath
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from anytouch_policy.bringup.plan import DEFAULT_SENSORS, Mode, make_plan, package_config
from anytouch_policy.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
#: Nodes named by the launch files whose modules have not landed yet (none left).
PENDING: set[str] = set()


@dataclass
class _Call:
    """A launch action constructed in the file: Node, Shutdown, DeclareLaunchArgument, OpaqueFunction,
    LaunchDescription."""

    kind: str
    args: list
    kwargs: dict


@dataclass
class _Config:
    name: str  # LaunchConfiguration("name")


class _Return(Exception):
    def __init__(self, value: object) -> None:
        self.value = value


_ACTIONS = {"Node", "Shutdown", "DeclareLaunchArgument", "OpaqueFunction", "LaunchDescription"}
_METHODS = {str: {"split", "strip"}, list: {"append", "extend"}, dict: {"update"}}
_CONTEXT = object()


class LaunchInterpreter:
    """Evaluates one launch file's module body and functions for given launch argument values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.arguments: dict[str, str] = {}
        self.globals: dict[str, object] = {"enumerate": enumerate}
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                for alias in stmt.names:
                    self.globals[alias.asname or alias.name] = ("import", alias.name)
            elif isinstance(stmt, ast.FunctionDef):
                self.globals[stmt.name] = stmt
            elif isinstance(stmt, ast.Assign):
                self._exec(stmt, self.globals)
            elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                self._fail(stmt, "module-level statement")

    def _fail(self, node: ast.AST, what: str) -> None:
        raise AssertionError(f"{self.path.name}:{getattr(node, 'lineno', '?')}: {what} is outside the subset the "
                             f"equivalence test understands ({ast.dump(node)[:120]})")

    # --- statements ----------------------------------------------------------------------------------------------
    def _exec(self, stmt: ast.stmt, env: dict) -> None:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            self._assign(stmt.targets[0], self._eval(stmt.value, env), env)
        elif isinstance(stmt, ast.If):
            for inner in stmt.body if self._eval(stmt.test, env) else stmt.orelse:
                self._exec(inner, env)
        elif isinstance(stmt, ast.Expr):
            self._eval(stmt.value, env)
        elif isinstance(stmt, ast.Return):
            raise _Return(self._eval(stmt.value, env) if stmt.value else None)
        else:
            self._fail(stmt, type(stmt).__name__)

    def _assign(self, target: ast.expr, value: object, env: dict) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Subscript):
            self._eval(target.value, env)[self._eval(target.slice, env)] = value
        elif isinstance(target, ast.Tuple):
            values = list(value)
            if len(values) != len(target.elts):
                raise AssertionError(f"{self.path.name}:{target.lineno}: cannot unpack {values!r}")
            for elt, item in zip(target.elts, values, strict=True):
                self._assign(elt, item, env)
        else:
            self._fail(target, "assignment target")

    def call_function(self, func: ast.FunctionDef, args: list) -> object:
        env = dict(self.globals)
        for param, value in zip(func.args.args, args, strict=True):
            env[param.arg] = value
        try:
            for stmt in func.body:
                if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                    self._exec(stmt, env)
        except _Return as ret:
            return ret.value
        return None

    # --- expressions ---------------------------------------------------------------------------------------------
    def _eval(self, node: ast.expr, env: dict) -> object:
        match node:
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                if name not in env:
                    self._fail(node, f"unknown name {name!r}")
                return env[name]
            case ast.List(elts=elts) | ast.Tuple(elts=elts):
                return [self._eval(e, env) for e in elts]
            case ast.Dict(keys=keys, values=values):
                if any(k is None for k in keys):
                    self._fail(node, "dict unpacking")
                return {self._eval(k, env): self._eval(v, env) for k, v in zip(keys, values, strict=True)}
            case ast.ListComp(elt=elt, generators=[gen]) if not gen.ifs:
                out = []
                for item in self._eval(gen.iter, env):
                    inner = dict(env)
                    self._assign(gen.target, item, inner)
                    out.append(self._eval(elt, inner))
                return out
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return self._eval(body if self._eval(test, env) else orelse, env)
            case ast.Compare(left=left, ops=[op], comparators=[right]) if isinstance(op, ast.Eq | ast.NotEq):
                equal = self._eval(left, env) == self._eval(right, env)
                return equal if isinstance(op, ast.Eq) else not equal
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self._eval(operand, env)
            case ast.BinOp(left=left, op=ast.Add(), right=right):
                return self._eval(left, env) + self._eval(right, env)
            case ast.Attribute(value=value, attr=attr):
                return self._attribute(node, self._eval(value, env), attr)
            case ast.Call(func=func, args=args, keywords=keywords):
                if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in keywords):
                    self._fail(node, "star arguments")
                return self._call(node, self._eval(func, env), [self._eval(a, env) for a in args],
                                  {k.arg: self._eval(k.value, env) for k in keywords})
        self._fail(node, type(node).__name__)

    def _attribute(self, node: ast.Attribute, value: object, attr: str) -> object:
        if value == ("import", "os") and attr == "path":
            return ("os.path",)
        if value == ("os.path",) and attr == "join":
            return posixpath.join
        if isinstance(value, _Config) and attr == "perform":
            return lambda context: self._perform(node, value, context)
        if attr in _METHODS.get(type(value), ()):
            return getattr(value, attr)
        self._fail(node, f"attribute .{attr} of {type(value).__name__}")

    def _perform(self, node: ast.AST, config: _Config, context: object) -> str:
        if context is not _CONTEXT:
            self._fail(node, "perform() outside an OpaqueFunction")
        if config.name not in self.arguments:
            self._fail(node, f"LaunchConfiguration({config.name!r}) of an undeclared argument")
        return self.arguments[config.name]

    def _call(self, node: ast.Call, func: object, args: list, kwargs: dict) -> object:
        if isinstance(func, ast.FunctionDef):
            return self.call_function(func, args)
        if func == ("import", "LaunchConfiguration"):
            return _Config(*args)
        if func == ("import", "get_package_share_directory"):
            return f"<share:{args[0]}>"
        if isinstance(func, tuple) and func[0] == "import" and func[1] in _ACTIONS:
            return _Call(func[1], args, kwargs)
        if callable(func) and not isinstance(func, tuple):
            return func(*args, **kwargs)
        self._fail(node, f"call of {func!r}")

    # --- the launch description ----------------------------------------------------------------------------------
    def declared(self) -> dict[str, str]:
        """Launch argument name -> default_value."""
        desc = self.call_function(self.globals["generate_launch_description"], [])
        assert isinstance(desc, _Call) and desc.kind == "LaunchDescription"
        return {a.args[0]: a.kwargs["default_value"] for a in desc.args[0] if a.kind == "DeclareLaunchArgument"}

    def nodes(self, arguments: dict[str, str]) -> list[_Call]:
        declared = self.declared()
        assert set(arguments) == set(declared), f"arguments {sorted(arguments)} != declared {sorted(declared)}"
        self.arguments = arguments
        desc = self.call_function(self.globals["generate_launch_description"], [])
        out: list[_Call] = []
        for action in desc.args[0]:
            if action.kind == "OpaqueFunction":
                out += self.call_function(action.kwargs["function"], [_CONTEXT])
        assert all(isinstance(n, _Call) and n.kind == "Node" for n in out)
        return out


def _essential(node: _Call) -> bool:
    """A node is essential when its exit shuts the launch down: `on_exit=Shutdown(reason=...)`, nothing else."""
    on_exit = node.kwargs.get("on_exit")
    if on_exit is None:
        return False
    assert isinstance(on_exit, _Call) and on_exit.kind == "Shutdown", f"{node.kwargs['name']}: on_exit={on_exit!r}"
    assert not on_exit.args and set(on_exit.kwargs) == {"reason"} and on_exit.kwargs["reason"]
    return True


def _launch_view(node: _Call) -> dict:
    kw = node.kwargs
    assert kw["package"] == "anytouch_ros" and kw.get("output") == "screen"
    files, overrides = [], {}
    for entry in kw["parameters"]:
        if isinstance(entry, str):
            files.append(entry.replace("<share:anytouch_ros>/config/", "pkg:"))
        else:
            overrides.update(entry)
    return {"name": kw["name"], "executable": kw["executable"], "namespace": kw["namespace"].strip("/"),
            "params_files": files, "overrides": overrides, "essential": _essential(node)}


def _plan_view(mode: str, arguments: dict[str, str]) -> list[dict]:
    kwargs = {k: v for k, v in arguments.items() if k not in ("sim", "teleop", "expert", "teleop_prefix", "config")}
    plan = make_plan(mode, sim=arguments["sim"] == "true", teleop=arguments.get("teleop", "true") == "true",
                     expert=arguments.get("expert", "false") == "true",
                     config=[arguments["config"]] if arguments["config"] else [], **kwargs)
    default = package_config(f"{mode}.yaml")
    return [{"name": n.name, "executable": n.executable, "namespace": n.namespace,
             "params_files": [f"pkg:{p.name}" if p == default else str(p) for p in n.params_files],
             "overrides": n.overrides, "essential": n.essential} for n in plan.nodes]


def _combinations(mode: str, user_config: Path) -> list[dict[str, str]]:
    choices = {"sim": ["false", "true"], "sensors": [DEFAULT_SENSORS, "left:gelsight_mini,right:digit"],
               "namespace": ["", "rig1"], "config": ["", str(user_config)]}
    if mode == "pour":
        choices |= {"policy": ["", "/models/policy"], "encoder": ["", "/models/encoder"]}
    else:
        choices |= {"teleop": ["true", "false"], "expert": ["false", "true"], "output_dir": ["", "/data/episodes"],
                    "teleop_prefix": ["xterm -e"]}
    return [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_launch_file_and_bringup_start_the_same_nodes(mode, tmp_path):
    interp = LaunchInterpreter(LAUNCH / f"{mode}.launch.py")
    user_config = tmp_path / "mine.yaml"
    user_config.write_text("{}\n")
    combos = _combinations(mode, user_config)
    refused = 0
    essential_sets = set()
    for arguments in combos:
        launch = sorted((_launch_view(n) for n in interp.nodes(arguments)), key=lambda n: n["name"])
        if arguments.get("expert") == "true" and arguments["sim"] == "false":
            # bringup refuses at once; ros2 launch starts the expert, which exits with status 2 without sim/state
            with pytest.raises(ConfigError, match="--expert drives the simulated rig"):
                _plan_view(mode, arguments)
            assert "expert" in {n["name"] for n in launch}
            refused += 1
            continue
        bringup = sorted(_plan_view(mode, arguments), key=lambda n: n["name"])
        assert launch == bringup, f"{mode}.launch.py and bringup differ for {arguments}"
        essential = frozenset(n["name"] for n in launch if n["essential"])
        assert essential and essential != {n["name"] for n in launch}  # some nodes end the set, the sensors do not
        essential_sets.add(essential)
    # not vacuous: the arguments change which nodes start and with what
    variants = {str(sorted((n["name"], str(n["overrides"])) for n in map(_launch_view, interp.nodes(a))))
                for a in combos}
    assert len(combos) == {"pour": 64, "record": 128}[mode] and len(variants) >= 16
    assert refused == {"pour": 0, "record": 32}[mode]
    assert len(essential_sets) == {"pour": 1, "record": 3}[mode]  # record: with teleop, with expert, with neither


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_launch_argument_defaults_match_bringup(mode):
    declared = LaunchInterpreter(LAUNCH / f"{mode}.launch.py").declared()
    defaults = {k: p.default for k, p in inspect.signature(make_plan).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for name, default in declared.items():
        if name in ("teleop_prefix", "config"):  # launch-only: a terminal window; the package file when empty
            continue
        expected = defaults[name]
        assert default == (str(expected).lower() if isinstance(expected, bool) else expected), name
    assert declared["config"] == "" and defaults["config"] == ()


def test_node_modules_exist_or_are_pending():
    plans = [make_plan(m, sim=True) for m in Mode] + [make_plan(Mode.RECORD, sim=True, expert=True)]
    executables = {n.executable for plan in plans for n in plan.nodes}
    present = {p.stem for p in (REPO / "anytouch_ros").glob("*_node.py")}
    assert executables == present | PENDING, "a node named by the launch files has no module and is not pending"
    assert not present & PENDING, "a pending node has landed: remove it from PENDING"
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
