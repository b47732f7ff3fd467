"""A Robotiq 2F-140 register model behind the stand-in controller's tool RS-485 (Modbus RTU slave 9).

Output registers at 0x03E8: byte 0 = action request (rACT bit 0, rGTO bit 3), byte 3 = position request,
byte 4 = speed, byte 5 = force. Input registers at 0x07D0: byte 0 = gripper status (gACT bit 0, gGTO bit 3,
gSTA bits 4-5, gOBJ bits 6-7), byte 2 = fault (gFLT), byte 3 = position echo, byte 4 = position, byte 5 = current.
Time advances lazily: each request first brings the model up to now.
"""

from __future__ import annotations

import struct
import threading
import time

SLAVE_ID = 0x09
WRITE_ADDR = 0x03E8
READ_ADDR = 0x07D0


class FakeRobotiq:
    """Activation takes `activation_s`; fingers move at a rate set by the speed request and stop on an object."""

    def __init__(self, *, activation_s: float = 0.2, never_activates: bool = False, activation_fault: int = 0,
                 object_at: int | None = None) -> None:
        self.activation_s = activation_s
        self.never_activates = never_activates  # stays in gSTA=1 forever (pyRobotiqGripper#3 symptom)
        self.activation_fault = activation_fault  # gFLT raised instead of finishing activation (e.g. 0x0D)
        self.object_at = object_at  # closing stops here with gOBJ=2 (an object between the fingers)
        self.requests: list[tuple[float, bytes]] = []  # (time, raw modbus request) for the tests
        self._lock = threading.Lock()
        self._t = time.monotonic()
        self._act = self._gto = False
        self._sta = 0
        self._fault = 0
        self._activation_start = 0.0
        self._pr = self._sp = self._fr = 0
        self._po = 0.0
        self._obj = 0

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._t = now - self._t, now
        if self._act and self._sta == 1 and now - self._activation_start >= self.activation_s:
            if self.activation_fault:
                self._fault = self.activation_fault
            elif not self.never_activates:
                self._sta = 3
        if self._sta == 3 and self._gto and self._obj == 0:
            rate = 100.0 + 400.0 * self._sp / 255.0  # register units per second
            step = rate * dt
            target = float(self._pr)
            if self.object_at is not None and self._pr > self._po:
                target = min(target, float(self.object_at))
            if abs(target - self._po) <= step:
                self._po = target
                self._obj = 2 if target < self._pr else 3
            else:
                self._po += step if target > self._po else -step

    def handle(self, frame: bytes) -> bytes:
        """A Modbus RTU request without CRC -> the response without CRC."""
        with self._lock:
            self._advance()
            self.requests.append((time.monotonic(), bytes(frame)))
            slave, function = frame[0], frame[1]
            if slave != SLAVE_ID:
                return bytes([slave, function | 0x80, 0x0B])  # gateway target failed to respond
            if function == 0x10:
                addr, count, nbytes = struct.unpack(">HHB", frame[2:7])
                data = frame[7:7 + nbytes]
                if addr != WRITE_ADDR or len(data) != 6:
                    return bytes([slave, 0x90, 0x02])
                self._write(data)
                return bytes([slave, 0x10]) + struct.pack(">HH", addr, count)
            if function == 0x03:
                addr, count = struct.unpack(">HH", frame[2:6])
                if addr != READ_ADDR or not 1 <= count <= 3:
                    return bytes([slave, 0x83, 0x02])
                regs = self._input_bytes()[: 2 * count]
                return bytes([slave, 0x03, len(regs)]) + regs
            return bytes([slave, function | 0x80, 0x01])

    def _write(self, data: bytes) -> None:
        action = data[0]
        act, gto = bool(action & 0x01), bool(action & 0x08)
        if not act:
            self._act = self._gto = False
            self._sta, self._fault, self._obj = 0, 0, 0
            return
        if not self._act:
            self._act, self._sta, self._activation_start, self._fault = True, 1, time.monotonic(), 0
        self._pr, self._sp, self._fr = data[3], data[4], data[5]
        if gto:
            if self._sta != 3:
                self._fault = 0x05 if self._sta == 1 else 0x07
                return
            self._gto, self._obj = True, 0
        else:
            self._gto = False

    def _input_bytes(self) -> bytes:
        status = int(self._act) | (int(self._gto) << 3) | (self._sta << 4) | (self._obj << 6)
        current = 30 if self._obj == 2 else 0
        return bytes([status, 0, self._fault, self._pr, int(round(self._po)), current])
