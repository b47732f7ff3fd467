"""Configuration of the xArm 6 backend: where the controller is, the tilt axis, and the controller-side safety."""

from __future__ import annotations

from typing import Annotated

from pydantic import field_validator, model_validator

from anytouch_policy.bounds import POSITIVE, Interval
from anytouch_policy.hardware.xarm.tool_rotation import ToolAxis
from anytouch_policy.schema import config

#: Mode 7 (online Cartesian replanning) needs controller firmware 1.11.0 or newer (xArm-Python-SDK#40).
MIN_FIRMWARE = (1, 11, 0)

#: Mode/state changes closer together than this are silently ignored by the controller (xArm-Python-SDK#59).
MIN_SETTLE_S = 0.1

Positive = Annotated[float, POSITIVE]


@config
class XArmConfig:
    """One xArm 6 controller. ip, workspace_mm and tilt_axis have no defaults: they depend on the rig."""

    ip: str  # controller LAN address (control port 502, report port 30002 are fixed by the SDK)
    workspace_mm: tuple[float, float, float, float, float, float]  # reduced-mode TCP box (x_max, x_min, y_max,
    #   y_min, z_max, z_min), mm, base frame; the controller stops the arm with C35 when the TCP leaves it
    tilt_axis: ToolAxis  # tool-frame axis the cylinder tilts about; + = pour. Calibrate with docs/hardware.md
    tcp_offset: tuple[float, float, float, float, float, float] | None = None  # TCP in the flange frame (mm, deg);
    #   the tilt pivots about it. None keeps the offset configured in xArm Studio
    tcp_load: tuple[float, float, float, float] | None = None  # payload (kg, centre of mass x, y, z mm) in the
    #   flange frame; wrong load trips collision detection (MS-Bot: 1.025 kg at (0, 0, 73))
    expected_axis: int = 6  # refuse a controller that reports another arm (a wrong IP must not move a robot)
    tcp_speed_mm_s: Positive = 50.0  # speed given with every target; mode 7 replans towards the new target at it
    tcp_acc_mm_s2: Positive = 500.0  # acceleration given with every target
    tcp_max_acc_mm_s2: Positive = 2000.0  # controller-wide TCP acceleration cap (set_tcp_maxacc; 50000 is the max)
    collision_sensitivity: Annotated[int, Interval.parse("[1, 5]")] = 3  # 1 (least) .. 5 (most sensitive); 0 would
    #   switch collision detection off
    reduced_max_tcp_speed_mm_s: Positive = 100.0  # reduced-mode TCP speed cap, enforced by the controller
    reduced_max_joint_speed_deg_s: Positive = 20.0  # reduced-mode joint speed cap: bounds the rotation speed too
    settle_s: Annotated[float, Interval.parse(f"[{MIN_SETTLE_S}, inf)")] = 0.2  # sleep after every mode/state
    #   change (commands right after a mode change are ignored, xArm-Python-SDK#59)
    max_off_axis_deg: Positive = 2.0  # recover() refuses a pose rotated off the tilt axis by more than this

    @field_validator("ip")
    @classmethod
    def _ip_given(cls, value: str) -> str:
        if not value:
            raise ValueError("is required (the controller's LAN address, e.g. 192.168.1.200)")
        return value

    @field_validator("tcp_load")
    @classmethod
    def _mass(cls, value: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if value is not None and value[0] < 0:
            raise ValueError(f"needs (mass kg >= 0, cx, cy, cz mm), got {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> XArmConfig:
        w = self.workspace_mm
        for axis, (hi, lo) in zip("xyz", (w[0:2], w[2:4], w[4:6]), strict=True):
            if hi <= lo:
                raise ValueError(f"workspace_mm: {axis}_max ({hi}) must be greater than {axis}_min ({lo})")
        if self.tcp_speed_mm_s > self.reduced_max_tcp_speed_mm_s:
            raise ValueError(f"tcp_speed_mm_s ({self.tcp_speed_mm_s}) exceeds reduced_max_tcp_speed_mm_s "
                             f"({self.reduced_max_tcp_speed_mm_s})")
        return self

    def contains(self, xyz: tuple[float, float, float] | list[float]) -> bool:
        """Whether a TCP position (mm) lies inside the workspace box."""
        w = self.workspace_mm
        return w[1] <= xyz[0] <= w[0] and w[3] <= xyz[1] <= w[2] and w[5] <= xyz[2] <= w[4]
