"""Wall-clock and CPU seconds of a run's named stages: what `anytouch demo` and the evaluation benches report per
stage (their JSON's timing_s and cpu_s), so a run on a busy machine still tells what it would take on an idle one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def cpu_seconds() -> float:
    """User + system CPU time of this process and its children so far (the evaluation workers included): what a
    stage costs apart from the machine's load, which on a shared machine inflates the wall-clock time."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:  # ended since the listing: its time is in children_* from now on
            continue
        total += c.user + c.system
    return total


class Stages:
    """Wall-clock and CPU seconds of each named stage (`with stages("record"): ...`), logged as each ends."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.start = time.perf_counter()
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        yield
        self.wall[name] = round(time.perf_counter() - t0, 1)
        self.cpu[name] = round(cpu_seconds() - cpu0, 1)
        self.log(f"[{time.perf_counter() - self.start:6.0f} s] {name} done in {self.wall[name]:.0f} s "
                 f"({self.cpu[name]:.0f} CPU s)")

    @property
    def seconds(self) -> float:
        """Wall-clock seconds since these stages were made (a run's total, for its JSON)."""
        return round(time.perf_counter() - self.start, 1)
