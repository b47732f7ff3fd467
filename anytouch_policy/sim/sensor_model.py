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
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorFormat, SensorType

#: The shipped models, one file per model; the file stem is the preset name.
MODEL_DIR = Path(__file__).resolve().parent / "sensor_models"
MODEL_SUFFIXES = (".yaml", ".yml")
#: A model's name: it names the sensor (`<name>_<finger>`), a topic segment.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: Gel span of the shorter image side when a model file gives no `camera.px_per_mm` (a fingertip sensor's pad).
DEFAULT_SHORT_SIDE_MM = 15.0


def _num(**bounds: float) -> Any:
    """A finite number (an integer is fine, a string or a boolean is not) within the given pydantic bounds."""
    return Annotated[float, Strict(), Field(**bounds)]


def _int(**bounds: int) -> Any:
    return Annotated[int, Strict(), Field(**bounds)]


Grey = _num(ge=0, le=255)  # grey levels of an 8-bit image
Tint = _num(ge=-100, le=100)  # grey levels added to a pressed patch
Gain = _num(gt=0, le=3)  # a multiplier of a nominal value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Camera(_Section):
    """The camera behind the gel."""

    resolution: tuple[_int(ge=16, le=1024), _int(ge=16, le=1024)]  # width, height as captured (landscape), px
    orientation: Literal["landscape", "portrait"]  # portrait: frames are published turned, height x width swapped
    fps: _num(gt=0, le=200)
    noise_sigma: _num(ge=0, le=50)  # camera noise, grey levels rms
    # Optional: image scale on the gel, px per mm (what a contact of a given size in mm covers); None: the shorter
    # published side spans DEFAULT_SHORT_SIDE_MM.
    px_per_mm: _num(gt=0, le=200) | None = None

    @field_validator("resolution")
    @classmethod
    def _landscape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] < value[1]:
            raise ValueError(f"give the camera's landscape resolution (width >= height), got {list(value)}; "
                             "orientation: portrait publishes it turned")
        return value


class Led(_Section):
    """One LED: where it sits in the published frame (fractions of width and height; outside [0, 1] is outside the
    image), its colour, and how far its light reaches (falloff length as a fraction of the image diagonal)."""

    x: _num(ge=-1, le=2)
    y: _num(ge=-1, le=2)
    rgb: tuple[Grey, Grey, Grey]
    reach: _num(gt=0, le=5)


class Optics(_Section):
    """How the gel is lit and what the camera sees of its shape."""

    ambient: tuple[Grey, Grey, Grey]  # the gel's own brightness, RGB grey levels
    leds: Annotated[tuple[Led, ...], Field(min_length=1, max_length=8)]
    vignette: _num(ge=0, lt=1)  # darkening at the corners
    slope_gain: _num(ge=0, le=5000)  # grey levels per unit slope of the pressed gel, in the colour of the LED it faces
    press_tint: tuple[Tint, Tint, Tint]  # colour change where the gel is pressed flat on the object


class Gel(_Section):
    """How the elastomer deforms under the grasp and the beads."""

    shear_px_per_n: _num(ge=0, le=100)  # displacement of the contact per N of tangential load per finger
    shear_far: _num(ge=0, le=1)  # fraction of that displacement far from the contact (the whole gel drags along)
    twist_deg_per_nm: _num(ge=0, le=200)  # rotation per N m of torque per finger
    contact_half_width: _num(gt=0, le=0.5)  # band half-width / shorter image side at 67.7 N; grows as sqrt(force)
    contact_depth: _num(gt=0, le=0.5)  # indentation / band half-width at 67.7 N; grows linearly with the force
    texture_amp: _num(ge=0, le=50)  # micro-texture of the contact, grey levels rms
    texture_grain_px: _num(ge=0.5, le=10)  # its grain (Gaussian blur sigma of the noise fields), px
    texture_per_g: _num(ge=0, le=20)  # its slip: pattern cycles per gram poured
    texture_tint: tuple[_num(ge=0, le=3), _num(ge=0, le=3), _num(ge=0, le=3)]  # RGB weights of the texture
    impact_jitter_px_per_g_s: _num(ge=0, le=5)  # bead-impact shake of the grasp, px rms per g/s of outflow


class Markers(_Section):
    """A grid of dark dots printed on the gel (they move with it). `markers: true` takes every default: a gel sold
    with and without markers (the GelSight Mini) is one line apart in its model file."""

    rows: _int(ge=1, le=64) = 7
    cols: _int(ge=1, le=64) = 9
    radius_px: _num(gt=0, le=20) = 3.2
    darkness: _num(ge=0, le=1) = 0.82  # 1 = black dots
    jitter_px: _num(ge=0, le=10) = 0.6  # irregularity of the printed grid (per unit), px rms


