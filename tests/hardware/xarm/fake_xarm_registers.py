"""The register handlers of the stand-in xArm controller: what each command the backends send does to its state.

Registers are named _r<number> after XCONF.UxbusReg; each takes the request payload and returns the reply data.
Payloads follow xarm/core/wrapper/uxbus_cmd.py: floats little-endian, integers big-endian except the int32 of
SET_LIMIT_XYZ.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass, field

from tests.hardware.xarm.fake_robotiq import FakeRobotiq
from tests.hardware.xarm.fake_xarm_report import quat_from_rpy, quat_to_rpy

MOVE_LINE = 21


@dataclass
class Target:
    """One accepted move command, as received (pose in mm and radians)."""

    t: float
    pose: tuple[float, float, float, float, float, float]
    speed: float
    acc: float
    coord: int  # 0 base, 1 tool
    axis_angle: bool
    mode: int


@dataclass
class FakeArmState:
    """The controller's state: mode/state machine, faults, pose (mm + quaternion), settings, tool RS-485 baud."""

    mode: int = 0
    state: int = 4
    enabled: bool = False
    error: int = 0
    warn: int = 0
    error_clearable: bool = True
    position: list[float] = field(default_factory=lambda: [300.0, 0.0, 400.0])  # mm
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    target_pos: list[float] | None = None
    target_quat: tuple[float, float, float, float] | None = None
    busy_until: float = 0.0  # simulate_motion(): reported moving until then
    tcp_offset: list[float] = field(default_factory=lambda: [0.0] * 6)
    tcp_load: list[float] = field(default_factory=lambda: [0.0] * 4)
    tcp_maxacc: float = 2000.0
    collision_sensitivity: int = 3
    reduced_mode: bool = False
    reduced_boundary: list[int] = field(default_factory=lambda: [0] * 6)
    reduced_tcp_speed: float = 250.0
    reduced_joint_speed: float = math.pi
    feedback_type: int = 0
    baud_index: int = 12  # 2000000, the SDK's gripper default; the Robotiq needs 5 (115200)


