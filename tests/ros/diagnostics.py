"""Reading /diagnostics in ROS tests: the newest status of one name, and its key/values as a dict."""

from __future__ import annotations

from collections.abc import Iterable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus


def newest_status(arrays: Iterable[DiagnosticArray], name: str) -> DiagnosticStatus | None:
    """Status `name` ("<node fully qualified name>: <status>") from the newest array that holds it, or None."""
    for array in reversed(list(arrays)):
        for status in array.status:
            if status.name == name:
                return status
    return None


def status_values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}
