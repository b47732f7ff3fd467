"""Robotiq 2F-140 on the xArm tool RS-485 (Modbus RTU slave 9), through the SDK's robotiq_* methods.

Activation (at open): reset, activate without the SDK's wait, then poll the status registers until gSTA == 3
with no fault; a fault is named, a timeout reports the last gSTA/gFLT. After that nothing blocks the control loop:
`grasp` and `release` send one request with wait=False, wait_motion=False (by default the SDK first calls
wait_move(), which blocks until the arm stops) and auto_enable=False (by default it silently re-runs a blocking
reset + activation when it believes the gripper inactive). A background thread polls the status, so `status()`
returns the latest reading at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import IntEnum

from anytouch_policy.errors import ConfigError, DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import Gripper, GripperStatus
from anytouch_policy.hardware.xarm.arm import XArmArm
from anytouch_policy.hardware.xarm.errors import check

log = logging.getLogger(__name__)

#: gSTA value once activation has completed.
ACTIVATED = 3


class RobotiqFault(IntEnum):
    """gFLT: the gripper's fault register (Robotiq 2F-85/140 manual, section 4.4)."""

    NONE = 0x00
    ACTION_DELAYED = 0x05  # activation must complete before this action
    ACTIVATION_BIT_NOT_SET = 0x07  # the activation bit must be set before an action
    OVER_TEMPERATURE = 0x08  # maximum operating temperature exceeded: let it cool down
    NO_COMMUNICATION = 0x09  # no request for at least 1 s
    UNDER_VOLTAGE = 0x0A  # supply below the minimum operating voltage
    AUTOMATIC_RELEASE_IN_PROGRESS = 0x0B
    INTERNAL_FAULT = 0x0C  # contact Robotiq support
    ACTIVATION_FAULT = 0x0D  # activation failed: check that nothing blocks the fingers
    OVERCURRENT = 0x0E
    AUTOMATIC_RELEASE_COMPLETED = 0x0F

    @classmethod
    def describe(cls, code: int) -> str:
        try:
            return f"gFLT 0x{code:02X} ({cls(code).name})"
        except ValueError:
            return f"gFLT 0x{code:02X} (undocumented)"


#: Faults that do not stop the gripper: 0x09 only says the bus was quiet for a second.
HARMLESS_FAULTS = frozenset({RobotiqFault.NONE, RobotiqFault.NO_COMMUNICATION})


@dataclass(frozen=True)
class RobotiqConfig:
    """Robotiq 2F-140 settings. Positions, speeds and forces are register values 0..255."""

    activation_timeout_s: float = 5.0  # activation takes ~1-2 s on a free gripper; stuck gSTA=0 must not hang startup
    poll_period_s: float = 0.2  # status poll of the background thread (one RS-485 read is ~10 ms at 115200 baud)
    baud: int = 115200  # Robotiq default; the SDK checks and sets the tool RS-485 baud before the first request
    grasp_position: int = 255  # closing target (255 = fully closed: the fingers stop on the cylinder)
    grasp_speed: int = 64  # slow enough not to squeeze the cylinder out of the fingers
    grasp_force: int = 128  # half force: holds the filled cylinder without crushing it
    open_position: int = 0  # release target (0 = fully open)
    release_speed: int = 64

    def __post_init__(self) -> None:
        for field in ("grasp_position", "grasp_speed", "grasp_force", "open_position", "release_speed"):
            if not 0 <= getattr(self, field) <= 255:
                raise ConfigError(f"{field} must be in 0..255, got {getattr(self, field)}")
        if self.activation_timeout_s <= 0 or self.poll_period_s <= 0:
            raise ConfigError("activation_timeout_s and poll_period_s must be > 0")


def _register(name: str, value: int) -> int:
    if not 0 <= int(value) <= 255:
        raise ConfigError(f"gripper {name} must be in 0..255, got {value}")
    return int(value)