class ControllerRegisters:
    """Mixin of FakeXArmController: the controller's reaction to each register, under its lock."""

    arm: FakeArmState
    axis: int
    firmware: str
    settle_s: float
    robotiq: FakeRobotiq
    targets: list[Target]
    unhandled: list[int]
    ignored_motion: int
    _last_change: float

    def _status_byte(self) -> int:
        a = self.arm
        flags = 0x40 if a.error else 0
        flags |= 0x20 if a.warn else 0
        flags |= 0x10 if (a.state >= 4 or not a.enabled or a.error) else 0
        return flags

    def _changed(self) -> None:
        self._last_change = time.monotonic()

    # registers are named _r<number> after XCONF.UxbusReg
    def _r1(self, p: bytes) -> bytes:  # GET_VERSION
        text = f"{self.axis},6,XI1304A1B2C3,AC1303A1B2C3,v{self.firmware}"  # the SDK reads 40 bytes
        assert len(text) < 40, text
        return text.encode().ljust(40, b"\0")

    def _r2(self, p: bytes) -> bytes:  # GET_ROBOT_SN
        return b"XI1304A1B2C3\0AC1303A1B2C3".ljust(40, b"\0")

    def _r11(self, p: bytes) -> bytes:  # MOTION_EN [servo, enable]
        if not self.arm.error:
            self.arm.enabled = bool(p[1])
        return b""

    def _r12(self, p: bytes) -> bytes:  # SET_STATE
        a = self.arm
        self._changed()
        if p[0] == 0:
            if a.enabled and not a.error:
                a.state = 1 if a.target_quat is not None else 2
        elif p[0] == 3:
            a.state = 3
        elif p[0] in (4, 6):
            a.state, a.target_pos, a.target_quat = 4, None, None
        return b""

    def _r13(self, p: bytes) -> bytes:  # GET_STATE
        return bytes([self._reported_state()])

    def _r14(self, p: bytes) -> bytes:  # GET_CMDNUM
        return struct.pack(">H", 1 if self.arm.target_quat is not None else 0)

    def _r15(self, p: bytes) -> bytes:  # GET_ERROR
        return bytes([self.arm.error, self.arm.warn])

    def _r16(self, p: bytes) -> bytes:  # CLEAN_ERR
        if self.arm.error_clearable:
            self.arm.error = 0
        return b""

    def _r17(self, p: bytes) -> bytes:  # CLEAN_WAR
        self.arm.warn = 0
        return b""

    def _r19(self, p: bytes) -> bytes:  # SET_MODE: takes effect, the arm waits for set_state(0)
        if not self.arm.error:
            self.arm.mode = p[0]
            self.arm.state = 4
            self.arm.target_pos = self.arm.target_quat = None
        self._changed()
        return b""

    def _r21(self, p: bytes) -> bytes:  # MOVE_LINE (the common form: 10 floats + coord, axis-angle, check)
        values = struct.unpack("<10f", p[:40])
        coord, axis_angle = p[40], p[41]
        a, now = self.arm, time.monotonic()
        if a.error or a.state >= 3 or not a.enabled or a.mode not in (0, 7):
            return b"\0\0\0"
        if now - self._last_change < self.settle_s:
            self.ignored_motion += 1
            return b"\0\0\0"
        pose = tuple(float(v) for v in values[:6])
        self.targets.append(Target(now, pose, values[6], values[7], coord, bool(axis_angle), a.mode))
        if coord == 0 and not axis_angle:
            a.target_pos, a.target_quat = list(pose[:3]), quat_from_rpy(*pose[3:])
        else:
            self.unhandled.append(MOVE_LINE)  # tool-frame or axis-angle moves are not modelled
            return b"\0\0\0"
        a.state = 1
        return b"\0\0\0"

    def _r32(self, p: bytes) -> bytes:  # SET_TCP_MAXACC
        self.arm.tcp_maxacc = struct.unpack("<f", p[:4])[0]
        return b""

    def _r35(self, p: bytes) -> bytes:  # SET_TCP_OFFSET (mm, rad)
        self.arm.tcp_offset = list(struct.unpack("<6f", p[:24]))
        return b""

    def _r36(self, p: bytes) -> bytes:  # SET_LOAD_PARAM (kg, mm)
        self.arm.tcp_load = list(struct.unpack("<4f", p[:16]))
        return b""

    def _r37(self, p: bytes) -> bytes:  # SET_COLLIS_SENS
        self.arm.collision_sensitivity = p[0]
        return b""

    def _r41(self, p: bytes) -> bytes:  # GET_TCP_POSE
        return struct.pack("<6f", *self._pose())

    def _r42(self, p: bytes) -> bytes:  # GET_JOINT_POS
        return struct.pack("<7f", *([0.0] * 7))

    def _r47(self, p: bytes) -> bytes:  # SET_REDUCED_TRSV (mm/s)
        self.arm.reduced_tcp_speed = struct.unpack("<f", p[:4])[0]
        return b""

    def _r48(self, p: bytes) -> bytes:  # SET_REDUCED_P2PV (rad/s)
        self.arm.reduced_joint_speed = struct.unpack("<f", p[:4])[0]
        return b""

    def _r49(self, p: bytes) -> bytes:  # GET_REDUCED_MODE
        return bytes([int(self.arm.reduced_mode)])

    def _r50(self, p: bytes) -> bytes:  # SET_REDUCED_MODE
        self.arm.reduced_mode = bool(p[0])
        return b""

    def _r52(self, p: bytes) -> bytes:  # SET_LIMIT_XYZ (6 little-endian int32, mm)
        self.arm.reduced_boundary = list(struct.unpack("<6i", p[:24]))
        return b""

    def _r124(self, p: bytes) -> bytes:  # RS485_RTU: [host id] + Modbus RTU request, reply [host id] + response
        if p[0] != 9:
            return bytes([p[0]])
        if self.arm.baud_index != 5:  # wrong baud: the gripper does not answer
            return bytes([9])
        return bytes([9]) + self.robotiq.handle(p[1:])

    def _r127(self, p: bytes) -> bytes:  # TGPIO_W16B [bid, addr, fp32 value]
        addr = struct.unpack(">H", p[1:3])[0]
        value = struct.unpack("<f", p[3:7])[0]
        if addr == 0x1A0B:
            self.arm.baud_index = int(value)
        return b""

    def _r128(self, p: bytes) -> bytes:  # TGPIO_R16B [bid, addr] -> >i
        addr = struct.unpack(">H", p[1:3])[0]
        return struct.pack(">i", self.arm.baud_index if addr == 0x0A0B else 0)

    def _r253(self, p: bytes) -> bytes:  # FEEDBACK_CHECK (the feedback frame follows the reply)
        return b""

    def _r254(self, p: bytes) -> bytes:  # SET_FEEDBACK_TYPE
        self.arm.feedback_type = p[0]
        return b""

    def _pose(self) -> list[float]:
        return [*self.arm.position, *quat_to_rpy(self.arm.quat)]

    def _reported_state(self) -> int:
        a = self.arm
        if a.state < 3 and time.monotonic() < a.busy_until:
            return 1
        return a.state
