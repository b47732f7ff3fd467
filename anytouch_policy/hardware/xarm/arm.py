"""xArm 6 through xarm-python-sdk: checked bring-up, tool-axis tilt steps in mode 7, watchdog, latched faults.

Steps stream at 5 Hz in mode 7: online Cartesian replanning, a new target replaces the running one with continuous
velocity (docs/hardware.md says why not mode 5). Each target is absolute: the start pose rotated by the commanded
tilt about the configured tool axis through the TCP, composed as rotation matrices (tool_rotation.py). So there
are no base-frame RPY increments near the pitch-90 deg singularity, no drift from interrupted relative moves, and
a dead process leaves the arm at most one step (limits.max_step_deg) from where it was.

Safety, in layers:
- ArmLimits are enforced here too: tilt range, step, rate, and a target never more than one step ahead of the tilt
  the controller reports (ArmLimits.target_step), so a slow arm cannot build up a lead that keeps it turning
  after `wait`. Non-finite steps are refused.
- The controller runs in reduced mode (workspace box, TCP and joint speed caps) with collision detection on.
- A monitor thread holds the arm when no step came for limits.command_timeout_s.
- Controller errors, warnings, an unexpected stop or a lost link latch ERROR / ESTOP / DISCONNECTED and stop
  motion. Nothing clears a latch but an explicit recover().
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from anytouch_policy.actions import CONTROL_RATE_HZ
from anytouch_policy.bounds import require_finite
from anytouch_policy.errors import DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import Arm, ArmLimits, ArmState, ArmStatus
from anytouch_policy.hardware.xarm.config import MIN_FIRMWARE, XArmConfig
from anytouch_policy.hardware.xarm.errors import ESTOP_ERROR_CODES, api_code_name, check, describe_controller
from anytouch_policy.hardware.xarm.safety import configure_controller_safety
from anytouch_policy.hardware.xarm.tool_rotation import tilt_from_start, tilted_pose

log = logging.getLogger(__name__)

STREAMING_MODE = 7  # online Cartesian trajectory planning
LATCHED = frozenset({ArmStatus.ERROR, ArmStatus.ESTOP, ArmStatus.DISCONNECTED})
MONITOR_PERIOD_S = 0.02
#: After our own mode/state change the 5 Hz report may still show the old state this long.
STATE_GRACE_S = 0.6
#: Smaller target changes are not sent: the report's float32 pose is only this precise, so they are noise.
MIN_STEP_DEG = 1e-4


class XArmArm(Arm):
    """An xArm 6 as an Arm: apply_tilt_step / hold / state, plus estop() and an explicit recover()."""

    def __init__(self, config: XArmConfig, *, limits: ArmLimits | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.limits = limits or ArmLimits()
        self._clock = clock
        self._sdk: Any = None
        self._cmd_lock = threading.RLock()  # one SDK command sequence at a time (node thread, monitor thread)
        self._status_lock = threading.Lock()  # status fields; SDK callbacks take only this lock
        self._status = ArmStatus.DISCONNECTED
        self._message = "not open"
        self._stop_needed = False
        self._armed = False  # in mode 7 and state 0: a step can be sent
        self._start_pose: tuple[float, ...] | None = None  # TCP pose at tilt 0 (mm, deg)
        self._anchor_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)  # position every target keeps
        self._near_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)  # last target's RPY (continuity)
        self._commanded_tilt = 0.0
        self._last_cmd_t = 0.0  # monotonic time of the last apply_tilt_step (the watchdog's heartbeat)
        self._last_motion_t = -math.inf  # monotonic time of the last target sent
        self._last_stop_t = 0.0  # monotonic time of our last stop (hold/estop/bring-up)
        self._own_change_t = 0.0  # monotonic time of our last mode/state change
        self._monitor: threading.Thread | None = None
        self._stop_monitor = threading.Event()

    # -- life cycle ------------------------------------------------------------------------------------------

    def open(self) -> None:
        if self._sdk is not None:
            return
        from xarm.wrapper import XArmAPI

        cfg = self.config
        # forbid_uds: never talk to a local /tmp/xarmcontroller_uds_* socket instead of the configured controller
        sdk = XArmAPI(cfg.ip, is_radian=False, do_not_open=True, report_type="rich", forbid_uds=True)
        try:
            sdk.connect()
        except Exception as exc:  # the SDK raises a bare Exception('connect socket failed')
            raise DeviceError(f"cannot connect to the xArm controller at {cfg.ip}: {exc}") from None
        self._sdk = sdk
        with self._status_lock:  # connected, not moving yet: a fault seen from now on latches
            self._status, self._message, self._armed = ArmStatus.HOLDING, "bringing up", False
        try:
            if sdk.axis != cfg.expected_axis:
                raise DeviceError(f"controller at {cfg.ip} reports a {sdk.axis}-axis arm, expected {cfg.expected_axis}")
            if tuple(sdk.version_number) < MIN_FIRMWARE:
                raise DeviceError(f"controller firmware {sdk.version_number} is older than "
                                  f"{MIN_FIRMWARE}: mode 7 needs 1.11.0 or newer")
            sdk.register_error_warn_changed_callback(self._on_error_warn)
            sdk.register_state_changed_callback(self._on_state)
            sdk.register_connect_changed_callback(self._on_connect)
            error, warn = check(sdk, "get_err_warn_code()", sdk.get_err_warn_code())
            with self._cmd_lock:
                if error or warn:  # never cleared automatically: the operator fixes the cause, then recover()
                    self._latch(ArmStatus.ESTOP if error in ESTOP_ERROR_CODES else ArmStatus.ERROR,
                                f"controller reported at open: {describe_controller(error, warn)}; call recover()")
                else:
                    self._bring_up(anchor=True)
            self._stop_monitor.clear()
            self._monitor = threading.Thread(target=self._monitor_loop, name="xarm-monitor", daemon=True)
            self._monitor.start()
        except BaseException:
            self._disconnect()
            raise

    def close(self) -> None:
        self._stop_monitor.set()
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.join(2.0)
        with self._cmd_lock:
            try:
                if self._sdk is not None and self._sdk.connected:
                    code = self._sdk.set_state(4)  # stop motion; motors stay enabled and hold the pose
                    if code != 0:
                        log.error("xArm set_state(4) at close failed: code %s (%s)", code, api_code_name(code))
            finally:
                self._disconnect()

    def _disconnect(self) -> None:
        sdk, self._sdk = self._sdk, None
        with self._status_lock:
            self._status, self._message, self._armed = ArmStatus.DISCONNECTED, "closed", False
        if sdk is not None:
            try:
                sdk.release_error_warn_changed_callback(self._on_error_warn)
                sdk.release_state_changed_callback(self._on_state)
                sdk.release_connect_changed_callback(self._on_connect)
            finally:
                sdk.disconnect()

    @property
    def sdk(self) -> Any:
        """The connected XArmAPI (the Robotiq gripper talks through its tool RS-485)."""
        if self._sdk is None:
            raise DeviceNotConnectedError("xArm: open() first")
        return self._sdk

    # -- bring-up --------------------------------------------------------------------------------------------

    def _set_mode_state(self, mode: int) -> None:
        """set_mode(mode), settle, set_state(0), settle; the controller ignores commands sent sooner (#59)."""
        sdk, settle = self._sdk, self.config.settle_s
        self._own_change_t = time.monotonic()
        check(sdk, f"set_mode({mode})", sdk.set_mode(mode))
        time.sleep(settle)
        check(sdk, "set_state(0)", sdk.set_state(0))
        time.sleep(settle)
        self._own_change_t = time.monotonic()
        if sdk.state >= 4:  # set_state reports 0 even when the controller refused (error flag set)
            raise DeviceError(f"xArm set_state(0) in mode {mode} left the arm in state {sdk.state}; "
                              f"{describe_controller(sdk.error_code, sdk.warn_code)}")

    def _bring_up(self, *, anchor: bool) -> None:
        """Enable, configure the controller-side safety, take the start pose, enter mode 7. Caller holds _cmd_lock."""
        sdk, cfg = self._sdk, self.config
        check(sdk, "motion_enable(True)", sdk.motion_enable(True))
        self._set_mode_state(0)
        configure_controller_safety(sdk, cfg)
        error, warn = check(sdk, "get_err_warn_code()", sdk.get_err_warn_code())
        if error or warn:
            raise DeviceError(f"xArm bring-up: {describe_controller(error, warn)}")
        pose = tuple(check(sdk, "get_position()", sdk.get_position(is_radian=False)))
        if not cfg.contains(pose[:3]):
            raise DeviceError(f"TCP at {tuple(round(v, 1) for v in pose[:3])} mm is outside workspace_mm "
                              f"{cfg.workspace_mm}: jog the arm into the workspace first")
        if anchor or self._start_pose is None:
            self._start_pose, self._commanded_tilt = pose, 0.0
        else:
            tilt, off_axis = tilt_from_start(self._start_pose[3:], pose[3:], cfg.tilt_axis)
            if off_axis > cfg.max_off_axis_deg:
                raise DeviceError(f"the tool is rotated {off_axis:.1f} deg off the tilt axis since the start pose "
                                  f"(max {cfg.max_off_axis_deg}): jog it back before recovering")
            self._commanded_tilt = tilt
        self._anchor_xyz, self._near_rpy = pose[:3], pose[3:]
        self._set_mode_state(STREAMING_MODE)
        deadline = time.monotonic() + 2.0
        while sdk.mode != STREAMING_MODE:  # the report confirms the mode
            if time.monotonic() > deadline:
                raise DeviceError(f"xArm reports mode {sdk.mode} after set_mode({STREAMING_MODE})")
            time.sleep(0.02)
        now = time.monotonic()
        with self._status_lock:
            self._status, self._message, self._armed, self._stop_needed = ArmStatus.READY, "", True, False
            self._last_cmd_t = self._last_stop_t = now
        log.info("xArm ready in mode 7 at tilt %.2f deg, pose %s", self._commanded_tilt, pose)

    # -- commands --------------------------------------------------------------------------------------------

    def apply_tilt_step(self, delta_deg: float) -> float:
        require_finite("tilt step", delta_deg)  # min/max would turn a NaN into a full step
        now = time.monotonic()
        with self._cmd_lock:
            sdk = self.sdk
            with self._status_lock:
                self._last_cmd_t = now
                if self._status in LATCHED or (self._status is ArmStatus.HOLDING and not self._armed):
                    return 0.0
                if self._status is ArmStatus.HOLDING:
                    self._status, self._message = ArmStatus.READY, ""
            if delta_deg == 0.0 or sdk.state == 3:  # paused from the pendant: set_position would block (#pause)
                return 0.0
            lim = self.limits
            allowed = min(lim.max_step_deg, lim.max_rate_deg_s * min(now - self._last_motion_t, 1.0 / CONTROL_RATE_HZ))
            # after a recover() outside the range only steps back towards it are taken, never a jump onto the
            # limit; and the target stays within one step of the tilt the controller reports
            measured, _ = tilt_from_start(self._start_pose[3:], sdk.position[3:], self.config.tilt_axis)
            step = lim.target_step(max(-allowed, min(allowed, delta_deg)), target_deg=self._commanded_tilt,
                                   measured_deg=measured)
            if abs(step) < MIN_STEP_DEG:
                return 0.0
            target = self._commanded_tilt + step
            pose = tilted_pose((*self._anchor_xyz, *self._start_pose[3:]), self.config.tilt_axis, target,
                               near_rpy=self._near_rpy)
            code = sdk.set_position(*pose, speed=self.config.tcp_speed_mm_s, mvacc=self.config.tcp_acc_mm_s2,
                                    is_radian=False, wait=False)
            if code != 0:
                self._latch(ArmStatus.ERROR, f"set_position failed: code {code} ({api_code_name(code)}); "
                                             f"{describe_controller(sdk.error_code, sdk.warn_code)}")
                return 0.0
            self._commanded_tilt, self._near_rpy, self._last_motion_t = target, pose[3:], now
            return step

    def hold(self) -> None:
        with self._cmd_lock:
            if self._sdk is None:
                raise DeviceNotConnectedError("xArm: hold() before open()")
            with self._status_lock:
                latched = self._status in LATCHED
            if latched:
                self._stop_motion()
                return
            self._stop_motion()
            with self._status_lock:
                if self._status not in LATCHED:
                    self._status, self._armed = ArmStatus.HOLDING, False

    def _stop_motion(self) -> None:
        """set_state(4): stop now and drop the target. Caller holds _cmd_lock."""
        self._own_change_t = self._last_stop_t = time.monotonic()
        code = self._sdk.set_state(4)
        if code != 0:
            self._latch(ArmStatus.ERROR, f"set_state(4) failed: code {code} ({api_code_name(code)})")

    def estop(self) -> None:
        """Stop at once and latch ESTOP; only recover() makes the arm move again."""
        sdk = self.sdk
        self._latch(ArmStatus.ESTOP, "estop() called")
        self._own_change_t = time.monotonic()
        sdk.emergency_stop()  # set_state(4) until the controller confirms; does not wait for _cmd_lock
        with self._cmd_lock:  # a sequence that was running (re-arm) has ended: make sure the arm is stopped
            if sdk.state != 4:
                sdk.emergency_stop()

    def recover(self) -> None:
        """Operator command: clear the controller error/warning, re-run the bring-up, continue from the current tilt.

        Refuses (DeviceError) when the error does not clear (servo errors need a power cycle, xArm-Python-SDK#32;
        after a collision some firmware needs "Enable Robot" in xArm Studio, #21, #97) or when the tool was
        turned off the tilt axis.
        """
        with self._cmd_lock:
            sdk = self.sdk
            if not sdk.connected:
                try:
                    sdk.connect()
                except Exception as exc:  # bare Exception from the SDK
                    raise DeviceError(f"cannot reconnect to the xArm controller at {self.config.ip}: {exc}") from None
            # their reply may still carry the error/warning flag (codes 1, 2): the read-back below decides
            check(sdk, "clean_error()", sdk.clean_error(), ok=(0, 1, 2))
            check(sdk, "clean_warn()", sdk.clean_warn(), ok=(0, 1, 2))
            time.sleep(self.config.settle_s)
            error, warn = check(sdk, "get_err_warn_code()", sdk.get_err_warn_code())
            if error or warn:
                raise DeviceError(f"xArm recover: still {describe_controller(error, warn)} after clean_error/"
                                  "clean_warn; fix the cause (servo errors need a power cycle)")
            self._bring_up(anchor=False)

    # -- state -----------------------------------------------------------------------------------------------

    def state(self) -> ArmState:
        sdk = self._sdk
        with self._status_lock:
            status = self._status
        if sdk is None or self._start_pose is None:
            pose = tuple(sdk.position) if sdk is not None else (0.0,) * 6
            return ArmState(stamp_ns=self._clock(), tilt_deg=0.0, pose=pose, moving=False, status=str(status),
                            error_code=getattr(sdk, "error_code", 0), warn_code=getattr(sdk, "warn_code", 0))
        pose = tuple(float(v) for v in sdk.position)
        tilt, _ = tilt_from_start(self._start_pose[3:], pose[3:], self.config.tilt_axis)
        return ArmState(stamp_ns=self._clock(), tilt_deg=tilt, pose=pose, moving=sdk.state == 1, status=str(status),
                        error_code=sdk.error_code, warn_code=sdk.warn_code)

    @property
    def commanded_tilt_deg(self) -> float:
        """Tilt of the last target sent, degrees from the start pose (state().tilt_deg is the measured one)."""
        return self._commanded_tilt

    @property
    def status_message(self) -> str:
        with self._status_lock:
            return self._message

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics next to state()."""
        sdk = self._sdk
        with self._status_lock:
            status, message = self._status, self._message
        out = {"status": str(status), "message": message, "ip": self.config.ip,
               "commanded_tilt_deg": f"{self._commanded_tilt:.3f}",
               "last_step_age_s": f"{time.monotonic() - self._last_cmd_t:.2f}"}
        if sdk is not None:
            off_axis = tilt_from_start(self._start_pose[3:], sdk.position[3:], self.config.tilt_axis)[1] \
                if self._start_pose else 0.0
            out.update({"mode": str(sdk.mode), "state": str(sdk.state), "firmware": str(sdk.version_number),
                        "reduced_mode": str(sdk.is_reduced_mode), "off_axis_deg": f"{off_axis:.2f}",
                        "controller": describe_controller(sdk.error_code, sdk.warn_code)})
        return out

    # -- faults and the monitor thread -----------------------------------------------------------------------

    def _latch(self, status: ArmStatus, message: str) -> None:
        """Enter a latched status (first cause wins) and ask the monitor to stop motion."""
        with self._status_lock:
            if self._status not in LATCHED or status is ArmStatus.ESTOP:
                log.error("xArm %s: %s", status, message)
                self._status, self._message = status, message
            self._armed, self._stop_needed = False, True

    def _on_error_warn(self, item: dict[str, int]) -> None:
        error, warn = item.get("error_code", 0), item.get("warn_code", 0)
        if error or warn:
            self._latch(ArmStatus.ESTOP if error in ESTOP_ERROR_CODES else ArmStatus.ERROR,
                        describe_controller(error, warn))

    def _on_state(self, item: dict[str, int]) -> None:
        self._check_unexpected_stop(item.get("state", 0))

    def _check_unexpected_stop(self, state: int) -> None:
        """A stop (state 4/5) we did not command while steps run latches ERROR (stop pressed in xArm Studio...)."""
        with self._status_lock:
            ready = self._status is ArmStatus.READY
        if ready and state in (4, 5) and time.monotonic() - self._own_change_t > STATE_GRACE_S:
            self._latch(ArmStatus.ERROR, f"controller stopped the arm (state {state}) without an error code "
                                         "(stop pressed in xArm Studio?)")

    def _on_connect(self, item: dict[str, bool]) -> None:
        if not item.get("connected", False) or not item.get("reported", False):
            self._latch(ArmStatus.DISCONNECTED, f"link to the controller lost (connected={item.get('connected')}, "
                                                f"report={item.get('reported')})")

    def _monitor_loop(self) -> None:
        while not self._stop_monitor.wait(MONITOR_PERIOD_S):
            try:
                self._monitor_once()
            except DeviceError as exc:
                self._latch(ArmStatus.ERROR, str(exc))

    def _monitor_once(self) -> None:
        now = time.monotonic()
        with self._status_lock:
            status, armed, stop_needed = self._status, self._armed, self._stop_needed
            idle_s = now - self._last_cmd_t
        sdk = self._sdk
        if sdk is None:
            return
        if stop_needed:
            with self._cmd_lock:  # re-read: a recover() that held the lock may have cleared it meanwhile
                with self._status_lock:
                    needed, self._stop_needed = self._stop_needed, False
                if needed and sdk.connected:
                    self._stop_motion()
            return
        if status is ArmStatus.READY:
            if idle_s > self.limits.command_timeout_s:
                if self._last_motion_t > self._last_stop_t:  # a target may still be running: stop it
                    log.warning("xArm: no step for %.2f s: holding", idle_s)
                    self.hold()
                else:
                    with self._status_lock:
                        if self._status is ArmStatus.READY:
                            self._status = ArmStatus.HOLDING
            else:  # backstop for a stop the state callback saw during our own grace period
                self._check_unexpected_stop(sdk.state)
        elif status is ArmStatus.HOLDING and not armed:
            with self._cmd_lock:
                with self._status_lock:
                    if self._status is not ArmStatus.HOLDING or self._armed:
                        return
                self._set_mode_state(STREAMING_MODE)  # re-arm so the next step moves at once
                with self._status_lock:
                    if self._status is ArmStatus.HOLDING:
                        self._armed = True
