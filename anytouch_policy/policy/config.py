"""The schema of a policy bundle's config.json: its constants, the head's numbers, and the field checks.

    config.json   kind "anytouch-policy", format_version, sensors [{name, type}], frames, stride, token_mode,
                  conditioning, conditioning_scale_g, reference, classes, head (HeadConfig), variant,
                  training (data, epochs, val metrics), encoder {dir, fingerprint, sha256}, weights {file, sha256}

`policy_config` writes it (without encoder and weights: policy.bundle adds those), `check_policy_config` checks
every field and names the file and field it refuses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from anytouch_policy.actions import Action
from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model.bundle import CONFIG_FILE, WEIGHTS_FILE, require_field
from anytouch_policy.model.runtime import TokenMode
from anytouch_policy.outputs import OutputKind
from anytouch_policy.sensors import SensorType

POLICY_KIND = "anytouch-policy"
POLICY_FORMAT_VERSION = 1
ENCODER_DIR = "encoder"
CURVES_FILE = "training_curves.png"  # written by `anytouch train` beside config.json
LOG_FILE = "training_log.json"

#: Conditioning values a head may take, in this order; grams divided by CONDITIONING_SCALE_G.
CONDITIONING_NAMES: tuple[str, ...] = ("initial_g", "target_g")
CONDITIONING_SCALE_G = 100.0

#: A policy bundle folder, for the output-folder rule (anytouch_policy.outputs); `anytouch eval` may have put its
#: default plots (eval_<initial>-<target>_seed<seed>.png) in it.
POLICY_BUNDLE = OutputKind("policy bundle", markers=(CONFIG_FILE, WEIGHTS_FILE),
                           contents=(CONFIG_FILE, WEIGHTS_FILE, ENCODER_DIR, CURVES_FILE, LOG_FILE, "eval_*.png"),
                           config_kind=POLICY_KIND)


class ReferenceMode(StrEnum):
    """What the head compares the current window with."""

    EPISODE_START = "episode_start"  # the first embedding of the pour (kept by the runtime until reset())
    NONE = "none"  # the current window only


@dataclass(frozen=True)
class HeadConfig:
    """Numbers that define a PolicyHead."""

    sensors: int  # K
    embed_dim: int  # D (encoder output_dim)
    reference: bool  # head also takes e - r per sensor
    conditioning: int  # C
    hidden: int = 256
    layers: int = 2  # hidden layers
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("sensors", "embed_dim", "hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"HeadConfig.{name} must be a positive integer, got {value!r}")
        if not 0 <= self.conditioning <= len(CONDITIONING_NAMES):
            raise ConfigError(f"HeadConfig.conditioning must be in 0..{len(CONDITIONING_NAMES)}, "
                              f"got {self.conditioning}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"HeadConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def feature_dim(self) -> int:
        return self.sensors * self.embed_dim * (2 if self.reference else 1)

    def to_dict(self) -> dict:
        return asdict(self)


def policy_config(*, sensors: list[tuple[str, SensorType]], frames: int, stride: int, token_mode: TokenMode,
                  conditioning: tuple[str, ...], reference: ReferenceMode, head: HeadConfig, variant: dict,
                  training: dict) -> dict[str, Any]:
    """config.json content without the encoder and weights fields (save_policy_bundle adds those)."""
    return {
        "kind": POLICY_KIND,
        "format_version": POLICY_FORMAT_VERSION,
        "sensors": [{"name": name, "type": kind.label} for name, kind in sensors],
        "frames": frames,
        "stride": stride,
        "token_mode": TokenMode(token_mode).value,
        "conditioning": list(conditioning),
        "conditioning_scale_g": CONDITIONING_SCALE_G,
        "reference": ReferenceMode(reference).value,
        "classes": [a.label for a in Action],
        "head": head.to_dict(),
        "variant": variant,
        "training": training,
    }


def check_policy_config(data: dict[str, Any], cfg_path: Path) -> None:
    """Every field of a parsed config.json (kind and format_version already checked); BundleError naming it."""
    sensors = require_field(data, "sensors", list, cfg_path)
    if not sensors:
        raise BundleError(f"{cfg_path}: field 'sensors' is empty")
    for s in sensors:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not isinstance(s.get("type"), str):
            raise BundleError(f"{cfg_path}: field 'sensors' entries must be {{name, type}}, got {s!r}")
        try:
            SensorType.from_name(s["type"])
        except ConfigError as exc:
            raise BundleError(f"{cfg_path}: field 'sensors': {exc}") from None
    if require_field(data, "frames", int, cfg_path) not in (1, 3):
        raise BundleError(f"{cfg_path}: field 'frames' must be 1 or 3, got {data['frames']}")
    if require_field(data, "stride", int, cfg_path) < 1:
        raise BundleError(f"{cfg_path}: field 'stride' must be >= 1, got {data['stride']}")
    for name, enum in (("token_mode", TokenMode), ("reference", ReferenceMode)):
        value = require_field(data, name, str, cfg_path)
        if value not in {e.value for e in enum}:
            raise BundleError(f"{cfg_path}: field {name!r} must be one of {[e.value for e in enum]}, got {value!r}")
    cond = require_field(data, "conditioning", list, cfg_path)
    if any(c not in CONDITIONING_NAMES for c in cond) or list(cond) != [c for c in CONDITIONING_NAMES if c in cond]:
        raise BundleError(f"{cfg_path}: field 'conditioning' must list names from {list(CONDITIONING_NAMES)} in "
                          f"that order, got {cond}")
    if require_field(data, "conditioning_scale_g", (int, float), cfg_path) != CONDITIONING_SCALE_G:
        raise BundleError(f"{cfg_path}: field 'conditioning_scale_g' is {data['conditioning_scale_g']}, this code "
                          f"scales by {CONDITIONING_SCALE_G}")
    if require_field(data, "classes", list, cfg_path) != [a.label for a in Action]:
        raise BundleError(f"{cfg_path}: field 'classes' must be {[a.label for a in Action]}, got {data['classes']}")
    for name in ("head", "variant", "training", "encoder", "weights"):
        require_field(data, name, dict, cfg_path)
    for name in ("dir", "fingerprint", "sha256"):
        require_field(data["encoder"], name, str, cfg_path)
    require_field(data["weights"], "sha256", str, cfg_path)
    if data["encoder"]["dir"] != ENCODER_DIR:
        raise BundleError(f"{cfg_path}: field 'encoder' dir is {data['encoder']['dir']!r}, must be {ENCODER_DIR!r}")
