"""argparse types for numeric flags: NaN, inf and out-of-range values are refused while parsing, before any work.

    parser.add_argument("--lr", type=POSITIVE, default=1e-3)
    $ anytouch train ... --lr nan
    anytouch train: error: argument --lr: must be a finite number > 0, got 'nan'

argparse names the flag and exits with status 2. Cross-flag rules (target below initial mass, ...) stay with the
library function that receives them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(kind: type[int] | type[float], *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> Callable[[str], int | float]:
    """A `type=` callable: `kind(text)`, finite, within [low, high] (open ends where asked)."""
    parts = []
    if low is not None and high is not None:
        parts.append(f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")
    elif low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    elif high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    noun = "an integer" if kind is int else "a finite number"
    wanted = " ".join([noun, *parts])

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted  # argparse's usage errors quote a type's name
    return parse


def number_range(one: Callable[[str], float]) -> Callable[[str], tuple[float, float]]:
    """A `type=` callable for "A" (the range [A, A]) or "A:B" with A <= B, each end parsed and checked by `one`."""
    wanted = f"A or A:B with A <= B, each {one.__name__}"

    def parse(text: str) -> tuple[float, float]:
        parts = text.split(":")
        if len(parts) > 2:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        lo, hi = one(parts[0]), one(parts[-1])
        if lo > hi:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r} (low end above high end)")
        return float(lo), float(hi)

    parse.__name__ = wanted
    return parse


POSITIVE_INT = number(int, low=1)
NONNEGATIVE_INT = number(int, low=0)
POSITIVE = number(float, low=0, low_open=True)  # > 0, finite
NONNEGATIVE = number(float, low=0)
PROBABILITY = number(float, low=0, high=1)  # [0, 1]
FRACTION = number(float, low=0, high=1, low_open=True, high_open=True)  # (0, 1)
DROPOUT = number(float, low=0, high=1, high_open=True)  # [0, 1)
LEARNING_RATE = number(float, low=0, high=1, low_open=True)  # AdamW steps of ~lr: above 1 only destroys weights
GRAMS = POSITIVE  # a bead mass; the rig and the policy check the range and initial > target
GRAMS_RANGE = number_range(GRAMS)  # masses drawn per episode (sim record): "100" or "80:120"
TILT_DEG = number(float, low=0, high=180)  # tilt from upright


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    """--workers: closed-loop evaluation episodes run in this many processes at once (eval.rollout.EpisodePool)."""
    parser.add_argument("--workers", type=POSITIVE_INT, default=None,
                        help="processes running evaluation episodes at once, one torch thread each; the results do "
                             "not depend on it (default: one per CPU)")
