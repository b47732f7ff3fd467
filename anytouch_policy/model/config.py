"""Architecture numbers of the AnyTouch touch encoder and the presets shipped as JSON in `presets/`.

A preset fixes the architecture only; weights come from a bundle (`bundle.py`) or a converted official
checkpoint (`convert_official.py`). Presets are plain JSON so a user can read, copy and edit them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anytouch_policy.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent / "presets"

@dataclass(frozen=True)
class EncoderConfig:
    """Numbers that define an AnyTouch touch encoder (the official defaults are the released ViT-L/14)."""

    image_size: int = 224  # input side in pixels; frames are resized to image_size x image_size (no crop)
    patch_size: int = 14  # spatial side of a tubelet; (image_size / patch_size)^2 patch tokens per clip
    width: int = 1024  # token width (hidden size)
    layers: int = 24  # transformer blocks
    heads: int = 16  # attention heads; width must divide by it (released model: width / 64)
    mlp_ratio: float = 4.0  # MLP hidden = width * mlp_ratio (released model: 4096)
    output_dim: int = 768  # size of the projected CLS embedding (touch_projection)
    frames: int = 3  # frames per clip; the Conv3d tubelet spans all of them (a static image is repeated)
    sensor_slots: int = 10  # rows of the sensor-token table; slot 9 (index -1) is the universal token
    tokens_per_sensor: int = 5  # sensor tokens placed after CLS, without position embedding
    ln_eps: float = 1e-5  # LayerNorm epsilon of every norm (pre, blocks, post)
    act: str = "gelu"  # MLP activation; only exact (erf) GELU, as the released config's hidden_act

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "width", "layers", "heads", "output_dim", "frames",
                     "sensor_slots", "tokens_per_sensor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"EncoderConfig.{name} must be a positive integer, got {value!r}")
        for name in ("mlp_ratio", "ln_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"EncoderConfig.{name} must be a finite number, got {value!r}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"EncoderConfig.image_size {self.image_size} is not a multiple of "
                              f"patch_size {self.patch_size}")
        if self.width % self.heads:
            raise ConfigError(f"EncoderConfig.width {self.width} is not divisible by heads {self.heads}")
        if self.sensor_slots < 10:
            raise ConfigError(f"EncoderConfig.sensor_slots must be >= 10 (slot 9 is the universal token), "
                              f"got {self.sensor_slots}")
        if not self.mlp_ratio > 0 or not float(self.width * self.mlp_ratio).is_integer():
            raise ConfigError(f"EncoderConfig.mlp_ratio {self.mlp_ratio} must give an integer MLP width "
                              f"for width {self.width}")
        if not 0 < self.ln_eps < 1:
            raise ConfigError(f"EncoderConfig.ln_eps must be in (0, 1), got {self.ln_eps}")
        if self.act != "gelu":
            raise ConfigError(f"EncoderConfig.act must be 'gelu' (the released model's activation), got {self.act!r}")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def mlp_width(self) -> int:
        return int(self.width * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> EncoderConfig:
        """Build from a JSON object; unknown or missing fields are errors naming `where`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: encoder architecture must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            raise ConfigError(f"{where}: encoder architecture has unknown fields {unknown} / missing fields {missing}")
        try:
            return cls(**data)
        except ConfigError as exc:  # the field's own message, plus the file it came from
            raise ConfigError(f"{where}: {exc}") from None


def list_presets() -> list[str]:
    """Names of the shipped presets (file stems in presets/), sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> EncoderConfig:
    """The EncoderConfig of a shipped preset; the error lists the valid names."""
    path = PRESET_DIR / f"{name}.json"
    if "/" in name or not path.is_file():
        raise ConfigError(f"unknown encoder preset {name!r}; valid presets: {', '.join(list_presets())}")
    data = json.loads(path.read_text())
    data.pop("description", None)
    return EncoderConfig.from_dict(data, where=str(path))
