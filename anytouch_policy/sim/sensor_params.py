"""Which simulated sensors sit on the gripper, and the concrete look of each one in an episode.

A sensor is a model (sim/sensor_model.py: a YAML file, shipped or the user's) mounted on a finger. Two levels of
variation, as on a real rig, with the ranges the model file gives:
- the sensor *unit* (LED tints, marker grid, gel stiffness): fixed across episodes for a given `unit_seed`, drawn from
  the episode seed instead when `randomize_unit` is set (domain randomisation for training robustness);
- the *episode* nuisances (where the cylinder lands on the gel, small gain and alignment drifts): drawn per episode.
The episode nuisances are kept small on purpose: one frame tells the load to a few grams, not to the gram.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BeforeValidator, model_validator

from anytouch_policy.bounds import Interval
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import config
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.params import Stream, stream_rng
from anytouch_policy.sim.sensor_model import SensorModel, load_sensor_model


class Finger(IntEnum):
    """Which finger pad carries the sensor; the right pad sees the cylinder mirrored."""

    LEFT = 0
    RIGHT = 1

    @classmethod
    def of_name(cls, name: str) -> Finger:
        """The pad a sensor of this name sits on: the sim's default names are <model>_<finger>, so a name ending in
        "_right" is on the right pad, every other on the left (how a policy's sensors are placed on the rig)."""
        return cls.RIGHT if name.endswith("_right") else cls.LEFT


def _model(value: object) -> object:
    if isinstance(value, SensorModel):
        return value
    if isinstance(value, str | Path | SensorType):
        return load_sensor_model(value)
    raise ValueError(f"a sensor model, a shipped model's name, a model file's path or a sensor type; got {value!r}")


@config
class SensorSpec:
    """A sensor the user mounts on the simulated gripper.

    `model` may be given as a SensorModel, a shipped model's name, a model file's path or a SensorType (the shipped
    model of that name); it is loaded here, so `spec.model` is always a SensorModel.
    """

    model: Annotated[SensorModel, BeforeValidator(_model)]
    name: str = ""  # defaults to "<model name>_<finger>"
    finger: Finger = Finger.LEFT
    fps: Annotated[float, Interval.parse("[5, 200]")] | None = None  # None: the model's rate (>= 5 Hz, as camera.fps)
    unit_seed: int = 0  # which physical unit (fixed look across episodes)
    randomize_unit: bool = False  # draw the unit's look per episode instead

    @model_validator(mode="after")
    def _named(self) -> SensorSpec:
        if not self.name:
            object.__setattr__(self, "name", f"{self.model.name}_{self.finger.name.lower()}")
        return self

    @property
    def sensor_type(self) -> SensorType:
        """The AnyTouch token slot of the model."""
        return self.model.slot

    @classmethod
    def parse(cls, text: str) -> SensorSpec:
        """'gelsight_mini', 'digit:right', 'digit:right:30' or 'rig/my_sensor.yaml:left' (model[:finger[:fps]],
        the model by shipped name or by file path)."""
        parts = text.split(":")
        if not 1 <= len(parts) <= 3:
            raise ConfigError(f"sensor spec {text!r}: expected model[:finger[:fps]]")
        model = load_sensor_model(parts[0])
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
        if fps is not None and not 5.0 <= fps <= 200.0:
            raise ConfigError(f"sensor spec {text!r}: fps must be in [5, 200] (a new frame for every 5 Hz decision), "
                              f"got {parts[2]}")
        return cls(model, finger=finger, fps=fps)


@dataclass(frozen=True)
class UnitLook:
    """What the per-unit draw changes: the model's nominal values times multipliers from its `variation.unit`."""

    led_gain: tuple[float, ...]  # brightness of each LED (model.optics.leds)
    shear_px_per_n: float  # gel displacement per newton of tangential load per finger
    twist_deg_per_nm: float  # gel rotation per N m of torque per finger
    noise_sigma: float  # camera noise, grey levels


@dataclass(frozen=True)
class SensorParams:
    """Everything a renderer needs: the model, layout, rate, unit look and the nuisances of this episode."""

    name: str
    model: SensorModel
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

    @property
    def sensor_type(self) -> SensorType:
        return self.model.slot


def _unit_look(model: SensorModel, rng: np.random.Generator) -> UnitLook:
    span = model.variation.unit
    return UnitLook(
        led_gain=tuple(float(g) for g in rng.uniform(*span.led_gain, len(model.optics.leds))),
        shear_px_per_n=model.gel.shear_px_per_n * float(rng.uniform(*span.shear)),
        twist_deg_per_nm=model.gel.twist_deg_per_nm * float(rng.uniform(*span.twist)),
        noise_sigma=model.camera.noise_sigma * float(rng.uniform(*span.noise)),
    )


def sample_sensor_params(spec: SensorSpec, *, episode_seed: int, index: int, randomize: bool = True) -> SensorParams:
    """The look of sensor `index` (its position in the rig's sensor list) in episode `episode_seed`."""
    fmt = spec.model.format
    stream = Stream.SENSOR + index
    unit_seed = stream_rng(episode_seed, stream).integers(2**31) if spec.randomize_unit else spec.unit_seed
    unit = _unit_look(spec.model, stream_rng(int(unit_seed), Stream.SENSOR + int(spec.sensor_type)))
    rng = stream_rng(episode_seed, stream + 1000)
    draws = rng.uniform(-1.0, 1.0, 5)  # always drawn: toggling randomisation does not shift other draws
    if not randomize:
        draws[:] = 0.0
    spread = spec.model.variation.episode
    return SensorParams(
        name=spec.name, model=spec.model, finger=spec.finger, height=fmt.height, width=fmt.width,
        fps=spec.fps or fmt.fps, seed=int(np.random.SeedSequence([episode_seed, stream]).generate_state(1)[0]),
        unit_seed=int(unit_seed), unit=unit,
        contact_offset_px=spread.contact_offset_px * float(draws[0]),
        mount_angle_deg=spread.mount_angle_deg * float(draws[1]),
        illum_gain=1.0 + spread.exposure * float(draws[2]), shear_gain=1.0 + spread.stiffness * float(draws[3]),
        press_scale=1.0 + spread.contact_width * float(draws[4]),
    )
