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
from dataclasses import dataclass

from tests.hardware.xarm.fake_robotiq import FakeRobotiq
from tests.hardware.xarm.fake_xarm_registers import ControllerRegisters, FakeArmState, Target
from tests.hardware.xarm.fake_xarm_report import (
    ReportState,
    encode_rich_report,
    quat_axis_angle,
    quat_conj,
    quat_from_rpy,
    quat_mul,
    quat_slerp,
)

REPORT_PORT = 30002


@dataclass
class Call:
    t: float
    register: int
    payload: bytes
    mode: int
    state: int


class FakeXArmController(ControllerRegisters):
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

    # -- kinematics and reports ------------------------------------------------------------------------------

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

    def registers_called(self) -> list[int]:
        with self.lock:
            return [c.register for c in self.calls]
