"""Simulated tactile sensor models as data: one YAML file per model holds everything that defines it (AnyTouch
token slot, camera, optics, gel, markers, per-unit and per-episode variation), decoded and checked with pydantic.

    model = load_sensor_model("gelslim")               # a shipped model: sim/sensor_models/gelslim.yaml
    model = load_sensor_model("rig/my_sensor.yaml")     # a user's own sensor (a path: it has a / or ends in .yaml)
    model.format                                        # SensorFormat(height, width, fps) of the published frames

A missing, unknown, mistyped (a string or a boolean for a number), non-finite or out-of-range field is refused with
a ConfigError naming the file and the field (`camera.fps`, `optics.leds[1].rgb[2]`). docs/sim.md ("Sensor model
files") lists every field with its unit and range; the renderer (sim/renderer.py) says how each one shows.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_serializer, field_validator

from anytouch_policy.bounds import Interval
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import config, decode, load_yaml
from anytouch_policy.sensors import SensorFormat, SensorName, SensorType

#: The shipped models, one file per model; the file stem is the preset name.
MODEL_DIR = Path(__file__).resolve().parent / "sensor_models"
MODEL_SUFFIXES = (".yaml", ".yml")
#: A model's name: it names the sensor (`<name>_<finger>`), a topic segment.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: Gel span of the shorter image side when a model file gives no `camera.px_per_mm` (a fingertip sensor's pad).
DEFAULT_SHORT_SIDE_MM = 15.0

R = Interval.parse
Grey = Annotated[float, R("[0, 255]")]  # grey levels of an 8-bit image
Tint = Annotated[float, R("[-100, 100]")]  # grey levels added to a pressed patch
Gain = Annotated[float, R("(0, 3]")]  # a multiplier of a nominal value
Pixels = Annotated[int, R("[16, 1024]")]


@config
class Camera:
    """The camera behind the gel."""

    resolution: tuple[Pixels, Pixels]  # width, height as captured (landscape), px
    orientation: Literal["landscape", "portrait"]  # portrait: frames are published turned, height x width swapped
    fps: Annotated[float, R("[5, 200]")]  # at least the 5 Hz control rate: a new frame for every decision
    noise_sigma: Annotated[float, R("[0, 50]")]  # camera noise, grey levels rms
    # Optional: image scale on the gel, px per mm (what a contact of a given size in mm covers); None: the shorter
    # published side spans DEFAULT_SHORT_SIDE_MM.
    px_per_mm: Annotated[float, R("(0, 200]")] | None = None

    @field_validator("resolution")
    @classmethod
    def _landscape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] < value[1]:
            raise ValueError(f"give the camera's landscape resolution (width >= height), got {list(value)}; "
                             "orientation: portrait publishes it turned")
        return value


@config
class Led:
    """One LED: where it sits in the published frame (fractions of width and height; outside [0, 1] is outside the
    image), its colour, and how far its light reaches (falloff length as a fraction of the image diagonal)."""

    x: Annotated[float, R("[-1, 2]")]
    y: Annotated[float, R("[-1, 2]")]
    rgb: tuple[Grey, Grey, Grey]
    reach: Annotated[float, R("(0, 5]")]


@config
class Optics:
    """How the gel is lit and what the camera sees of its shape."""

    ambient: tuple[Grey, Grey, Grey]  # the gel's own brightness, RGB grey levels
    leds: Annotated[tuple[Led, ...], Field(min_length=1, max_length=8)]
    vignette: Annotated[float, R("[0, 1)")]  # darkening at the corners
    slope_gain: Annotated[float, R("[0, 5000]")]  # grey levels per unit slope of the pressed gel, in the colour of
    #   the LED it faces
    press_tint: tuple[Tint, Tint, Tint]  # colour change where the gel is pressed flat on the object


@config
class Gel:
    """How the elastomer deforms under the grasp and the beads."""

    shear_px_per_n: Annotated[float, R("[0, 100]")]  # displacement of the contact per N of tangential load per finger
    shear_far: Annotated[float, R("[0, 1]")]  # fraction of that displacement far from the contact (the whole gel
    #   drags along)
    twist_deg_per_nm: Annotated[float, R("[0, 200]")]  # rotation per N m of torque per finger
    contact_half_width: Annotated[float, R("(0, 0.5]")]  # band half-width / shorter image side at 67.7 N; grows as
    #   sqrt(force)
    contact_depth: Annotated[float, R("(0, 0.5]")]  # indentation / band half-width at 67.7 N; grows linearly with
    #   the force
    texture_amp: Annotated[float, R("[0, 50]")]  # micro-texture of the contact, grey levels rms
    texture_grain_px: Annotated[float, R("[0.5, 10]")]  # its grain (Gaussian blur sigma of the noise fields), px
    texture_per_g: Annotated[float, R("[0, 20]")]  # its slip: pattern cycles per gram poured
    texture_tint: tuple[Annotated[float, R("[0, 3]")], Annotated[float, R("[0, 3]")],
                        Annotated[float, R("[0, 3]")]]  # RGB weights of the texture
    impact_jitter_px_per_g_s: Annotated[float, R("[0, 5]")]  # bead-impact shake of the grasp, px rms per g/s of
    #   outflow


@config
class Markers:
    """A grid of dark dots printed on the gel (they move with it). `markers: true` takes every default: a gel sold
    with and without markers (the GelSight Mini) is one line apart in its model file."""

    rows: Annotated[int, R("[1, 64]")] = Field(default=7)
    cols: Annotated[int, R("[1, 64]")] = Field(default=9)
    radius_px: Annotated[float, R("(0, 20]")] = Field(default=3.2)
    darkness: Annotated[float, R("[0, 1]")] = Field(default=0.82)  # 1 = black dots
    jitter_px: Annotated[float, R("[0, 10]")] = Field(default=0.6)  # irregularity of the printed grid, px rms


def _span(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"a range [low, high] needs low <= high, got {list(value)}")
    return value


Span = Annotated[tuple[Gain, Gain], AfterValidator(_span)]


@config
class UnitVariation:
    """Ranges of the per-unit draw (uniform multipliers of the nominal values; fixed for a unit seed)."""

    led_gain: Span  # each LED's brightness
    shear: Span  # gel.shear_px_per_n
    twist: Span  # gel.twist_deg_per_nm
    noise: Span  # camera.noise_sigma


@config
class EpisodeVariation:
    """Half-widths of the per-episode draws (uniform in [-x, +x])."""

    contact_offset_px: Annotated[float, R("[0, 50]")]  # where the cylinder lands across the contact band
    mount_angle_deg: Annotated[float, R("[0, 10]")]  # misalignment of the gel with the tilt plane
    exposure: Annotated[float, R("[0, 0.5]")]  # relative LED/camera exposure drift
    stiffness: Annotated[float, R("[0, 0.5]")]  # relative gel stiffness drift (shear and twist)
    contact_width: Annotated[float, R("[0, 0.5]")]  # relative drift of the contact width per grip force


@config
class Variation:
    unit: UnitVariation
    episode: EpisodeVariation


@config(kw_only=True)
class SensorModel:
    """One simulated sensor model. `name` defaults to the file stem; it names the sensor (`<name>_<finger>`)."""

    name: str
    description: str = ""
    slot: SensorName  # AnyTouch sensor-token slot, by name: gelsight, digit, gelslim, gelsight_mini, duragel, universal
    camera: Camera
    optics: Optics
    gel: Gel
    markers: Markers | None  # false (or off): no markers; true (or on): the default grid
    variation: Variation

    @field_validator("name")
    @classmethod
    def _topic_segment(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"{value!r} cannot name a sensor: up to 40 lower-case letters, digits and _, starting "
                             "with a letter (the name is the file's stem unless the file has a name field)")
        return value

    @field_validator("markers", mode="before")
    @classmethod
    def _booleans(cls, value: object) -> object:
        if value is False:
            return None
        if value is True:
            return {}
        if not isinstance(value, dict | Markers):
            raise ValueError(f"false (or off) for no markers, true (or on) for the default grid, or a mapping of "
                             f"rows, cols, radius_px, darkness, jitter_px; got {value!r}")
        return value

    @field_validator("markers")
    @classmethod
    def _markers_fit(cls, value: Markers | None, info: ValidationInfo) -> Markers | None:
        camera = info.data.get("camera")
        if value is None or camera is None:
            return value
        fmt = _format(camera)
        cell = min(fmt.height / value.rows, fmt.width / value.cols)
        if cell < 2 * value.radius_px + 1:
            raise ValueError(f"{value.rows} x {value.cols} dots of radius {value.radius_px} px overlap in a "
                             f"{fmt.height} x {fmt.width} frame (grid cell {cell:.1f} px < 2 radius + 1)")
        return value

    @field_serializer("markers")
    def _none_is_false(self, markers: Markers | None) -> Markers | bool:
        return False if markers is None else markers

    @property
    def format(self) -> SensorFormat:
        """Layout and rate of the frames this model publishes."""
        return _format(self.camera)

    @property
    def px_per_mm(self) -> float:
        """Image scale on the gel (`camera.px_per_mm`, else the shorter side spans DEFAULT_SHORT_SIDE_MM)."""
        if self.camera.px_per_mm is not None:
            return self.camera.px_per_mm
        return min(self.camera.resolution) / DEFAULT_SHORT_SIDE_MM


def _format(camera: Camera) -> SensorFormat:
    width, height = camera.resolution
    if camera.orientation == "portrait":
        width, height = height, width
    return SensorFormat(height=height, width=width, fps=camera.fps)


def sensor_model_from_dict(data: object, *, name: str, where: str) -> SensorModel:
    """Decode a model's mapping (the YAML file's content); `name` is used unless the mapping has its own."""
    if not isinstance(data, dict):
        raise ConfigError(f"sensor model {where}: expected a mapping of fields (slot, camera, optics, gel, markers, "
                          f"variation), got {type(data).__name__}")
    return decode(SensorModel, {"name": name, **data}, where=f"sensor model {where}")


def list_sensor_models() -> list[str]:
    """Names of the shipped models, sorted."""
    return sorted(p.stem for p in MODEL_DIR.glob("*.yaml"))


def is_model_path(ref: str) -> bool:
    """A `--sensor` model reference names a file (has a / or a YAML suffix) rather than a shipped model."""
    return "/" in ref or ref.endswith(MODEL_SUFFIXES)


def _not_a_file(path: Path) -> str:
    return "is a folder, not a model file" if path.is_dir() else "not found"


def read_sensor_model(path: Path | str) -> SensorModel:
    """A model file; the model is named after the file unless it has a `name` field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sensor model file {path} {_not_a_file(path)}")
    return sensor_model_from_dict(load_yaml(path), name=path.stem, where=str(path))


@functools.cache
def _shipped(name: str) -> SensorModel:
    return read_sensor_model(MODEL_DIR / f"{name}.yaml")


def load_sensor_model(ref: str | Path | SensorType) -> SensorModel:
    """A shipped model by name (a SensorType: the shipped model of that slot's name) or a model file by path."""
    if isinstance(ref, SensorType):
        if ref.label not in list_sensor_models():
            raise ConfigError(f"no shipped sensor model for token slot {ref.label}; shipped models: "
                              f"{', '.join(list_sensor_models())}, or give a model file of that slot")
        ref = ref.label
    if isinstance(ref, Path) or is_model_path(ref):
        return read_sensor_model(ref)
    if ref not in list_sensor_models():
        raise ConfigError(f"unknown sensor model {ref!r}; shipped models: {', '.join(list_sensor_models())}, or give "
                          "the path of a model file (.yaml)")
    return _shipped(ref)
