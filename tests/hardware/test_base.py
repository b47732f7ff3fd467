"""The helpers every backend shares: the newest-frame slot behind TactileSource.read, the measured frame rate."""

import threading
import time

import numpy as np

from anytouch_policy.hardware.base import NewestFrame, RateMeter
from anytouch_policy.tactile import StampedFrame


def _frame(k: int) -> StampedFrame:
    return StampedFrame(np.full((2, 2, 3), k, np.uint8), k)


def test_each_frame_is_handed_out_once_and_an_overwritten_one_counts_as_dropped():
    slot = NewestFrame()
    assert slot.take(0.0, live=lambda: True) is None
    slot.put(_frame(1))
    slot.put(_frame(2))  # 1 was never taken
    assert slot.take(0.0, live=lambda: True).stamp_ns == 2
    assert slot.take(0.0, live=lambda: True) is None  # not twice
    slot.put(_frame(3))
    assert slot.take(0.0, live=lambda: True).stamp_ns == 3
    assert (slot.frames, slot.dropped) == (3, 1)


def test_take_waits_for_a_frame_and_a_closed_source_ends_the_wait_at_once():
    slot, live = NewestFrame(), [True]
    threading.Timer(0.05, slot.put, args=(_frame(7),)).start()
    assert slot.take(5.0, live=lambda: live[0]).stamp_ns == 7

    def close():
        live[0] = False
        slot.wake()

    threading.Timer(0.05, close).start()
    started = time.monotonic()
    assert slot.take(5.0, live=lambda: live[0]) is None
    assert time.monotonic() - started < 2.0  # woken, not timed out


def test_rate_is_measured_over_the_last_window():
    now = [0.0]
    meter = RateMeter(window_s=1.0, clock=lambda: now[0])
    assert meter.rate() == 0.0
    for _ in range(30):  # 20 Hz for 1.5 s
        meter.tick()
        now[0] += 0.05
    assert abs(meter.rate() - 20.0) < 1e-6
    for _ in range(10):  # then 5 Hz: the old ticks leave the window
        now[0] += 0.2
        meter.tick()
    assert abs(meter.rate() - 5.0) < 1e-6
    meter.clear()
    assert meter.rate() == 0.0


def test_the_arm_interface_stops_safely_by_default():
    """A backend that implements only the abstract methods: estop() holds, recover() has nothing to clear and
    moves nothing, diagnostics() adds nothing; the sim arm is such a backend and its estop() stops the wrist."""
    from anytouch_policy.hardware.base import Arm, ArmLimits, ArmState
    from anytouch_policy.sim.devices import sim_arm_and_gripper
    from anytouch_policy.sim.params import RigConfig

    class Minimal(Arm):
        def __init__(self):
            self.limits, self.calls = ArmLimits(), []

        def open(self): ...

        def close(self): ...

        def apply_tilt_step(self, delta_deg):
            self.calls.append(("step", delta_deg))
            return delta_deg

        def hold(self):
            self.calls.append(("hold", None))

        def state(self):
            return ArmState(stamp_ns=0, tilt_deg=0.0, pose=(0.0,) * 6, moving=False, status="ready")

    arm = Minimal()
    arm.estop()
    assert arm.recover() is None and arm.diagnostics() == {}
    assert arm.calls == [("hold", None)]

    sim, _ = sim_arm_and_gripper(RigConfig(), episode_seed=3)
    with sim:
        sim.apply_tilt_step(0.5)
        sim.advance()
        assert sim.drive.moving
        sim.estop()
        assert not sim.drive.moving and sim.drive.target_deg == sim.drive.tilt_deg


def test_sources_without_extra_diagnostics_report_none():
    from anytouch_policy.sim.devices import sim_tactile_source
    from anytouch_policy.sim.sensor_params import SensorSpec

    assert sim_tactile_source(SensorSpec.parse("digit"), episode_seed=0, index=0).diagnostics() == {}
