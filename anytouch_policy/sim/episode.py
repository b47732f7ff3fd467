"""One concrete episode of the simulated rig: the physics and nuisances drawn from (RigConfig, episode seed).

It sits above params and physics: the draw needs the critical tilt of the drawn physics to place the start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.params import PhysicsParams, RigConfig, Stream, stream_rng
from anytouch_policy.sim.physics import critical_tilt_deg


@dataclass(frozen=True)
class EpisodeSetup:
    """One concrete episode: the physics and the nuisances drawn for it."""

    seed: int
    initial_g: float
    physics: PhysicsParams
    tare_g: float
    grasp_height_mm: float
    grip_scale: float
    initial_tilt_deg: float


def sample_episode(config: RigConfig, seed: int) -> EpisodeSetup:
    """Draw the nuisances of episode `seed` (mid-range values when config.randomize is False)."""
    r = config.ranges
    rng = stream_rng(seed, Stream.EPISODE)

    def uni(lo: float, hi: float) -> float:
        value = rng.uniform(lo, hi)  # always drawn, so toggling randomisation does not shift other draws
        return float(value) if config.randomize else 0.5 * (lo + hi)

    p = config.physics
    physics = replace(
        p,
        bulk_density_g_cm3=p.bulk_density_g_cm3 * (1 + uni(-r.density_rel, r.density_rel)),
        repose_angle_deg=p.repose_angle_deg + uni(-r.repose_deg, r.repose_deg),
        flow_coeff_g_s=p.flow_coeff_g_s * (1 + uni(-r.flow_coeff_rel, r.flow_coeff_rel)),
        fall_time_s=uni(*r.fall_time_s),
    )
    tare = uni(*r.tare_g)
    grasp = uni(*r.grasp_height_mm)
    grip = uni(*r.grip_scale)
    margin = uni(*r.pre_pour_margin_deg)
    if config.initial_g >= physics.capacity_g:
        raise ConfigError(f"initial_g {config.initial_g} exceeds the randomised capacity {physics.capacity_g:.1f} g")
    tilt0 = config.initial_tilt_deg
    if tilt0 is None:
        tilt0 = critical_tilt_deg(config.initial_g, physics) - margin
    lo, hi = config.limits.min_tilt_deg, config.limits.max_tilt_deg
    if not lo <= tilt0 <= hi:
        raise ConfigError(f"initial tilt {tilt0:.2f} deg is outside the arm limits [{lo}, {hi}]")
    return EpisodeSetup(seed=int(seed), initial_g=float(config.initial_g), physics=physics, tare_g=tare,
                        grasp_height_mm=grasp, grip_scale=grip, initial_tilt_deg=float(tilt0))

