"""The package layout holds: no import cycles (lazy imports inside functions count), hardware never imports sim, sim
uses only the interfaces of hardware, bringup sits above both, the top level keeps only the shared vocabulary, and the
control logic imports without torch or rosbags."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = "anytouch_policy"
#: The modules everyone imports; every other module lives in a package by concern.
VOCABULARY = {"__init__", "errors", "actions", "sensors", "tactile", "distributed", "bounds", "outputs", "schema",
              "threads", "progress"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / ROOT).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its source (top level or inside a function)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                found = known(target)
                if found and found != name:
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str:
    """anytouch_policy.sim.rig -> anytouch_policy.sim; a top-level module is its own unit."""
    return ".".join(module.split(".")[:2])


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        for b in targets:
            if _package(a) != _package(b):
                out[_package(a)].add(_package(b))
    return out


def _imports_of(package: str, graph: dict[str, set[str]]) -> set[str]:
    return {b for a, targets in graph.items() if _package(a) == package for b in targets if _package(b) != package}


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_modules_or_packages():
    graph = _import_graph()
    assert len(graph) > 50  # the walk found the project
    assert _cycles(graph) == []
    assert _cycles(_package_graph(graph)) == []


def test_hardware_never_imports_sim_and_sim_uses_only_its_interfaces():
    graph = _import_graph()
    hardware = _imports_of(f"{ROOT}.hardware", graph)
    assert not {m for m in hardware if _package(m) in (f"{ROOT}.sim", f"{ROOT}.bringup")}, hardware
    sim_uses = {m for m in _imports_of(f"{ROOT}.sim", graph) if _package(m) == f"{ROOT}.hardware"}
    assert sim_uses == {f"{ROOT}.hardware.base"}
    assert f"{ROOT}.bringup" not in {_package(m) for m in _imports_of(f"{ROOT}.sim", graph)}
    backends = graph[f"{ROOT}.bringup.backends"]
    assert {_package(m) for m in backends} >= {f"{ROOT}.hardware", f"{ROOT}.sim"}  # it sits above both


def test_the_top_level_holds_only_the_vocabulary():
    top = {p.stem for p in (REPO / ROOT).glob("*.py")}
    assert top == VOCABULARY
    for module in top - {"__init__"}:
        imported = {_package(m) for m in _import_graph()[f"{ROOT}.{module}"]}
        assert imported <= {f"{ROOT}.{v}" for v in VOCABULARY}, (module, imported)  # vocabulary stays at the bottom


@pytest.mark.parametrize("target", [
    "anytouch_policy.control.safety",
    "anytouch_policy.control.arm_loop",
    "anytouch_policy.control.ticks",
    "anytouch_policy.control.teleop",
    "anytouch_policy.control.stream_encoder",
    "tests/control/test_safety.py",
    "tests/control/test_arm_loop.py",
    "tests/control/test_ticks.py",
    "tests/control/test_teleop.py",
])
def test_control_logic_and_its_tests_import_without_torch_or_rosbags(target):
    """A module in a fresh interpreter; a test file as pytest collects it (with every conftest.py above it)."""
    if target.endswith(".py"):
        load = f"import pytest; assert pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', {target!r}]) == 0"
    else:
        load = f"import {target}"
    code = f"import sys; {load}; print('LOADED', sorted(m for m in ('torch', 'rosbags') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "LOADED []", result.stdout
