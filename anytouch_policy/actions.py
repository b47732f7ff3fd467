"""The pouring action vocabulary and the tool-frame rotation step each action commands."""

from __future__ import annotations

from enum import IntEnum

from anytouch_policy.bounds import Interval
from anytouch_policy.errors import ConfigError

#: Default step of one action, degrees about the tool tilt axis (paper appendix A.8: delta_phi = 0.25 deg).
DEFAULT_DELTA_PHI_DEG = 0.25
#: Physical range of delta_phi, deg: a step above 5 deg is no longer a small correction (the largest
#: ArmLimits.max_step_deg, which would clamp it anyway).
DELTA_PHI_RANGE = Interval.parse("(0, 5]")

#: Control rate of the policy and of teleoperation, Hz (paper appendix A.8).
CONTROL_RATE_HZ = 5.0
#: Physical range of a control rate, Hz: the method runs at 5 Hz; below 1 Hz the arm's command watchdog (at most
#: 5 s) would hold between ticks, above 50 Hz a 3-frame tactile window (25-60 Hz cameras) has nothing new to say.
CONTROL_RATE_RANGE = Interval.parse("[1, 50]")


class Action(IntEnum):
    """Policy classes; the integer is the class index of the policy head's logits."""

    POUR = 0
    WAIT = 1
    RETRACT = 2

    @property
    def label(self) -> str:
        """The string published on /pour/action and stored in bags."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Action:
        """Parse "pour" | "wait" | "retract"; the error lists the valid labels."""
        try:
            return cls[label.strip().upper()]
        except KeyError:
            valid = ", ".join(a.label for a in cls)
            raise ConfigError(f"unknown action {label!r}; valid actions: {valid}") from None

    def tilt_step_deg(self, delta_phi_deg: float = DEFAULT_DELTA_PHI_DEG) -> float:
        """Signed rotation about the tool tilt axis: pour tilts further (+), retract tilts back (-), wait holds."""
        DELTA_PHI_RANGE.check("delta_phi_deg", delta_phi_deg)  # NaN would publish a NaN rotation
        return {Action.POUR: delta_phi_deg, Action.WAIT: 0.0, Action.RETRACT: -delta_phi_deg}[self]
