"""The arm node's loop without ROS: every step through the safety filter, timeout -> hold, latched e-stop, recover."""

import threading
import time

import pytest

from anytouch_policy.control.arm_loop import ArmLoop, LoopStatus
from anytouch_policy.errors import DeviceError
from anytouch_policy.hardware.base import Arm, ArmLimits, ArmState


class RecordingArm(Arm):
    """An arm that integrates the steps it is given and records every call with the thread that made it; estop()
    and recover() are the base class's (hold, nothing to clear), as for the sim."""

    def __init__(self) -> None:
        self.limits = ArmLimits()
        self.tilt = 10.0
        self.calls: list[tuple[str, float | None, str]] = []

    def _log(self, name: str, value: float | None = None) -> None:
        self.calls.append((name, value, threading.current_thread().name))

    def open(self) -> None: ...

    def close(self) -> None: ...

    def apply_tilt_step(self, delta_deg: float) -> float:
        self._log("step", delta_deg)
        self.tilt += delta_deg
        return delta_deg

    def hold(self) -> None:
        self._log("hold")

    def state(self) -> ArmState:
        return ArmState(stamp_ns=0, tilt_deg=self.tilt, pose=(0.0,) * 6, moving=False, status="ready")

    def named(self, name: str) -> list:
        return [c for c in self.calls if c[0] == name]


class LatchingArm(RecordingArm):
    """A backend with an e-stop and a latch of its own, like the xArm: recover() may fail while the cause persists."""

    def __init__(self, recover_error: str = "") -> None:
        super().__init__()
        self.recover_error = recover_error

    def estop(self) -> None:
        self._log("estop")

    def recover(self) -> None:
        self._log("recover")
        if self.recover_error:
            raise DeviceError(self.recover_error)


def _until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def loop_of():
    loops = []

    def make(arm: Arm, **limits) -> ArmLoop:
        loop = ArmLoop(arm, limits=ArmLimits(**limits), period_s=0.01)
        loop.start()
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.stop()


def test_steps_are_filtered_and_applied_in_the_loop_thread(loop_of):
    arm = RecordingArm()
    loop = loop_of(arm, max_step_deg=0.5, max_rate_deg_s=2.5)
    loop.submit_step(3.0)  # a runaway publisher asks for 3 deg
    time.sleep(0.2)  # the rate budget refills 0.5 deg in 0.2 s
    loop.submit_step(-0.25)
    _until(lambda: len(arm.named("step")) == 2)
    assert [v for _, v, _ in arm.named("step")] == [0.5, -0.25]
    assert {t for _, _, t in arm.calls} == {"arm-loop"}  # the caller's thread never touches the backend
    s = loop.stats()
    assert s.status is LoopStatus.ACTIVE and s.clamped == 1 and s.steps_received == 2 and s.steps_applied == 2
    assert s.last_requested_deg == -0.25 and s.last_applied_deg == -0.25


def test_silence_holds_once_and_the_next_step_resumes(loop_of):
    arm = RecordingArm()
    loop = loop_of(arm, command_timeout_s=0.2)
    time.sleep(0.3)
    assert not arm.named("hold") and loop.stats().status is LoopStatus.IDLE  # no command yet: nothing to stop
    for _ in range(4):  # wait steps (0.0) are heartbeats: no timeout while they come
        loop.submit_step(0.0)
        time.sleep(0.1)
    assert not arm.named("hold")
    _until(lambda: loop.stats().status is LoopStatus.TIMEOUT)
    time.sleep(0.2)
    assert len(arm.named("hold")) == 1 and loop.stats().timeouts == 1
    loop.submit_step(0.25)
    _until(lambda: loop.stats().status is LoopStatus.ACTIVE)
    assert arm.named("step")[-1][1] == 0.25


