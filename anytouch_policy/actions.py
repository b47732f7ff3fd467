"""The pouring action vocabulary and the tool-frame rotation step each action commands."""

from __future__ import annotations

from enum import IntEnum

from anytouch_policy.errors import ConfigError

#: Default step of one action, degrees about the tool tilt axis (paper appendix A.8: delta_phi = 0.25 deg).
DEFAULT_DELTA_PHI_DEG = 0.25

#: Control rate of the policy and of teleoperation, Hz (paper appendix A.8).
CONTROL_RATE_HZ = 5.0


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
        if delta_phi_deg <= 0:
            raise ConfigError(f"delta_phi_deg must be > 0, got {delta_phi_deg}")
        return {Action.POUR: delta_phi_deg, Action.WAIT: 0.0, Action.RETRACT: -delta_phi_deg}[self]
