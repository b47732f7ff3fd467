"""Timing of the 5 Hz control loop without ROS: tick jitter and missed ticks, rolling percentiles, staleness, and a
worker that keeps a slow decision from ever delaying a tick.

    ticks = TickMonitor(period_s=0.2, origin_s=t0)       # t0: when the periodic timer was created
    info = ticks.tick(now_s)                             # jitter against the timer's grid, ticks skipped
    worker = DecisionWorker(decide, publish, period_s=0.2)
    if not worker.submit(tick_s, job):                   # the previous decision is still running
        publish_wait()

Why a worker: a periodic timer on a fixed grid (rcl's) cannot drift and skips the periods it missed, but a
callback that computes in place still delays the next tick and can miss ticks. So the tick callback only snapshots
inputs and hands them to the worker:
- a decision that takes longer than `deadline` of the period is replaced by `wait`;
- one still running at the next tick makes that tick publish `wait`.
Every tick publishes exactly one action on time, whatever the computation does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class TickInfo:
    index: int  # grid index of this tick (the first tick of a timer created at origin is 1)
    jitter_s: float  # actual - scheduled time of this tick (>= 0 for a timer that never fires early)
    missed: int  # ticks skipped since the previous one


class TickMonitor:
    """Ticks of a periodic callback measured against its grid origin + k * period."""

    def __init__(self, period_s: float, *, origin_s: float) -> None:
        self.period_s = period_s
        self.origin_s = origin_s
        self.last_index = 0
        self.ticks = 0
        self.missed = 0

    def tick(self, now_s: float) -> TickInfo:
        index = max(self.last_index + 1, round((now_s - self.origin_s) / self.period_s))
        missed = index - self.last_index - 1
        self.last_index = index
        self.ticks += 1
        self.missed += missed
        return TickInfo(index, now_s - (self.origin_s + index * self.period_s), missed)


class RollingStats:
    """The last `size` samples of a quantity, summarised as percentiles (for /diagnostics and benches)."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))
            self.count += 1

    def percentiles(self, *qs: float) -> list[float]:
        """Percentiles (0..100) of the window; NaN when empty."""
        with self._lock:
            values = np.fromiter(self._values, dtype=np.float64)
        if values.size == 0:
            return [float("nan")] * len(qs)
        return [float(v) for v in np.percentile(values, qs)]

    def summary(self, scale: float = 1.0, suffix: str = "") -> dict[str, float]:
        """{"p50<suffix>": ..., "p99<suffix>": ..., "max<suffix>": ...}, values times `scale`."""
        p50, p99, top = self.percentiles(50, 99, 100)
        return {f"p50{suffix}": p50 * scale, f"p99{suffix}": p99 * scale, f"max{suffix}": top * scale}


def stale_inputs(stamps_ns: Mapping[str, int | None], now_ns: int, *, max_age_s: float) -> dict[str, float | None]:
    """Inputs too old to act on: name -> age in seconds (None: never received). Empty when all are fresh."""
    out: dict[str, float | None] = {}
    for name, stamp in stamps_ns.items():
        if stamp is None:
            out[name] = None
        elif (age := (now_ns - stamp) / 1e9) > max_age_s:
            out[name] = age
    return out


class DecisionWorker(Generic[J, R]):
    """One decision at a time in a thread, each bound to the tick that asked for it.

    `decide(job)` runs in the worker; `publish(tick_s, result, late)` is called from the worker when it is done:
    `late` when it took longer than `deadline` x period (the caller publishes wait instead of the result). A result
    that arrives after the next tick is dropped: that tick found the worker busy and published wait itself.
    `decide` raising: publish(tick_s, exception, False) so the caller can report it and publish wait.
    """

    def __init__(self, decide: Callable[[J], R], publish: Callable[[float, R | Exception, bool], None], *,
                 period_s: float, deadline: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._decide, self._publish = decide, publish
        self.period_s, self.deadline_s = period_s, deadline * period_s
        self._clock = clock
        self._cond = threading.Condition()
        self._job: tuple[float, float, J] | None = None  # (tick time on the caller's clock, monotonic start, job)
        self._busy = False
        self._stop = False
        self.compute = RollingStats()
        self.busy_ticks = 0  # ticks that found the previous decision still running
        self.late = 0  # decisions replaced by wait (past the deadline)
        self.dropped = 0  # decisions that finished after the next tick
        self._thread = threading.Thread(target=self._run, name="decision-worker", daemon=True)
        self._thread.start()

    def submit(self, tick_s: float, job: J) -> bool:
        """Hand a job over; False when the previous one is still running (publish wait for this tick)."""
        with self._cond:
            if self._busy:
                self.busy_ticks += 1
                return False
            self._busy = True
            self._job = (tick_s, self._clock(), job)
            self._cond.notify()
            return True

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._job is not None)
                if self._stop:
                    return
                tick_s, started, job = self._job
                self._job = None
            try:
                result: R | Exception = self._decide(job)
            except Exception as exc:
                result = exc
            elapsed = self._clock() - started
            self.compute.add(elapsed)
            with self._cond:
                self._busy = False
            if elapsed >= self.period_s:
                self.dropped += 1
                continue
            late = elapsed > self.deadline_s
            self.late += late
            self._publish(tick_s, result, late)
