"""Parameters of the simulated rig, their randomisation ranges, and the seeds of episodes.

Everything random in an episode comes from one integer episode seed through numpy SeedSequence streams, so an
episode is reproduced from (config, seed) alone. Training and evaluation seeds live in disjoint ranges
(`episode_seed`), so a policy is never evaluated on an episode it was trained on.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from anytouch_policy.actions import CONTROL_RATE_HZ, DEFAULT_DELTA_PHI_DEG
from anytouch_policy.bounds import AT_LEAST_1, NONNEGATIVE, POSITIVE, TILT_DEG, Interval
from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import ArmLimits
from anytouch_policy.schema import config

Positive = Annotated[float, POSITIVE]
NonNegative = Annotated[float, NONNEGATIVE]


class SeedSplit(IntEnum):
    """Which seed range an episode comes from."""

    TRAIN = 0
    EVAL = 1


#: The task of the paper's table 4: pour 60 g of the 100 g in the cylinder (the default of every run).
INITIAL_G = 100.0
TARGET_G = 60.0
#: Ticks after which an episode is given up (40 s at 5 Hz; the expert needs at most about 115).
MAX_TICKS = 200

#: Episodes per base seed, and the first evaluation episode seed (training seeds stay below it).
EPISODES_PER_SEED = 10_000
EVAL_SEED_BASE = 1_000_000_000


def episode_seed(split: SeedSplit, seed: int, index: int) -> int:
    """Episode seed of episode `index` of run `seed`: TRAIN in [0, 1e9), EVAL in [1e9, 2e9)."""
    if not 0 <= seed < EVAL_SEED_BASE // EPISODES_PER_SEED:
        raise ConfigError(f"seed must be in [0, {EVAL_SEED_BASE // EPISODES_PER_SEED}), got {seed}")
    if not 0 <= index < EPISODES_PER_SEED:
        raise ConfigError(f"episode index must be in [0, {EPISODES_PER_SEED}), got {index}")
    return int(split) * EVAL_SEED_BASE + seed * EPISODES_PER_SEED + index


class Stream(IntEnum):
    """Independent random streams drawn from one episode seed."""

    EPISODE = 0  # physical nuisances of the episode
    FLOW = 1  # granular flow fluctuation
    EXPERT = 2  # the scripted expert's delay and noise
    SENSOR = 100  # + sensor index: appearance nuisances and per-frame noise of each sensor


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


@config
class PhysicsParams:
    """Beads, cylinder and flow; with the defaults the expert pours 60 g of 100 g in about 70-110 control ticks."""

    bulk_density_g_cm3: Positive = 0.70  # small plastic beads, bulk (with voids)
    cylinder_radius_mm: Positive = 40.0  # inner radius
    cylinder_height_mm: Positive = 120.0  # inner height, bottom to lip
    repose_angle_deg: Annotated[float, Interval.parse("[0, 60)")] = 25.0  # beads avalanche toward the lip once the
    #   surface is steeper than this
    flow_coeff_g_s: Positive = 1.5  # outflow at 1 deg beyond the critical tilt
    flow_exponent: Positive = 1.5  # outflow grows as (tilt beyond critical) ** exponent
    stream_lag_s: NonNegative = 0.5  # the stream follows the tilt with this time constant (0 = at once)
    flow_noise: NonNegative = 0.2  # log-normal spread of the granular outflow (0 = steady)
    flow_noise_tau_s: Positive = 0.15  # correlation time of that fluctuation
    fall_time_s: NonNegative = 0.30  # lip to scale
    dt_s: Positive = 0.005  # physics step (200 Hz)

    @property
    def capacity_g(self) -> float:
        return self.bulk_density_g_cm3 * math.pi * self.cylinder_radius_mm**2 * self.cylinder_height_mm / 1000.0


@config
class Randomization:
    """Per-episode nuisance ranges (uniform). Relative spreads are +/- fractions of the nominal value."""

    density_rel: float = 0.04
    repose_deg: float = 0.8
    flow_coeff_rel: float = 0.25
    fall_time_s: tuple[float, float] = (0.25, 0.35)
    tare_g: tuple[float, float] = (86.0, 94.0)  # the same cylinder, give or take residue
    grasp_height_mm: tuple[float, float] = (45.0, 65.0)  # grasp point above the cylinder bottom
    grip_scale: tuple[float, float] = (0.9, 1.1)  # actual / commanded grip force
    pre_pour_margin_deg: tuple[float, float] = (1.0, 2.0)  # start this far below the critical tilt


@config
class RigConfig:
    """What a user chooses for a run of episodes; `sim.episode.sample_episode` turns it into one episode."""

    initial_g: Positive = INITIAL_G  # below the cylinder's capacity
    physics: PhysicsParams = Field(default_factory=PhysicsParams)
    randomize: bool = True
    ranges: Randomization = Field(default_factory=Randomization)
    initial_tilt_deg: Annotated[float, TILT_DEG] | None = None  # None: the critical tilt of the initial fill minus
    #   the pre-pour margin
    delta_phi_deg: Positive = DEFAULT_DELTA_PHI_DEG
    tick_s: Positive = 1.0 / CONTROL_RATE_HZ
    max_ticks: Annotated[int, AT_LEAST_1] = MAX_TICKS
    end_margin_deg: Positive = 1.5  # done once retracted this far below the critical tilt, flow stopped, all landed
    grasp_force: Annotated[int, Interval.parse("[0, 255]")] = 128  # Robotiq force register used for the grasp
    limits: ArmLimits = Field(default_factory=ArmLimits)

    @model_validator(mode="after")
    def _fits(self) -> RigConfig:
        if not self.initial_g < self.physics.capacity_g:
            raise ValueError(f"initial_g must be below {self.physics.capacity_g:.0f} g, what the simulated cylinder "
                             f"holds, got {self.initial_g}")
        steps = self.tick_s / self.physics.dt_s
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"tick_s ({self.tick_s}) must be a whole number of physics steps ({self.physics.dt_s})")
        return self

    @property
    def steps_per_tick(self) -> int:
        return round(self.tick_s / self.physics.dt_s)
