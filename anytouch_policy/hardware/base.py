"""The three small device interfaces every backend implements (real devices and the simulated rig alike).

Nodes only talk to these: a tactile source that hands out its newest stamped frame, an arm that applies a bounded
tilt step about the tool axis and reports its state, and a gripper that grasps without blocking. Backends are
context managers so devices are released in `finally`, never by a destructor.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from anytouch_policy.bounds import Interval, require_finite
from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import StampedFrame


class SourceState(StrEnum):
    """Life cycle of a tactile source; the string is what /diagnostics shows."""

    OPEN = "open"  # grabbing frames
    WAITING = "waiting"  # open, but its input has not started (a simulated sensor before the first sim/state)
    RECONNECTING = "reconnecting"  # reads failed; reopening with backoff
    FINISHED = "finished"  # a replay reached the end of its episode (no loop)
    CLOSED = "closed"  # not opened yet, or closed


class ArmStatus(StrEnum):
    """What an arm backend will do with the next step; the string is what /diagnostics shows."""

    READY = "ready"  # steps are executed
    HOLDING = "holding"  # stopped (timeout, stale data, hold()); the next step resumes
    ERROR = "error"  # controller error or warning, refused command: latched until an explicit recover()
    ESTOP = "estop"  # emergency stop (button or estop()): latched until an explicit recover()
    DISCONNECTED = "disconnected"  # not open, or the link dropped: latched until an explicit recover()


@dataclass(frozen=True)
class SourceStats:
    """Health of a tactile source, published on /diagnostics by the sensor node."""

    frames: int  # frames grabbed since open
    dropped: int  # frames grabbed but overwritten before anyone read them
    read_failures: int  # failed grabs (each one counts towards a reconnect)
    reconnects: int
    fps: float  # measured grab rate over the last second or so
    state: str  # a SourceState value


class RateMeter:
    """Events per second over the last `window_s` seconds (0 once they stopped): a measured frame rate for stats()
    and /diagnostics. Thread-safe: a grab thread ticks while the executor reads."""

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self._clock = window_s, clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _forget(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            self._times.append(now)
            self._forget(now)

    def rate(self) -> float:
        with self._lock:
            self._forget(self._clock())
            times = self._times
            return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def clear(self) -> None:
        with self._lock:
            self._times.clear()


class NewestFrame:
    """TactileSource.read's contract for a source whose own thread produces frames: `put` replaces the frame
    (one nobody took counts as dropped), `take` hands each frame out once, waiting up to a timeout for it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: StampedFrame | None = None
        self._unread = False
        self.frames = 0
        self.dropped = 0
        self.rate = RateMeter()

    def put(self, frame: StampedFrame) -> None:
        with self._cond:
            self.frames += 1
            self.dropped += self._unread
            self._frame, self._unread = frame, True
            self.rate.tick()
            self._cond.notify_all()

    def take(self, timeout_s: float, *, live: Callable[[], bool]) -> StampedFrame | None:
        """The frame not handed out before; None after `timeout_s`, or at once when `live()` turns False."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._unread:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not live():
                    return None
                self._cond.wait(remaining)
            self._unread = False
            return self._frame

    def wake(self) -> None:
        """Let every waiting `take` look at `live()` again (the source closed or finished)."""
        with self._cond:
            self._cond.notify_all()


class _Device(ABC):
    """Context-manager plumbing shared by all devices."""

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def diagnostics(self) -> dict[str, str]:
        """Backend-specific key/values that /diagnostics shows beside stats() or state(); none by default."""
        return {}

    def __enter__(self):
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TactileSource(_Device):
    """A visuo-tactile camera producing RGB uint8 frames in the sensor's native layout (see sensors.NATIVE_FORMATS)."""

    name: str
    sensor_type: SensorType

    @abstractmethod
    def read(self, timeout_s: float = 0.0) -> StampedFrame | None:
        """The newest frame not handed out before, stamped at grab time; None if none arrived within `timeout_s`."""

    @abstractmethod
    def stats(self) -> SourceStats: ...


#: The physical range of each ArmLimits field. Why these ends: the tilt is measured about the tool axis from the
#: start pose and wraps at +-180 deg, so a range beyond [-180, 180] could never be enforced; one relative step above
#: 5 deg is no longer a small correction (and a dead process leaves the xArm up to one step from where it was); a
#: cylinder of beads turned faster than 60 deg/s throws them out in a burst, and 60 deg/s is three times the
#: xArm's reduced-mode joint speed cap of 20 deg/s; a watchdog that waits more than 5 s (25 missed 5 Hz ticks) is no
#: watchdog. Zero is excluded for the step, the rate and the timeout: each would stop every command.
LIMIT_RANGES: dict[str, Interval] = {
    "min_tilt_deg": Interval.parse("[-180, 180)"),
    "max_tilt_deg": Interval.parse("[0, 180]"),
    "max_step_deg": Interval.parse("(0, 5]"),
    "max_rate_deg_s": Interval.parse("(0, 60]"),
    "command_timeout_s": Interval.parse("(0, 5]"),
}


