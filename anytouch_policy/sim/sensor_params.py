"""Which simulated sensors sit on the gripper, and the concrete look of each one in an episode.

Two levels of variation, as on a real rig:
- the sensor *unit* (LED tints, marker grid, gel stiffness): fixed across episodes for a given `unit_seed`, drawn from
  the episode seed instead when `randomize_unit` is set (domain randomisation for training robustness);
- the *episode* nuisances (where the cylinder lands on the gel, small gain and alignment drifts): drawn per episode.
The episode nuisances are kept small on purpose: one frame tells the load to a few grams, not to the gram.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np

from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
from anytouch_policy.sim.params import Stream, stream_rng


class Finger(IntEnum):
    """Which finger pad carries the sensor; the right pad sees the cylinder mirrored."""

    LEFT = 0
    RIGHT = 1


@dataclass(frozen=True)
class SensorSpec:
    """A sensor the user mounts on the simulated gripper."""

    sensor_type: SensorType
    name: str = ""  # defaults to "<type>_<finger>"
    finger: Finger = Finger.LEFT
    fps: float | None = None  # None: the native rate (sensors.NATIVE_FORMATS)
    unit_seed: int = 0  # which physical unit (fixed look across episodes)
    randomize_unit: bool = False  # draw the unit's look per episode instead

    def __post_init__(self) -> None:
        if self.sensor_type not in NATIVE_FORMATS:
            valid = ", ".join(s.label for s in NATIVE_FORMATS)
            raise ConfigError(f"no simulated renderer for sensor {self.sensor_type.label!r}; available: {valid}")
        if self.fps is not None and not 0 < self.fps <= 200:
            raise ConfigError(f"sensor fps must be in (0, 200], got {self.fps}")
        if not self.name:
            object.__setattr__(self, "name", f"{self.sensor_type.label}_{self.finger.name.lower()}")

    @classmethod
    def parse(cls, text: str) -> SensorSpec:
        """'gelsight_mini', 'digit:right' or 'digit:right:30' (type[:finger[:fps]])."""
        parts = text.split(":")
        if not 1 <= len(parts) <= 3:
            raise ConfigError(f"sensor spec {text!r}: expected type[:finger[:fps]]")
        sensor_type = SensorType.from_name(parts[0])
        finger = Finger.LEFT
        if len(parts) > 1:
            try:
                finger = Finger[parts[1].strip().upper()]
            except KeyError:
                raise ConfigError(f"sensor spec {text!r}: finger must be left or right") from None
        fps = None
        if len(parts) > 2:
            try:
                fps = float(parts[2])
            except ValueError:
                raise ConfigError(f"sensor spec {text!r}: fps {parts[2]!r} is not a number") from None
        return cls(sensor_type=sensor_type, finger=finger, fps=fps)


@dataclass(frozen=True)
class UnitLook:
    """Properties of one physical sensor unit."""

    led_gain: tuple[float, float, float]  # per-LED brightness
    marker_jitter_px: float  # irregularity of the printed marker grid
    shear_px_per_n: float  # gel displacement per newton of tangential load per finger
    twist_deg_per_nm: float  # gel rotation per N m of torque per finger
    noise_sigma: float  # camera noise, grey levels
    jitter_px_per_g_s: float  # bead-impact vibration of the grasp, px rms per g/s of outflow
    texture_amp: float  # micro-slip texture in the contact, grey levels
    texture_per_g: float  # texture phase advance per gram poured


@dataclass(frozen=True)
class SensorParams:
    """Everything a renderer needs: layout, rate, unit look and the nuisances of this episode."""

    name: str
    sensor_type: SensorType
    finger: Finger
    height: int
    width: int
    fps: float
    seed: int  # per-frame noise is drawn from (seed, frame index)
    unit_seed: int  # marker grid and noise tile follow the unit
    unit: UnitLook
    contact_offset_px: float  # where the cylinder lands on the gel, across the contact band
    mount_angle_deg: float  # small misalignment of the gel with the tilt plane
    illum_gain: float  # LED/camera exposure drift
    shear_gain: float  # gel stiffness drift (temperature)
    press_scale: float  # contact width per grip force drift


_NOMINAL_UNIT = {
    SensorType.GELSIGHT_MINI: UnitLook(led_gain=(1.0, 1.0, 1.0), marker_jitter_px=0.6, shear_px_per_n=14.0,
                                       twist_deg_per_nm=25.0, noise_sigma=2.0, jitter_px_per_g_s=0.12,
                                       texture_amp=4.0, texture_per_g=1.6),
    SensorType.DIGIT: UnitLook(led_gain=(1.0, 1.0, 1.0), marker_jitter_px=0.0, shear_px_per_n=16.0,
                               twist_deg_per_nm=30.0, noise_sigma=2.5, jitter_px_per_g_s=0.2,
                               texture_amp=9.0, texture_per_g=1.6),
}


def _unit_look(sensor_type: SensorType, rng: np.random.Generator) -> UnitLook:
    nominal = _NOMINAL_UNIT[sensor_type]
    return replace(
        nominal,
        led_gain=tuple(float(g) for g in rng.uniform(0.9, 1.1, 3)),
        shear_px_per_n=nominal.shear_px_per_n * float(rng.uniform(0.85, 1.15)),
        twist_deg_per_nm=nominal.twist_deg_per_nm * float(rng.uniform(0.85, 1.15)),
        noise_sigma=nominal.noise_sigma * float(rng.uniform(0.8, 1.2)),
    )


def sample_sensor_params(spec: SensorSpec, *, episode_seed: int, index: int, randomize: bool = True) -> SensorParams:
    """The look of sensor `index` (its position in the rig's sensor list) in episode `episode_seed`."""
    fmt = NATIVE_FORMATS[spec.sensor_type]
    stream = Stream.SENSOR + index
    unit_seed = stream_rng(episode_seed, stream).integers(2**31) if spec.randomize_unit else spec.unit_seed
    unit = _unit_look(spec.sensor_type, stream_rng(int(unit_seed), Stream.SENSOR + int(spec.sensor_type)))
    rng = stream_rng(episode_seed, stream + 1000)
    draws = rng.uniform(-1.0, 1.0, 5)  # always drawn: toggling randomisation does not shift other draws
    if not randomize:
        draws[:] = 0.0
    return SensorParams(
        name=spec.name, sensor_type=spec.sensor_type, finger=spec.finger, height=fmt.height, width=fmt.width,
        fps=spec.fps or fmt.fps, seed=int(np.random.SeedSequence([episode_seed, stream]).generate_state(1)[0]),
        unit_seed=int(unit_seed), unit=unit,
        contact_offset_px=6.0 * float(draws[0]), mount_angle_deg=1.0 * float(draws[1]),
        illum_gain=1.0 + 0.03 * float(draws[2]), shear_gain=1.0 + 0.02 * float(draws[3]),
        press_scale=1.0 + 0.05 * float(draws[4]),
    )