@pytest.mark.parametrize("with_estop", [False, True], ids=["hold-only backend", "backend estop+recover"])
def test_estop_latches_until_recover(loop_of, with_estop):
    arm = LatchingArm() if with_estop else RecordingArm()
    loop = loop_of(arm)
    loop.submit_step(0.25)
    _until(lambda: arm.named("step"))
    loop.estop("teleop key")
    _until(lambda: loop.stats().status is LoopStatus.ESTOP)
    assert arm.named("estop" if with_estop else "hold")
    for _ in range(3):
        loop.submit_step(0.25)
    _until(lambda: loop.stats().refused == 3)
    assert len(arm.named("step")) == 1  # nothing moved while latched
    assert loop.recover().result(timeout=5) == "recovered" and bool(arm.named("recover")) == with_estop
    assert not arm.named("step")[1:]  # the default recover() moved nothing
    s = loop.stats()
    assert s.status is LoopStatus.IDLE and s.recovers == 1 and s.estops == 1 and s.estop_reason == ""
    loop.submit_step(0.25)
    _until(lambda: len(arm.named("step")) == 2)


def test_a_failing_recover_keeps_the_latch_and_an_estop_during_recover_latches_again(loop_of):
    arm = LatchingArm(recover_error="servo error C23: power cycle")
    loop = loop_of(arm)
    loop.estop("button")
    _until(lambda: loop.stats().status is LoopStatus.ESTOP)
    with pytest.raises(DeviceError, match="power cycle"):
        loop.recover().result(timeout=5)
    assert loop.stats().status is LoopStatus.ESTOP
    arm.recover_error = ""
    gate = threading.Event()
    loop.call(lambda a: gate.wait(5))  # the loop thread is busy (a recover that takes seconds)
    recovered = loop.recover()
    loop.estop("pressed again during the recover")
    gate.set()
    recovered.result(timeout=5)
    _until(lambda: loop.stats().status is LoopStatus.ESTOP)
    assert loop.stats().estop_reason == "pressed again during the recover" and loop.stats().estops == 2


def test_call_runs_in_the_loop_thread_and_cycles_keep_their_rate(loop_of):
    arm = RecordingArm()
    cycles: list[float] = []
    loop = ArmLoop(arm, limits=ArmLimits(), period_s=0.02, on_cycle=lambda a: cycles.append(time.monotonic()))
    loop.start()
    try:
        assert loop.call(lambda a: threading.current_thread().name).result(timeout=5) == "arm-loop"
        for _ in range(20):  # steps in between do not add cycles
            loop.submit_step(0.0)
            time.sleep(0.01)
        time.sleep(0.3)
    finally:
        loop.stop()
    gaps = [b - a for a, b in zip(cycles, cycles[1:], strict=False)]
    assert len(cycles) >= 15 and sorted(gaps)[len(gaps) // 2] == pytest.approx(0.02, abs=0.005)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_steps_are_refused_counted_and_are_no_heartbeat(loop_of, bad):
    arm = RecordingArm()
    loop = loop_of(arm, command_timeout_s=0.3)
    loop.submit_step(0.25)
    _until(lambda: arm.named("step"))
    for _ in range(10):  # a stream of 20 Hz for 0.5 s, longer than the command timeout
        assert not loop.submit_step(bad)
        time.sleep(0.05)
    _until(lambda: loop.stats().status is LoopStatus.TIMEOUT)  # held as if silent
    assert [v for _, v, _ in arm.named("step")] == [0.25] and len(arm.named("hold")) == 1
    s = loop.stats()
    assert s.invalid == 10 and s.steps_received == 1 and s.timeouts == 1


def test_a_non_finite_measured_tilt_moves_nothing(loop_of):
    arm = RecordingArm()
    arm.tilt = float("nan")  # a backend reporting garbage
    loop = loop_of(arm, command_timeout_s=0.3)
    loop.submit_step(0.25)
    _until(lambda: loop.stats().last_error)
    assert not arm.named("step") and "measured tilt must be a finite number" in loop.stats().last_error
