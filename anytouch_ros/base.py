"""What every anytouch_ros node shares: typed, ranged parameter declaration, a close() hook, and the main() loop.

    class RecorderNode(BaseNode):
        NAME = "recorder"
        ...
    def main(args=None) -> int:
        return run_node(RecorderNode, args)

`run_node` follows reference/stack.md section 2: one SingleThreadedExecutor per process. On SIGINT/SIGTERM
(rclpy's handlers shut the context down) it
1. leaves spin and shuts the executor down,
2. calls `node.stop_workers()` (joins the node's threads that publish),
3. destroys the node,
4. calls `node.close()`, which must not use ROS any more (it closes files and devices; logging still works).
A node refusing its parameters (AnyTouchError from the constructor) logs the reason and exits with status 2, so
`anytouch bringup` reports it.

Signals:
- SIGINT is the stop request of `ros2 launch` and `anytouch bringup`: the node closes and exits 0 (launch says
  "finished cleanly").
- SIGTERM closes it the same way, then it ends on SIGTERM itself (`end_on_signal`), so whoever started it sees
  what stopped it: bringup names the node and exits non-zero, launch reports "exit code -15". A node that quietly
  exited 0 after a stray SIGTERM would look like one whose job was done.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import NoReturn

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.parameter import Parameter

from anytouch_policy.bounds import Interval
from anytouch_policy.errors import AnyTouchError, ConfigError

#: rclpy raises its C layer's error type for a context shut down under a running executor; it has no public alias.
RCLError = rclpy_implementation.RCLError

ParamValue = bool | int | float | str | list[str] | list[float] | list[int] | list[bool]

_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY,
                int: Parameter.Type.INTEGER_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


class BaseNode(Node):
    """rclpy Node plus `param()` (typed, described, validated) and `close()` (release after spinning)."""

    NAME = "anytouch_node"  # default node name; launch files and bringup rename with __node

    def __init__(self, **node_options: object) -> None:
        """Subclasses take **node_options too and pass them on (context=... for in-process tests)."""
        super().__init__(self.NAME, **node_options)
        self.exit_status = 0
        self._ranges: dict[str, Interval] = {}
        self.add_on_set_parameters_callback(self._check_set)

    def finish(self, status: int = 0) -> None:
        """End the process from a callback (its job is done, or it cannot go on): run_node returns `status`."""
        self.exit_status = status
        self.context.try_shutdown()

    def param(
        self,
        name: str,
        default: ParamValue,
        description: str,
        *,
        choices: Sequence[str] = (),
        within: str | Interval | None = None,
        read_only: bool = True,
        item_type: type = str,
    ) -> ParamValue:
        """Declare a parameter and return its value; ConfigError names the node and parameter on a bad value.

        The type comes from `default` (rclpy refuses a YAML 5 for a double: write 5.0). An empty list default needs
        `item_type`. A number needs `within`, its physical range ("(0, 5]", or an Interval): NaN, infinities and
        values outside are refused at start-up and by `ros2 param set`, and the range is in the descriptor's
        additional_constraints, so `ros2 param describe` documents it. `read_only` parameters are read once at
        start-up, so `ros2 param set` refuses to change them instead of pretending to.
        """
        where = self._where(name)
        descriptor = ParameterDescriptor(description=description, read_only=read_only)
        if choices:
            descriptor.additional_constraints = "one of: " + ", ".join(choices)
        if isinstance(default, int | float) and not isinstance(default, bool):
            if within is None:
                raise TypeError(f"{where}: a number needs its physical range (within=)")
            interval = Interval.parse(within) if isinstance(within, str) else within
            self._ranges[name] = interval
            descriptor.additional_constraints = f"in {interval}"
        try:
            if isinstance(default, list):
                ptype = _ARRAY_TYPES[type(default[0]) if default else item_type]
                descriptor.type = ptype.value
                self.declare_parameter(name, ptype, descriptor)
                value = self.get_parameter_or(name, Parameter(name, ptype, list(default))).value
                value = list(value)
            else:
                value = self.declare_parameter(name, default, descriptor).value
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if choices and value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}; got {value!r}")
        if name in self._ranges:
            self._ranges[name].check(where, value)
        return value

    def _where(self, name: str) -> str:
        return f"parameter {name!r} of node {self.get_fully_qualified_name()}"

    def _check_set(self, params: list[Parameter]) -> SetParametersResult:
        """`ros2 param set` of a ranged parameter: refused outside its range. While param() declares one, its
        value is checked there (with a ConfigError of its own), so declaration passes here."""
        for p in params:
            if p.name in self._ranges and p.name in self._parameters and p.value not in self._ranges[p.name]:
                return SetParametersResult(successful=False, reason=f"{self._where(p.name)} must be in "
                                                                   f"{self._ranges[p.name]}, got {p.value!r}")
        return SetParametersResult(successful=True)

    def backend_params(self, prefix: str, config_cls: type, *, skip: Sequence[str] = ()) -> dict[str, object]:
        """Declare `<prefix>.<field>` for every field of a backend config dataclass (any type: the dataclass checks
        it) and return the ones that are set, e.g. `gelsight_mini.exposure: 180` in YAML (a nested mapping)."""
        descriptor = ParameterDescriptor(dynamic_typing=True, read_only=True,
                                         description=f"passed to the {prefix} backend ({config_cls.__name__})")
        out: dict[str, object] = {}
        for field in dataclasses.fields(config_cls):
            if field.name in skip:
                continue
            value = self.declare_parameter(f"{prefix}.{field.name}", None, descriptor).value
            if value is not None:
                out[field.name] = value if isinstance(value, bool | int | float | str) else list(value)
        return out

    def refuse_unknown_parameters(self) -> None:
        """ConfigError naming every parameter given to this node (YAML, -p) that it does not declare: rclpy would
        silently ignore a misspelt key. rclpy keeps the node's overrides in a private attribute only."""
        unknown = sorted(set(self._parameter_overrides) - set(self._parameters))
        if unknown:
            raise ConfigError(f"node {self.get_fully_qualified_name()} has no parameter(s) {', '.join(unknown)}; "
                              f"declared: {', '.join(sorted(self._parameters))}")

    def stop_workers(self) -> None:
        """Stop the node's own threads that use ROS (publishers); called once the executor stopped, before the node
        is destroyed."""

    def close(self) -> None:
        """Release what the node owns once the executor stopped (files, threads, devices); ROS may be shut down."""


