"""Bounds applied to every arm command before any backend sees it (the arm node runs this for sim and hardware).

A command is clamped to the step limit, to what the tilt range still allows, and to a rate budget that refills at
`max_rate_deg_s` and never holds more than one step, so a runaway publisher cannot turn many small steps into a
fast motion, not even after a long silence. A non-finite request or tilt is refused (ConfigError) before it touches
the budget or the heartbeat. Silence longer than `command_timeout_s` means hold. The limits themselves were checked
when the ArmLimits was built (finite, inside LIMIT_RANGES); how far the backend's target may lead the measured tilt
is the backend's part (ArmLimits.target_step), since only it knows its target.
"""

from __future__ import annotations

from anytouch_policy.bounds import require_finite
from anytouch_policy.hardware.base import ArmLimits


class TiltCommandFilter:
    """Clamps tilt steps and tracks command freshness; pure logic, time is passed in (seconds, monotonic)."""

    def __init__(self, limits: ArmLimits) -> None:
        self.limits = limits
        self._budget = limits.max_step_deg
        self._last_refill: float | None = None
        self.last_command_s: float | None = None
        self.clamped = 0  # commands reduced by any limit, for diagnostics

    def _refill(self, now_s: float) -> None:
        if self._last_refill is not None:
            gained = max(0.0, now_s - self._last_refill) * self.limits.max_rate_deg_s
            self._budget = min(self.limits.max_step_deg, self._budget + gained)
        self._last_refill = now_s

    def filter(self, delta_deg: float, current_tilt_deg: float, now_s: float) -> float:
        """The step allowed now for a requested `delta_deg` (same sign, never larger); ConfigError, with nothing
        changed, when any argument is not finite."""
        for name, value in (("tilt step", delta_deg), ("measured tilt", current_tilt_deg), ("time", now_s)):
            require_finite(name, value)
        self._refill(now_s)
        self.last_command_s = now_s
        lim = self.limits
        allowed = max(-lim.max_step_deg, min(lim.max_step_deg, delta_deg))
        # The range only stops motion outward: from outside it, a step back towards it is still allowed.
        allowed = min(allowed, max(0.0, lim.max_tilt_deg - current_tilt_deg))
        allowed = max(allowed, min(0.0, lim.min_tilt_deg - current_tilt_deg))
        allowed = max(-self._budget, min(self._budget, allowed))
        self._budget -= abs(allowed)
        if abs(allowed - delta_deg) > 1e-12:
            self.clamped += 1
        return allowed

    def timed_out(self, now_s: float) -> bool:
        """True when no command arrived for command_timeout_s (or none ever arrived)."""
        return self.last_command_s is None or now_s - self.last_command_s > self.limits.command_timeout_s
