"""A loopback stand-in for the xArm controller, speaking the SDK's wire protocol, so the real SDK runs in tests.

What it serves (everything the backends use; an unknown command is answered INVALID and recorded in `unhandled`):
- the command socket (port 502): the private Modbus-TCP framing of xarm/core/wrapper/uxbus_cmd_tcp.py
  (transaction id, protocol id 2 or 3, length, register; replies carry a status byte with the error 0x40,
  warning 0x20 and not-ready 0x10 flags), with version, state, mode, enable, error/warning, clean, pose,
  TCP offset/load/acceleration, collision sensitivity, reduced mode and boundary, the move command, the
  motion-finished feedback frames of FEEDBACK_CHECK, and the tool RS-485 Modbus passthrough (RS485_RTU, tool
  register read/write for the baud rate) to a FakeRobotiq;
- the report socket (port 30002, "rich"): state, mode, cmdnum, joints, TCP pose, error/warning, reduced mode.

Behaviour modelled: a TCP pose that moves towards the last target at `rot_speed_deg_s` / `lin_speed_mm_s`
(mode 7 replaces the target), state 1 while moving and 2 when idle, a mode change that needs set_state(0),
motion commands ignored within `settle_s` of a mode/state change (xArm-Python-SDK#59) and counted, errors that
stop the arm, drop to mode 0 and refuse motion until cleaned, and warnings.

It listens on its own loopback address 127.x.y.z, so the SDK's fixed ports never collide between tests.
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from tests.hardware.fake_robotiq import FakeRobotiq
from tests.hardware.fake_xarm_report import (
    ReportState,
    encode_rich_report,
    quat_axis_angle,
    quat_conj,
    quat_from_rpy,
    quat_mul,
    quat_slerp,
    quat_to_rpy,
)

REPORT_PORT = 30002
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
class Call:
    t: float
    register: int
    payload: bytes
    mode: int
    state: int


@dataclass
class FakeArmState:
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


class FakeXArmController:
    """Context manager: listens on (host, control_port) and (host, 30002); `port` is what the SDK must dial."""

    def __init__(self, *, control_port: int = 502, firmware: str = "2.5.0", axis: int = 6,
                 start_rpy_deg: tuple[float, float, float] = (180.0, 0.0, 0.0),
                 start_xyz_mm: tuple[float, float, float] = (300.0, 0.0, 400.0), rot_speed_deg_s: float = 30.0,
                 lin_speed_mm_s: float = 200.0, report_hz: float = 20.0, settle_s: float = 0.1,
                 robotiq: FakeRobotiq | None = None) -> None:
        self.host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        self.firmware, self.axis = firmware, axis
        self.rot_speed = math.radians(rot_speed_deg_s)
        self.lin_speed = lin_speed_mm_s
        self.report_period = 1.0 / report_hz
        self.settle_s = settle_s
        self.robotiq = robotiq or FakeRobotiq()
        self.arm = FakeArmState(position=list(start_xyz_mm), quat=quat_from_rpy(*map(math.radians, start_rpy_deg)))
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.targets: list[Target] = []
        self.ignored_motion = 0
        self.unhandled: list[int] = []
        self._last_change = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._control = self._listen(control_port)
        self.port = self._control.getsockname()[1]
        self._report = self._listen(REPORT_PORT)

    # -- sockets ---------------------------------------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
        except PermissionError:  # port 502 needs root or CAP_NET_BIND_SERVICE: take any port, the test patches
            sock.bind((self.host, 0))
        sock.listen(4)
        sock.settimeout(0.2)
        return sock

    def __enter__(self) -> FakeXArmController:
        for target in (self._accept_control, self._accept_report, self._physics):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(2.0)
        self._control.close()
        self._report.close()

    def drop_connections(self) -> None:
        """Close every client connection (a pulled network cable, as the SDK sees it)."""
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket, serve) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            thread = threading.Thread(target=serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _accept_control(self) -> None:
        self._accept(self._control, self._serve_control)

    def _accept_report(self) -> None:
        self._accept(self._report, self._serve_report)

    def _serve_report(self, conn: socket.socket) -> None:
        try:
            while not self._stop.wait(self.report_period):
                conn.sendall(self._report_packet())
        except OSError:
            pass

    def _serve_control(self, conn: socket.socket) -> None:
        buffer = b""
        conn.settimeout(0.2)
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                buffer += data
                while len(buffer) >= 6:
                    length = struct.unpack(">H", buffer[4:6])[0] + 6
                    if len(buffer) < length:
                        break
                    frame, buffer = buffer[:length], buffer[length:]
                    for reply in self._handle(frame):
                        conn.sendall(reply)
        except OSError:
            pass

    # -- commands --------------------------------------------------------------------------------------------

    def _status_byte(self) -> int:
        a = self.arm
        flags = 0x40 if a.error else 0
        flags |= 0x20 if a.warn else 0
        flags |= 0x10 if (a.state >= 4 or not a.enabled or a.error) else 0
        return flags

    def _handle(self, frame: bytes) -> list[bytes]:
        trans, prot, _length, register = struct.unpack(">HHHB", frame[:7])
        payload = frame[7:]
        with self.lock:
            self.calls.append(Call(time.monotonic(), register, payload, self.arm.mode, self.arm.state))
            handler = getattr(self, f"_r{register}", None)
            if handler is None:
                self.unhandled.append(register)
                data, status = b"", 0x08
            else:
                data, status = handler(payload), None
            if status is None:
                status = self._status_byte()
        reply = struct.pack(">HHHBB", trans, prot, len(data) + 2, register, status) + data
        replies = [reply]
        if register == 253:  # FEEDBACK_CHECK: report "all motion finished" right away when idle
            replies.append(struct.pack(">HHHB", trans, prot, 7, 0xFF) + bytes([253, 2, 0, 0, 0, 0]))
        return replies

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

    # -- kinematics and reports ------------------------------------------------------------------------------

    def _pose(self) -> list[float]:
        return [*self.arm.position, *quat_to_rpy(self.arm.quat)]

    def _reported_state(self) -> int:
        a = self.arm
        if a.state < 3 and time.monotonic() < a.busy_until:
            return 1
        return a.state

    def _report_packet(self) -> bytes:
        with self.lock:
            a = self.arm
            axis, angle = quat_axis_angle(a.quat)
            return encode_rich_report(ReportState(
                state=self._reported_state(), mode=a.mode, cmdnum=1 if a.target_quat is not None else 0,
                angles=[0.0] * 7, pose=self._pose(), enabled=a.enabled, error=a.error, warn=a.warn,
                tcp_offset=a.tcp_offset, tcp_load=a.tcp_load, collision_sensitivity=a.collision_sensitivity,
                version=f"v{self.firmware}", reduced_mode=a.reduced_mode, reduced_boundary=a.reduced_boundary,
                reduced_tcp_speed=a.reduced_tcp_speed, reduced_joint_speed=a.reduced_joint_speed,
                pose_aa=[v * angle for v in axis]))

    def _physics(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.005):
            now = time.monotonic()
            dt, last = now - last, now
            with self.lock:
                a = self.arm
                if a.target_quat is None or a.state not in (1, 2):
                    continue
                _, remaining = quat_axis_angle(quat_mul(quat_conj(a.quat), a.target_quat))
                a.quat = a.target_quat if remaining <= self.rot_speed * dt else \
                    quat_slerp(a.quat, a.target_quat, self.rot_speed * dt / remaining)
                delta = [t - p for t, p in zip(a.target_pos, a.position, strict=True)]
                dist = math.sqrt(sum(d * d for d in delta))
                step = min(dist, self.lin_speed * dt)
                a.position = [p + d * step / dist for p, d in zip(a.position, delta, strict=True)] if dist else \
                    a.position
                if a.quat == a.target_quat and step == dist:
                    a.target_pos = a.target_quat = None
                    a.state = 2

    # -- what tests inject and inspect -----------------------------------------------------------------------

    def inject_error(self, code: int, *, clearable: bool = True) -> None:
        """A controller error: the arm stops, drops to mode 0 and refuses motion until cleaned and re-enabled."""
        with self.lock:
            a = self.arm
            a.error, a.error_clearable = code, clearable
            a.state, a.mode, a.target_pos, a.target_quat = 4, 0, None, None

    def inject_warning(self, code: int) -> None:
        with self.lock:
            self.arm.warn = code

    def press_stop(self) -> None:
        """Someone pressed stop in xArm Studio: state 4 without an error code."""
        with self.lock:
            self.arm.state, self.arm.target_pos, self.arm.target_quat = 4, None, None

    def simulate_motion(self, seconds: float) -> None:
        """Report the arm as moving (state 1) in mode 0 for a while, as during a queued mode-0 trajectory."""
        with self.lock:
            self.arm.mode, self.arm.busy_until = 0, time.monotonic() + seconds

    def pose_deg(self) -> list[float]:
        with self.lock:
            return [*self.arm.position, *(math.degrees(v) for v in quat_to_rpy(self.arm.quat))]

    def registers_called(self) -> list[int]:
        with self.lock:
            return [c.register for c in self.calls]