def end_on_signal(signum: int) -> NoReturn:
    """End the process on `signum`'s default action, as if it had never been caught: the parent's wait() then
    reports the signal (a shell's convention after cleaning up). Called last, once everything is closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)  # only if the signal is blocked: the shell's code for it


def run_node(node_class: Callable[[], BaseNode], args: list[str] | None = None) -> int:
    """The body of every node's main(): build, spin until SIGINT/SIGTERM, close. Returns the exit status, or ends
    the process on SIGTERM when that is what stopped it (module docstring).

    rclpy's own signal handlers shut the context down, which ends spin(); the Python-level handlers (which rclpy's
    chain to) note the signal and raise KeyboardInterrupt only while the node is still being built (loading a
    model), never while spinning: raised inside rclpy's message conversion it would surface as a RuntimeError.
    """
    spinning = threading.Event()
    received: set[int] = set()

    def on_signal(signum: int, frame: object) -> None:
        received.add(signum)
        if not spinning.is_set():
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)  # before rclpy.init, which chains its handlers to these
    status = _build_and_spin(node_class, args, spinning)
    if signal.SIGTERM in received:
        end_on_signal(signal.SIGTERM)
    return status


def _build_and_spin(node_class: Callable[[], BaseNode], args: list[str] | None, spinning: threading.Event) -> int:
    rclpy.init(args=args)
    node: BaseNode | None = None
    executor = SingleThreadedExecutor()
    try:
        try:
            node = node_class()
        except AnyTouchError as exc:
            name = getattr(node_class, "NAME", "anytouch_node")
            rclpy.logging.get_logger(name).fatal(f"refusing to start: {exc}")
            return 2
        except KeyboardInterrupt:  # stopped while starting
            return 0
        executor.add_node(node)
        spinning.set()
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except RCLError:  # the signal handler shut the context down while spin() was building a wait set
            if node.context.ok():
                raise
        return node.exit_status
    finally:
        executor.shutdown()
        if node is not None:
            node.stop_workers()
            node.destroy_node()  # first: its rosout publisher goes, so close() may still log (to the console)
            node.close()
        rclpy.try_shutdown()


class BackgroundSpin:
    """Spin a node on its own SingleThreadedExecutor in a thread, for a main thread that blocks on I/O (teleop).

    Leaving the context shuts the executor down (waking it) and joins the thread before anyone calls
    rclpy.shutdown(): shutting rclpy down under a live spin thread aborts the process (stack.md section 2).
    """

    def __init__(self, node: Node) -> None:
        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(node)
        self._context = node.context
        self._thread = threading.Thread(target=self._spin, name=f"spin-{node.get_name()}", daemon=True)

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass
        except RCLError:  # shut down under the running executor (see run_node)
            if self._context.ok():
                raise

    def __enter__(self) -> BackgroundSpin:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
