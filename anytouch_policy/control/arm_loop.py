"""The arm node's control loop without ROS: one thread owns the backend, every step passes the safety filter.

    loop = ArmLoop(make_arm("sim"), limits=ArmLimits(), period_s=0.01, on_cycle=publish_state)
    loop.start()
    loop.submit_step(0.25)          # from a subscription callback: queued, applied by the loop thread at once
    loop.estop("teleop key")        # latched: steps are refused until recover()
    loop.recover().result(10)       # the backend's recover() (a no-op for the sim), then the latch is cleared
    loop.stop()

    subscription ─submit_step / estop / call─> [ queue ] ─> loop thread: TiltCommandFilter -> backend
                                                                 └─ every period: command timeout -> hold,
                                                                    on_cycle(arm) (the node publishes state)

- The executor thread only queues. Backend calls (the xArm's SDK round trips, a recover's settle sleeps, the
  sim's physics) run in the loop thread: a slow backend delays the state stream, never the node's callbacks.
- Wait steps (0.0) are heartbeats: they keep the command stream alive without moving. A non-finite step is
  refused at submission and is no heartbeat.
- No command for `limits.command_timeout_s` -> hold() once; the next step resumes.
- Nothing non-finite reaches the backend: the filter refuses a NaN tilt, the backend a NaN step.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from anytouch_policy.bounds import is_number
from anytouch_policy.control.safety import TiltCommandFilter
from anytouch_policy.hardware.base import Arm, ArmLimits

#: Steps queued before the oldest are dropped (the executor outran the loop; each step is relative).
MAX_QUEUED_STEPS = 20


class LoopStatus(StrEnum):
    """What the loop does with the next step; the string is what /diagnostics shows."""

    IDLE = "idle"  # no command received yet
    ACTIVE = "active"  # steps are applied
    TIMEOUT = "timeout"  # the command stream went silent: held, the next step resumes
    ESTOP = "estop"  # e-stop latched: steps refused until recover()


@dataclass(frozen=True)
class LoopStats:
    """Counters for /diagnostics (a snapshot)."""

    status: LoopStatus
    steps_received: int = 0
    steps_applied: int = 0  # non-zero steps the backend took
    clamped: int = 0  # steps reduced by the filter (step size, range, rate budget)
    refused: int = 0  # steps dropped because the e-stop was latched
    invalid: int = 0  # non-finite steps refused at submission (never queued, no heartbeat)
    dropped: int = 0  # steps dropped because the queue was full
    timeouts: int = 0  # command-timeout holds
    estops: int = 0
    recovers: int = 0
    last_requested_deg: float = 0.0
    last_applied_deg: float = 0.0
    estop_reason: str = ""
    last_error: str = ""
    cycle_overruns: int = 0  # cycles that started a full period late

    def values(self) -> dict[str, object]:
        """Key/values for /diagnostics (status as its string; the reason and error only when set)."""
        out = {k: v for k, v in asdict(self).items() if v != "" or k not in ("estop_reason", "last_error")}
        out["status"] = str(self.status)
        return out


class ArmLoop:
    """Owns `arm` in a thread; thread-safe entry points queue work for it."""

    def __init__(self, arm: Arm, *, limits: ArmLimits, period_s: float,
                 on_cycle: Callable[[Arm], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.arm = arm
        self.filter = TiltCommandFilter(limits)
        self.period_s = period_s
        self._on_cycle = on_cycle
        self._clock = clock
        self._cond = threading.Condition()
        self._steps: deque[float] = deque()
        # e-stops (a reason) and calls (fn, future) in arrival order: an e-stop sent after a recover latches again
        self._commands: deque[str | tuple[Callable[[Arm], Any], Future]] = deque()
        self._stop = False
        self._stats = LoopStats(status=LoopStatus.IDLE)
        self._thread = threading.Thread(target=self._run, name="arm-loop", daemon=True)

    # -- entry points (any thread) ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def submit_step(self, delta_deg: float) -> bool:
        """Queue a step; a non-finite one is refused and counted (`invalid`): it is no heartbeat either."""
        with self._cond:
            if not is_number(delta_deg):
                self._update(invalid=self._stats.invalid + 1)
                return False
            if len(self._steps) >= MAX_QUEUED_STEPS:
                self._steps.popleft()
                self._update(dropped=self._stats.dropped + 1)
            self._steps.append(float(delta_deg))
            self._cond.notify()
        return True

    def estop(self, reason: str) -> None:
        """Latch the e-stop: the backend's estop() runs and steps are refused until recover()."""
        with self._cond:
            self._commands.append(reason)
            self._cond.notify()

    def call(self, fn: Callable[[Arm], Any]) -> Future:
        """Run fn(arm) in the loop thread (e.g. a sim arm's new_episode); the future holds its result."""
        future: Future = Future()
        with self._cond:
            self._commands.append((fn, future))
            self._cond.notify()
        return future

    def recover(self) -> Future:
        """Clear a latched e-stop and the backend's own latch (its recover()); result: a message."""
        return self.call(self._recover)

    def stats(self) -> LoopStats:
        with self._cond:
            return self._stats

    # -- loop thread ------------------------------------------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        self._stats = replace(self._stats, **changes)  # caller holds _cond

    def _recover(self, arm: Arm) -> str:
        arm.recover()  # DeviceError when the cause persists: the latch stays
        with self._cond:
            self._update(status=LoopStatus.IDLE, estop_reason="", recovers=self._stats.recovers + 1)
        self.filter = TiltCommandFilter(self.filter.limits)  # no rate budget or heartbeat from before the stop
        return "recovered"

    def _latch(self, reason: str) -> None:
        try:
            self.arm.estop()
        finally:
            with self._cond:
                self._update(status=LoopStatus.ESTOP, estop_reason=reason, estops=self._stats.estops + 1)

    def _apply(self, delta: float, now: float) -> None:
        allowed = self.filter.filter(delta, self.arm.state().tilt_deg, now)
        applied = self.arm.apply_tilt_step(allowed)
        with self._cond:
            s = self._stats
            self._update(status=LoopStatus.ACTIVE, last_requested_deg=delta, last_applied_deg=applied,
                         clamped=self.filter.clamped, steps_applied=s.steps_applied + (applied != 0.0))

    def _run(self) -> None:
        next_cycle = self._clock()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._steps or self._commands,
                                    timeout=max(0.0, next_cycle - self._clock()))
                if self._stop:
                    return
                steps, commands = list(self._steps), list(self._commands)
                self._steps.clear()
                self._commands.clear()
                self._update(steps_received=self._stats.steps_received + len(steps))
            try:
                self._step(steps, commands)
            except Exception as exc:  # a backend failure must not kill the loop: it is reported and retried
                with self._cond:
                    self._update(last_error=f"{type(exc).__name__}: {exc}")
            now = self._clock()
            if now >= next_cycle:
                if now - next_cycle > self.period_s:
                    with self._cond:
                        self._update(cycle_overruns=self._stats.cycle_overruns + 1)
                    next_cycle = now  # skip the missed cycles instead of running them in a burst
                next_cycle += self.period_s
                if self._on_cycle is not None:
                    try:
                        self._on_cycle(self.arm)
                    except Exception as exc:
                        with self._cond:
                            self._update(last_error=f"{type(exc).__name__}: {exc}")

    def _step(self, steps: list[float], commands: list) -> None:
        for command in commands:
            if isinstance(command, str):
                if self.stats().status is not LoopStatus.ESTOP:
                    self._latch(command)
                continue
            fn, future = command
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(self.arm))
                except Exception as exc:
                    future.set_exception(exc)
        now = self._clock()
        if self.stats().status is LoopStatus.ESTOP:
            if steps:
                with self._cond:
                    self._update(refused=self._stats.refused + len(steps))
            return
        for delta in steps:
            self._apply(delta, now)
        status = self.stats().status
        if status is LoopStatus.ACTIVE and self.filter.timed_out(now):
            self.arm.hold()
            with self._cond:
                self._update(status=LoopStatus.TIMEOUT, timeouts=self._stats.timeouts + 1)
