"""Parameters of the simulated rig, their randomisation ranges, and the seeds of episodes.

Everything random in an episode comes from one integer episode seed through numpy SeedSequence streams, so an
episode is reproduced from (config, seed) alone. Training and evaluation seeds live in disjoint ranges
(`episode_seed`), so a policy is never evaluated on an episode it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from anytouch_policy.actions import CONTROL_RATE_HZ, DEFAULT_DELTA_PHI_DEG
from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import ArmLimits


class SeedSplit(IntEnum):
    """Which seed range an episode comes from."""

    TRAIN = 0
    EVAL = 1


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


@dataclass(frozen=True)
class PhysicsParams:
    """Beads, cylinder and flow; with the defaults the expert pours 60 g of 100 g in about 70-110 control ticks."""

    bulk_density_g_cm3: float = 0.70  # small plastic beads, bulk (with voids)
    cylinder_radius_mm: float = 40.0  # inner radius
    cylinder_height_mm: float = 120.0  # inner height, bottom to lip
    repose_angle_deg: float = 25.0  # beads avalanche toward the lip once the surface is steeper than this
    flow_coeff_g_s: float = 1.5  # outflow at 1 deg beyond the critical tilt
    flow_exponent: float = 1.5  # outflow grows as (tilt beyond critical) ** exponent
    stream_lag_s: float = 0.5  # the stream follows the tilt with this time constant (0 = at once)
    flow_noise: float = 0.2  # log-normal spread of the granular outflow (0 = steady)
    flow_noise_tau_s: float = 0.15  # correlation time of that fluctuation
    fall_time_s: float = 0.30  # lip to scale
    dt_s: float = 0.005  # physics step (200 Hz)

    def __post_init__(self) -> None:
        positive = ("bulk_density_g_cm3", "cylinder_radius_mm", "cylinder_height_mm", "flow_coeff_g_s",
                    "flow_exponent", "flow_noise_tau_s", "dt_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"PhysicsParams.{name} must be > 0, got {getattr(self, name)}")
        if self.flow_noise < 0 or self.fall_time_s < 0 or self.stream_lag_s < 0:
            raise ConfigError("PhysicsParams.flow_noise, fall_time_s and stream_lag_s must be >= 0")
        if not 0 <= self.repose_angle_deg < 60:
            raise ConfigError(f"PhysicsParams.repose_angle_deg must be in [0, 60), got {self.repose_angle_deg}")

    @property
    def capacity_g(self) -> float:
        return self.bulk_density_g_cm3 * math.pi * self.cylinder_radius_mm**2 * self.cylinder_height_mm / 1000.0


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class RigConfig:
    """What a user chooses for a run of episodes; `sim.episode.sample_episode` turns it into one episode."""

    initial_g: float = 100.0
    physics: PhysicsParams = field(default_factory=PhysicsParams)
    randomize: bool = True
    ranges: Randomization = field(default_factory=Randomization)
    initial_tilt_deg: float | None = None  # None: the critical tilt of the initial fill minus the pre-pour margin
    delta_phi_deg: float = DEFAULT_DELTA_PHI_DEG
    tick_s: float = 1.0 / CONTROL_RATE_HZ
    max_ticks: int = 200  # 40 s; the expert needs at most about 115
    end_margin_deg: float = 1.5  # done once retracted this far below the critical tilt, flow stopped, all landed
    grasp_force: int = 128  # Robotiq force register used for the grasp
    limits: ArmLimits = field(default_factory=ArmLimits)

    def __post_init__(self) -> None:
        if not 0 < self.initial_g < self.physics.capacity_g:
            raise ConfigError(f"initial_g must be in (0, {self.physics.capacity_g:.0f}) (cylinder capacity), "
                              f"got {self.initial_g}")
        if self.max_ticks < 1 or self.tick_s <= 0 or self.delta_phi_deg <= 0 or self.end_margin_deg <= 0:
            raise ConfigError("RigConfig: max_ticks, tick_s, delta_phi_deg and end_margin_deg must be > 0")
        steps = self.tick_s / self.physics.dt_s
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(f"tick_s ({self.tick_s}) must be a whole number of physics steps ({self.physics.dt_s})")

    @property
    def steps_per_tick(self) -> int:
        return round(self.tick_s / self.physics.dt_s)
