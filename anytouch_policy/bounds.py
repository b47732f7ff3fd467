"""Physical ranges that parameters, config fields and flags must lie in: NaN and infinities never pass, and a range
prints the way the docs write it. One Interval serves all three:

    STEP = Interval.parse("(0, 5]")
    STEP.check("max_step_deg", 0.5)              # 0.5; ConfigError "max_step_deg must be in (0, 5], got nan" for nan
    max_step_deg: Annotated[float, STEP] = 0.5   # a config field (anytouch_policy.schema): decoding checks it
    node.param("max_step_deg", 0.5, "...", within=STEP)      # a ROS parameter (anytouch_ros.base)
    Flags(ArmLimits, "max_step_deg")             # a command-line flag (anytouch_policy.cli.args)

Comparisons with NaN are all False, so a bare `value <= 0` check lets NaN through; `value in interval` does not.
An end may be infinite ("[1, inf)": at least 1); the values themselves are always finite.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from pydantic_core import core_schema

from anytouch_policy.errors import ConfigError

_NOTATION = re.compile(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^\]\)\s]+)\s*([\])])\s*")


def _text(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float (not a bool) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Interval:
    """An interval of the real line, each end closed or open; an infinite end is open."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self) -> None:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v)
                      for v in (self.low, self.high))
        if not (numbers and self.low <= self.high and self.low < math.inf and self.high > -math.inf):
            raise ValueError(f"an interval needs ends low <= high, got {self.low}, {self.high}")
        if (math.isinf(self.low) and not self.low_open) or (math.isinf(self.high) and not self.high_open):
            raise ValueError(f"an infinite end is open: {self}")

    @classmethod
    def parse(cls, text: str) -> Interval:
        """From the notation of the docs: "[0, 180]", "(0, 5]", "[60, 1000)", "[1, inf)"."""
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

    @property
    def phrase(self) -> str:
        """How a message states the range: "in (0, 5]", ">= 1", "< 10", or "" (any finite number)."""
        low, high = math.isfinite(self.low), math.isfinite(self.high)
        if low and high:
            return f"in {self}"
        if low:
            return f"{'>' if self.low_open else '>='} {_text(self.low)}"
        if high:
            return f"{'<' if self.high_open else '<='} {_text(self.high)}"
        return ""

    def check(self, name: str, value: float) -> float:
        """`value` when it lies in the interval, else ConfigError naming `name`, the interval and the value."""
        if value not in self:
            raise ConfigError(f"{name} must be {self.phrase or 'a finite number'}, got {value!r}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        """As the metadata of `Annotated[int | float, interval]`: a strict number (no bool, no string) in range."""
        number: core_schema.CoreSchema
        if source is int:
            number = core_schema.int_schema(strict=True)
        elif source is float:
            number = core_schema.float_schema(strict=True, allow_inf_nan=True)  # NaN gets the range's message
        else:
            raise TypeError(f"an Interval annotates an int or a float, not {source!r}")

        def inside(value: float) -> float:
            if value not in self:
                raise ValueError(f"must be {self.phrase or 'a finite number'}, got {value!r}")
            return value

        return core_schema.no_info_after_validator_function(inside, number)


def require_finite(name: str, value: float) -> float:
    """`value` as a float when it is a finite number, else ConfigError naming it."""
    if not is_number(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


#: Ranges shared by config fields, node parameters and flags (a node's own ranges are written next to its parameters).
ANY = Interval.parse("(-inf, inf)")  # any finite number
AT_LEAST_1 = Interval.parse("[1, inf)")  # counts, sizes, epochs, threads
NONNEGATIVE = Interval.parse("[0, inf)")
POSITIVE = Interval.parse("(0, inf)")
PROBABILITY = Interval.parse("[0, 1]")
FRACTION = Interval.parse("(0, 1)")
DROPOUT = Interval.parse("[0, 1)")
LEARNING_RATE = Interval.parse("(0, 1]")  # AdamW moves every weight by about lr a step: above 1 only destroys weights
MASS_G = Interval.parse("(0, 1000]")  # beads in or out of the cylinder, g (the simulated one holds ~420 g)
TILT_DEG = Interval.parse("[0, 180]")  # tilt from upright
DIAGNOSTICS_PERIOD_S = Interval.parse("[0.05, 60]")  # /diagnostics period: 20 Hz at most, once a minute at least
EVENT_AGE_S = Interval.parse("(0, 3600]")  # a latched episode event older than this is history