def _span(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"a range [low, high] needs low <= high, got {list(value)}")
    return value


Span = Annotated[tuple[Gain, Gain], AfterValidator(_span)]


class UnitVariation(_Section):
    """Ranges of the per-unit draw (uniform multipliers of the nominal values; fixed for a unit seed)."""

    led_gain: Span  # each LED's brightness
    shear: Span  # gel.shear_px_per_n
    twist: Span  # gel.twist_deg_per_nm
    noise: Span  # camera.noise_sigma


class EpisodeVariation(_Section):
    """Half-widths of the per-episode draws (uniform in [-x, +x])."""

    contact_offset_px: _num(ge=0, le=50)  # where the cylinder lands across the contact band
    mount_angle_deg: _num(ge=0, le=10)  # misalignment of the gel with the tilt plane
    exposure: _num(ge=0, le=0.5)  # relative LED/camera exposure drift
    stiffness: _num(ge=0, le=0.5)  # relative gel stiffness drift (shear and twist)
    contact_width: _num(ge=0, le=0.5)  # relative drift of the contact width per grip force


class Variation(_Section):
    unit: UnitVariation
    episode: EpisodeVariation


class SensorModel(_Section):
    """One simulated sensor model. `name` defaults to the file stem; it names the sensor (`<name>_<finger>`)."""

    name: Annotated[str, Strict()]
    description: Annotated[str, Strict()] = ""
    slot: SensorType  # AnyTouch sensor-token slot, by name: gelsight, digit, gelslim, gelsight_mini, duragel, universal
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

    @field_validator("slot", mode="before")
    @classmethod
    def _slot_by_name(cls, value: object) -> SensorType:
        if not isinstance(value, str):
            raise ValueError(f"a sensor type name ({', '.join(s.label for s in SensorType)}), got {value!r}")
        return SensorType.from_name(value)  # its ConfigError (a ValueError) lists the valid names

    @field_validator("markers", mode="before")
    @classmethod
    def _booleans(cls, value: object) -> object:
        if value is False:
            return None
        if value is True:
            return {}
        if not isinstance(value, dict):
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

    @field_serializer("slot")
    def _slot_name(self, slot: SensorType) -> str:
        return slot.label

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


def _where(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a field path: ('optics', 'leds', 1, 'rgb') -> optics.leds[1].rgb."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(the file)"


def _section_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that holds the last field of `loc` (to list its valid fields)."""
    cls: type[BaseModel] = SensorModel
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part)
        found = _model_in(field.annotation) if field is not None else None
        if found is None:
            return None
        cls = found
    return cls


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (tuple, typing.Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _describe(error: dict) -> str:
    where = _where(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"field {where} is missing"
    if kind == "extra_forbidden":
        section = _section_at(error["loc"])
        valid = f" (valid: {', '.join(section.model_fields)})" if section is not None else ""
        return f"unknown field {where}{valid}"
    if kind == "value_error":  # our own checks quote the value
        return f"field {where}: {error['msg'].removeprefix('Value error, ')}"
    return f"field {where}: {error['msg']} (got {error['input']!r})"


def sensor_model_from_dict(data: object, *, name: str, where: str) -> SensorModel:
    """Decode a model's mapping (the YAML file's content); `name` is used unless the mapping has its own."""
    if not isinstance(data, dict):
        raise ConfigError(f"sensor model {where}: expected a mapping of fields (slot, camera, optics, gel, markers, "
                          f"variation), got {type(data).__name__}")
    try:
        return SensorModel.model_validate({"name": name, **data})
    except ValidationError as exc:
        errors = "; ".join(_describe(e) for e in exc.errors(include_url=False))
        raise ConfigError(f"sensor model {where}: {errors}") from None


def list_sensor_models() -> list[str]:
    """Names of the shipped models, sorted."""
    return sorted(p.stem for p in MODEL_DIR.glob("*.yaml"))


def is_model_path(ref: str) -> bool:
    """A `--sensor` model reference names a file (has a / or a YAML suffix) rather than a shipped model."""
    return "/" in ref or ref.endswith(MODEL_SUFFIXES)


def read_sensor_model(path: Path | str) -> SensorModel:
    """A model file; the model is named after the file unless it has a `name` field."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"sensor model file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sensor model file {path} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"sensor model {path}: not YAML ({exc})") from None
    return sensor_model_from_dict(data, name=path.stem, where=str(path))


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