class RobotiqGripper(Gripper):
    """The 2F-140 through an open XArmArm's connection (the arm must be opened first)."""

    def __init__(self, config: RobotiqConfig, *, arm: XArmArm) -> None:
        self.config = config
        self._arm = arm
        self._activated = False
        self._status = GripperStatus(activated=False, position=0, object_detected=False, fault=0, moving=False)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.last_error = ""

    def open(self) -> None:
        sdk = self._arm.sdk
        check(sdk, "set_checkset_default_baud(3)", sdk.set_checkset_default_baud(3, self.config.baud))
        self.activate(self.config.activation_timeout_s)
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll_loop, name="robotiq-poll", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop polling. The fingers are left as they are: closing the program must not drop the cylinder."""
        self._stop.set()
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.join(2.0)

    def _read_status(self) -> GripperStatus:
        sdk = self._arm.sdk
        check(sdk, "robotiq_get_status()", sdk.robotiq_get_status(number_of_registers=3))
        st = sdk.robotiq_status
        status = GripperStatus(activated=st["gSTA"] == ACTIVATED, position=int(st["gPO"]),
                               object_detected=st["gOBJ"] in (1, 2), fault=int(st["gFLT"]),
                               moving=st["gGTO"] == 1 and st["gOBJ"] == 0)
        with self._lock:
            self._status = status
        return status

    def activate(self, timeout_s: float = 5.0) -> None:
        sdk = self._arm.sdk
        self._activated = False
        check(sdk, "robotiq_reset()", sdk.robotiq_reset())
        check(sdk, "robotiq_set_activate(wait=False)", sdk.robotiq_set_activate(wait=False))
        deadline = time.monotonic() + timeout_s
        while True:
            status = self._read_status()
            gsta = sdk.robotiq_status["gSTA"]
            if status.fault not in HARMLESS_FAULTS and not (status.fault == RobotiqFault.ACTION_DELAYED and gsta == 1):
                raise DeviceError(f"Robotiq activation failed: {RobotiqFault.describe(status.fault)}, gSTA={gsta}")
            if status.activated:
                self._activated = True
                log.info("Robotiq activated (position %d)", status.position)
                return
            if time.monotonic() > deadline:
                raise DeviceError(f"Robotiq activation timed out after {timeout_s:.1f} s: gSTA={gsta} (3 = "
                                  f"activated), {RobotiqFault.describe(status.fault)}; check the tool RS-485 cable, "
                                  "24 V supply and baud rate")
            time.sleep(min(0.05, self.config.poll_period_s))

    def _move(self, position: int, speed: int, force: int, what: str) -> None:
        if not self._activated:
            raise DeviceNotConnectedError(f"Robotiq {what} before activation: open() or activate() first")
        sdk = self._arm.sdk
        result = sdk.robotiq_set_position(_register("position", position), speed=_register("speed", speed),
                                          force=_register("force", force), wait=False, wait_motion=False,
                                          auto_enable=False)
        check(sdk, f"robotiq_set_position({position}) for {what}", result)

    def grasp(self, position: int = 255, speed: int = 64, force: int = 128) -> None:
        """Start closing towards `position`; returns after one RS-485 request, never waits for the fingers."""
        self._move(position, speed, force, "grasp")

    def release(self) -> None:
        """Start opening to the configured open position; returns at once."""
        self._move(self.config.open_position, self.config.release_speed, self.config.grasp_force, "release")

    def status(self) -> GripperStatus:
        """The latest polled status (no bus traffic in the caller's thread)."""
        with self._lock:
            return self._status

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.config.poll_period_s):
            try:
                status = self._read_status()
            except (DeviceError, DeviceNotConnectedError) as exc:
                self.last_error = str(exc)
                continue
            if status.fault not in HARMLESS_FAULTS:
                self.last_error = RobotiqFault.describe(status.fault)
                if self._activated:
                    log.error("Robotiq fault: %s", self.last_error)
                self._activated = self._activated and status.activated
