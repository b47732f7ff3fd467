"""Tilt of the held cylinder about the tool axis: bounded steps toward a target, followed at a bounded rate.

A command moves the target by a step (clamped to the arm limits, and never more than one step ahead of the
wrist); the wrist then turns toward it at a constant speed, by default one step per control tick, so a run of pour
commands turns the cylinder smoothly and a `wait` stops it within one step. No command for
`command_timeout_s` freezes the target where the wrist is (the real arm node's watchdog does the same).
"""

from __future__ import annotations

from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import ArmLimits


class TiltDrive:
    """Rate-limited tilt following a clamped target, on the caller's clock (ns)."""

    def __init__(self, tilt_deg: float, *, limits: ArmLimits, rate_deg_s: float) -> None:
        if not limits.min_tilt_deg <= tilt_deg <= limits.max_tilt_deg:
            raise ConfigError(f"start tilt {tilt_deg:.2f} deg outside limits [{limits.min_tilt_deg}, "
                              f"{limits.max_tilt_deg}]")
        if rate_deg_s <= 0:
            raise ConfigError(f"tilt rate must be > 0, got {rate_deg_s}")
        self.limits = limits
        self.rate_deg_s = min(rate_deg_s, limits.max_rate_deg_s)
        self.tilt_deg = float(tilt_deg)
        self.target_deg = float(tilt_deg)
        self.rate_now_deg_s = 0.0
        self.holding = False
        self._last_command_ns: int | None = None

    def command(self, delta_deg: float, now_ns: int) -> float:
        """Move the target by `delta_deg`, clamped by ArmLimits.target_step (max_step, the tilt range, at most one
        step ahead of the wrist); returns the change applied. ConfigError for a non-finite delta."""
        applied = self.limits.target_step(delta_deg, target_deg=self.target_deg, measured_deg=self.tilt_deg)
        self.target_deg += applied
        self._last_command_ns = now_ns
        self.holding = False
        return applied

    def hold(self) -> None:
        """Stop where the wrist is now."""
        self.target_deg = self.tilt_deg
        self.holding = True

    def advance(self, dt_s: float, now_ns: int) -> None:
        """Move toward the target for `dt_s` ending at `now_ns`, after applying the command watchdog."""
        last = self._last_command_ns
        if last is not None and now_ns - last > self.limits.command_timeout_s * 1e9 and self.moving:
            self.hold()
        gap = self.target_deg - self.tilt_deg
        reach = self.rate_deg_s * dt_s
        move = gap if abs(gap) <= reach + 1e-12 else (reach if gap > 0 else -reach)
        self.tilt_deg += move
        self.rate_now_deg_s = move / dt_s

    @property
    def moving(self) -> bool:
        return self.tilt_deg != self.target_deg
