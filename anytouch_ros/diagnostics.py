"""Publish a node's health on /diagnostics at a fixed rate, from plain callables that return Status objects.

    diag = Diagnostics(node, period_s=1.0)
    diag.add(lambda: Status("recorder", Level.WARN, "3 messages dropped", {"dropped": 3}))

Each status appears as "<node fully qualified name>: <status name>", the diagnostic_updater convention that
rqt_robot_monitor and diagnostic_aggregator group by. A provider that raises is reported as an ERROR status
instead of killing the timer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from anytouch_policy.data import topics
from anytouch_ros import qos
from anytouch_ros.conversions import ns_to_time


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass
class Status:
    """One named status line with key/values (values are shown with str(), floats with 4 significant digits)."""

    name: str
    level: Level = Level.OK
    message: str = "ok"
    values: dict[str, object] = field(default_factory=dict)


def _text(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


Provider = Callable[[], Status | Iterable[Status]]


class Diagnostics:
    """A /diagnostics publisher with a timer; add providers, or call publish() for an immediate report."""

    def __init__(self, node: Node, *, period_s: float = 1.0, hardware_id: str = "") -> None:
        self._node = node
        self._hardware_id = hardware_id
        self._providers: list[Provider] = []
        self._pub = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
        self._timer = node.create_timer(period_s, self.publish)

    def add(self, provider: Provider) -> None:
        self._providers.append(provider)

    def collect(self) -> list[Status]:
        out: list[Status] = []
        for provider in self._providers:
            try:
                result = provider()
            except Exception as exc:  # a broken provider must show up as an error, not stop the others
                name = getattr(provider, "__name__", "status")
                out.append(Status(name, Level.ERROR, f"status provider failed: {type(exc).__name__}: {exc}"))
                continue
            out.extend([result] if isinstance(result, Status) else result)
        return out

    def publish(self) -> None:
        prefix = self._node.get_fully_qualified_name()
        msg = DiagnosticArray()
        msg.header.stamp = ns_to_time(self._node.get_clock().now().nanoseconds)
        for status in self.collect():
            msg.status.append(DiagnosticStatus(
                level=bytes([int(status.level)]), name=f"{prefix}: {status.name}", message=status.message,
                hardware_id=self._hardware_id,
                values=[KeyValue(key=str(k), value=_text(v)) for k, v in status.values.items()],
            ))
        self._pub.publish(msg)
