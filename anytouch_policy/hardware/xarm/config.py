"""Configuration of the xArm 6 backend: where the controller is, the tilt axis, and the controller-side safety."""

from __future__ import annotations

from dataclasses import dataclass

from anytouch_policy.bounds import is_number
from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.xarm.tool_rotation import ToolAxis

#: Mode 7 (online Cartesian replanning) needs controller firmware 1.11.0 or newer (xArm-Python-SDK#40).
MIN_FIRMWARE = (1, 11, 0)

#: Mode/state changes closer together than this are silently ignored by the controller (xArm-Python-SDK#59).
MIN_SETTLE_S = 0.1


@dataclass(frozen=True)
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
    tcp_speed_mm_s: float = 50.0  # speed given with every target; mode 7 replans towards the new target at it
    tcp_acc_mm_s2: float = 500.0  # acceleration given with every target
    tcp_max_acc_mm_s2: float = 2000.0  # controller-wide TCP acceleration cap (set_tcp_maxacc; 50000 is the max)
    collision_sensitivity: int = 3  # 1 (least) .. 5 (most sensitive); 0 would switch collision detection off
    reduced_max_tcp_speed_mm_s: float = 100.0  # reduced-mode TCP speed cap, enforced by the controller
    reduced_max_joint_speed_deg_s: float = 20.0  # reduced-mode joint speed cap: bounds the rotation speed too
    settle_s: float = 0.2  # sleep after every mode/state change (>= 0.1 s, xArm-Python-SDK#59)
    max_off_axis_deg: float = 2.0  # recover() refuses a pose rotated off the tilt axis by more than this

    def __post_init__(self) -> None:
        if not self.ip:
            raise ConfigError("xarm ip is required (the controller's LAN address, e.g. 192.168.1.200)")
        if len(self.workspace_mm) != 6:
            raise ConfigError(f"workspace_mm needs 6 values (x_max, x_min, y_max, y_min, z_max, z_min), "
                              f"got {len(self.workspace_mm)}")
        for axis, (hi, lo) in zip("xyz", (self.workspace_mm[0:2], self.workspace_mm[2:4], self.workspace_mm[4:6]),
                                  strict=True):
            if hi <= lo:
                raise ConfigError(f"workspace_mm: {axis}_max ({hi}) must be greater than {axis}_min ({lo})")
        if self.tcp_offset is not None and len(self.tcp_offset) != 6:
            raise ConfigError(f"tcp_offset needs 6 values (x, y, z mm, roll, pitch, yaw deg), got {self.tcp_offset}")
        if self.tcp_load is not None and (len(self.tcp_load) != 4 or self.tcp_load[0] < 0):
            raise ConfigError(f"tcp_load needs (mass kg >= 0, cx, cy, cz mm), got {self.tcp_load}")
        if not 1 <= self.collision_sensitivity <= 5:
            raise ConfigError(f"collision_sensitivity must be 1..5 (0 disables detection), got "
                              f"{self.collision_sensitivity}")
        if self.settle_s < MIN_SETTLE_S:
            raise ConfigError(f"settle_s must be >= {MIN_SETTLE_S} (commands right after a mode change are "
                              f"ignored, xArm-Python-SDK#59), got {self.settle_s}")
        for field in ("tcp_speed_mm_s", "tcp_acc_mm_s2", "tcp_max_acc_mm_s2", "reduced_max_tcp_speed_mm_s",
                      "reduced_max_joint_speed_deg_s", "max_off_axis_deg"):
            if not (is_number(getattr(self, field)) and getattr(self, field) > 0):
                raise ConfigError(f"{field} must be a finite number > 0, got {getattr(self, field)}")
        if self.tcp_speed_mm_s > self.reduced_max_tcp_speed_mm_s:
            raise ConfigError(f"tcp_speed_mm_s ({self.tcp_speed_mm_s}) exceeds reduced_max_tcp_speed_mm_s "
                              f"({self.reduced_max_tcp_speed_mm_s})")

    def contains(self, xyz: tuple[float, float, float] | list[float]) -> bool:
        """Whether a TCP position (mm) lies inside the workspace box."""
        w = self.workspace_mm
        return w[1] <= xyz[0] <= w[0] and w[3] <= xyz[1] <= w[2] and w[5] <= xyz[2] <= w[4]
