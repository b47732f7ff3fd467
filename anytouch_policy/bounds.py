"""Physical ranges that parameters and limits must lie in: NaN and infinities never pass, and a range prints the
way the docs write it.

    STEP = Interval.parse("(0, 5]")
    STEP.check("max_step_deg", 0.5)        # 0.5; ConfigError "max_step_deg must be in (0, 5], got nan" for nan

Comparisons with NaN are all False, so a bare `value <= 0` check lets NaN through; `value in interval` does not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from anytouch_policy.errors import ConfigError

_NOTATION = re.compile(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^\]\)\s]+)\s*([\])])\s*")


def _text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def is_number(value: object) -> bool:
    """An int or float (not a bool) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Interval:
    """A finite interval of the real line, each end closed or open."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self) -> None:
        if not (is_number(self.low) and is_number(self.high) and self.low <= self.high):
            raise ValueError(f"an interval needs finite ends low <= high, got {self.low}, {self.high}")

    @classmethod
    def parse(cls, text: str) -> Interval:
        """From the notation of the docs: "[0, 180]", "(0, 5]", "[60, 1000)"."""
        m = _NOTATION.fullmatch(text)
        if m is None:
            raise ValueError(f"not an interval: {text!r} (write e.g. '(0, 5]')")
        return cls(float(m[2]), float(m[3]), low_open=m[1] == "(", high_open=m[4] == ")")

    def __contains__(self, value: object) -> bool:
        if not is_number(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        return (f"{'(' if self.low_open else '['}{_text(self.low)}, {_text(self.high)}"
                f"{')' if self.high_open else ']'}")

    def check(self, name: str, value: float) -> float:
        """`value` when it lies in the interval, else ConfigError naming `name`, the interval and the value."""
        if value not in self:
            raise ConfigError(f"{name} must be in {self}, got {value!r}")
        return value


def require_finite(name: str, value: float) -> float:
    """`value` as a float when it is a finite number, else ConfigError naming it."""
    if not is_number(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


#: Ranges shared by the parameters of several nodes (a node's own ranges are written next to its parameters).
MASS_G = Interval.parse("(0, 1000]")  # beads in or out of the cylinder, g (the simulated one holds ~420 g)
DIAGNOSTICS_PERIOD_S = Interval.parse("[0.05, 60]")  # /diagnostics period: 20 Hz at most, once a minute at least
EVENT_AGE_S = Interval.parse("(0, 3600]")  # a latched episode event older than this is history