@dataclass(frozen=True)
class ArmLimits:
    """Safety bounds applied to every command, whatever the backend; each field lies in LIMIT_RANGES (finite)
    and min_tilt_deg < max_tilt_deg, else ConfigError names the field."""

    min_tilt_deg: float = 0.0  # never tilt back past the upright start pose
    max_tilt_deg: float = 120.0  # never tilt beyond this about the tool axis
    max_step_deg: float = 0.5  # largest rotation one command may ask for, and the most the target may lead the arm
    max_rate_deg_s: float = 5.0  # largest tilt speed the backend may use to reach a target
    command_timeout_s: float = 0.6  # no command for this long -> hold (3 missed 5 Hz ticks)

    def __post_init__(self) -> None:
        for name, interval in LIMIT_RANGES.items():
            interval.check(f"ArmLimits.{name}", getattr(self, name))
        if not self.min_tilt_deg < self.max_tilt_deg:
            raise ConfigError(f"ArmLimits.min_tilt_deg ({self.min_tilt_deg}) must be below max_tilt_deg "
                              f"({self.max_tilt_deg})")

    def target_step(self, step_deg: float, *, target_deg: float, measured_deg: float) -> float:
        """How far a backend moves its commanded target for a requested `step_deg` (clamped to max_step_deg):
        the same sign, or 0.0 (always for a wait).

        The new target stays in [min_tilt_deg, max_tilt_deg] (from outside it, only steps back towards it) and
        never lies more than max_step_deg beyond the measured tilt in the step's direction, so a slower arm never
        builds up a lead: after `wait` it moves at most one step further. A step against a lead larger than itself
        (a retract while the target is still far ahead) puts the target on the measured tilt: the arm stops at
        once and turns back on the next tick, instead of first finishing the lead. Non-finite input raises
        ConfigError (min/max would turn a NaN into a full step), so nothing non-finite reaches a device.
        """
        for name, value in (("tilt step", step_deg), ("commanded tilt", target_deg), ("measured tilt", measured_deg)):
            require_finite(name, value)
        step = max(-self.max_step_deg, min(self.max_step_deg, step_deg))
        if step > 0:
            upper = min(max(self.max_tilt_deg, target_deg), measured_deg + self.max_step_deg)
            return max(0.0, min(max(target_deg + step, measured_deg), upper) - target_deg)
        if step < 0:
            lower = max(min(self.min_tilt_deg, target_deg), measured_deg - self.max_step_deg)
            return min(0.0, max(min(target_deg + step, measured_deg), lower) - target_deg)
        return 0.0


@dataclass(frozen=True)
class ArmState:
    """What the arm reports; pose in mm and degrees in the base frame, tilt about the tool axis from the start pose."""

    stamp_ns: int
    tilt_deg: float
    pose: tuple[float, float, float, float, float, float]
    moving: bool
    status: str  # an ArmStatus value
    error_code: int = 0
    warn_code: int = 0


class Arm(_Device):
    """An arm that rotates the held cylinder about the configured tool axis in small bounded steps."""

    limits: ArmLimits

    @abstractmethod
    def apply_tilt_step(self, delta_deg: float) -> float:
        """Start rotating by `delta_deg` about the tool axis without waiting for the motion; returns the step
        actually commanded after the backend's own hard limits (0.0 when clamped to nothing). The commanded target
        moves by `limits.target_step(...)`: never more than max_step_deg ahead of the measured tilt. A non-finite
        `delta_deg` raises ConfigError and moves nothing."""

    @abstractmethod
    def hold(self) -> None:
        """Stop motion now and keep the current pose (used on timeout, stale data and errors)."""

    def estop(self) -> None:
        """Emergency stop. By default hold(); a backend with a stop of its own (the xArm's) uses it and latches it
        until recover(). The caller (ArmLoop) latches its own e-stop either way and refuses steps meanwhile."""
        self.hold()

    def recover(self) -> None:
        """Clear the backend's own latch after an e-stop or error; DeviceError when the cause persists. By default
        nothing: a backend without a latch of its own (the sim) moves again once the caller clears its e-stop."""

    @abstractmethod
    def state(self) -> ArmState: ...


@dataclass(frozen=True)
class GripperStatus:
    activated: bool
    position: int  # 0 open .. 255 closed (Robotiq register scale)
    object_detected: bool
    fault: int  # 0 when no fault
    moving: bool


class Gripper(_Device):
    """A parallel gripper; every motion call returns at once and never blocks the control loop."""

    @abstractmethod
    def activate(self, timeout_s: float = 5.0) -> None:
        """Reset and activate; raises DeviceError naming the fault when activation does not complete in time."""

    @abstractmethod
    def grasp(self, position: int = 255, speed: int = 64, force: int = 128) -> None: ...

    @abstractmethod
    def release(self) -> None: ...

    @abstractmethod
    def status(self) -> GripperStatus: ...
