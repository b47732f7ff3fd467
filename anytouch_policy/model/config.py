"""Architecture numbers of the AnyTouch touch encoder and the presets shipped as JSON in `presets/`.

A preset fixes the architecture only; weights come from a bundle (`bundle.py`) or a converted official
checkpoint (`convert_official.py`). Presets are plain JSON so a user can read, copy and edit them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import model_validator

from anytouch_policy.bounds import AT_LEAST_1, POSITIVE, Interval
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import config, decode, every_field, load_json

PRESET_DIR = Path(__file__).resolve().parent / "presets"

Count = Annotated[int, AT_LEAST_1]
LayerNormEps = Annotated[float, Interval.parse("(0, 1)")]


def check_transformer(width: int, heads: int, mlp_ratio: float) -> None:
    """The shape rules every transformer here obeys (encoder and MAE decoder); ValueError names the numbers."""
    if width % heads:
        raise ValueError(f"width {width} is not divisible by heads {heads}")
    if not float(width * mlp_ratio).is_integer():
        raise ValueError(f"mlp_ratio {mlp_ratio} must give an integer MLP width for width {width}")


@config
class EncoderConfig:
    """Numbers that define an AnyTouch touch encoder (the official defaults are the released ViT-L/14)."""

    image_size: Count = 224  # input side in pixels; frames are resized to image_size x image_size (no crop)
    patch_size: Count = 14  # spatial side of a tubelet; (image_size / patch_size)^2 patch tokens per clip
    width: Count = 1024  # token width (hidden size)
    layers: Count = 24  # transformer blocks
    heads: Count = 16  # attention heads; width must divide by it (released model: width / 64)
    mlp_ratio: Annotated[float, POSITIVE] = 4.0  # MLP hidden = width * mlp_ratio (released model: 4096)
    output_dim: Count = 768  # size of the projected CLS embedding (touch_projection)
    frames: Count = 3  # frames per clip; the Conv3d tubelet spans all of them (a static image is repeated)
    sensor_slots: Annotated[int, Interval.parse("[10, inf)")] = 10  # rows of the sensor-token table; slot 9
    #   (index -1) is the universal token
    tokens_per_sensor: Count = 5  # sensor tokens placed after CLS, without position embedding
    ln_eps: LayerNormEps = 1e-5  # LayerNorm epsilon of every norm (pre, blocks, post)
    act: Literal["gelu"] = "gelu"  # MLP activation; only exact (erf) GELU, as the released config's hidden_act

    @model_validator(mode="after")
    def _shape(self) -> EncoderConfig:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        check_transformer(self.width, self.heads, self.mlp_ratio)
        return self

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


#: An EncoderConfig as a file states it: every field given (presets, bundles, decoder folders).
Architecture = Annotated[EncoderConfig, every_field(EncoderConfig)]


def list_presets() -> list[str]:
    """Names of the shipped presets (file stems in presets/), sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> EncoderConfig:
    """The EncoderConfig of a shipped preset; the error lists the valid names."""
    path = PRESET_DIR / f"{name}.json"
    if "/" in name or not path.is_file():
        raise ConfigError(f"unknown encoder preset {name!r}; valid presets: {', '.join(list_presets())}")
    data = load_json(path)
    data.pop("description", None)
    return decode(Architecture, data, where=str(path))
