"""Encoder bundles on disk: a folder of `config.json` + `model.safetensors`, loaded without unpickling.

config.json holds everything needed to rebuild and feed the encoder:

    kind, format_version          "anytouch-encoder", 1
    architecture                  EncoderConfig fields
    sensor_slots, trained_slots   sensor name -> token slot; slots whose tokens were trained (specific mode)
    preprocess                    size, mean, std, resize ("stretch": no crop, aspect not kept), color ("rgb")
    weights                       file, sha256 of that file, dtype (always float32 on disk)
    source                        where the weights came from (converted checkpoint path + sha256), or null
    recipe                        optional: how the weights were trained (`anytouch pretrain-recipe`: every setting,
                                  the dataset command and seed, the code version); absent in older bundles

The sha256 of model.safetensors is the content checksum of the weights; `EncoderBundle.fingerprint` adds the
architecture and preprocessing to it and is what an embedding cache should key on (with slot, token mode, precision).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import torch
from pydantic import model_validator
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from anytouch_policy.errors import BundleError
from anytouch_policy.model.config import Architecture, EncoderConfig
from anytouch_policy.model.encoder import AnyTouchEncoder, Finetune, FinetuneMode
from anytouch_policy.outputs import OutputKind, writing_dir
from anytouch_policy.schema import config, decode, dump, fields_of, load_json
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import IMAGENET_MEAN, IMAGENET_STD

BUNDLE_KIND: Final = "anytouch-encoder"
FORMAT_VERSION: Final = 1
CONFIG_FILE: Final = "config.json"
WEIGHTS_FILE: Final = "model.safetensors"

#: An encoder bundle folder, for the output-folder rule (anytouch_policy.outputs).
ENCODER_BUNDLE = OutputKind("encoder bundle", markers=(CONFIG_FILE, WEIGHTS_FILE), contents=(CONFIG_FILE, WEIGHTS_FILE),
                            config_kind=BUNDLE_KIND)

#: The sim-pretrained `anytouch-small` bundle shipped in the repository (models/README.md: how it was made, with
#: `anytouch pretrain-recipe`); the demo's default encoder.
SHIPPED_ENCODER = Path(__file__).resolve().parents[2] / "models" / "anytouch-small"

#: Slots whose sensor tokens the released model trained: the five sensor families and the universal token.
RELEASED_TRAINED_SLOTS: tuple[int, ...] = tuple(int(s) for s in SensorType)

T = TypeVar("T")


@config
class SourceInfo:
    """Provenance of converted weights."""

    path: str  # the checkpoint file as given to the converter
    sha256: str  # of that file
    format: str  # e.g. "official-stage1", "official-stage2"


@config
class Preprocess:
    """How frames become model input; a bundle records it and the loader refuses one this code does not do."""

    size: int  # frames are resized to size x size
    mean: tuple[float, float, float]  # ImageNet normalisation, RGB
    std: tuple[float, float, float]
    resize: Literal["stretch"] = "stretch"  # no crop, aspect not kept
    color: Literal["rgb"] = "rgb"


@config(kw_only=True)
class WeightsFile:
    """The weights file of a bundle and its checksum."""

    file: Literal["model.safetensors"] = WEIGHTS_FILE
    sha256: str


@config(kw_only=True)
class EncoderWeights(WeightsFile):
    dtype: Literal["float32"] = "float32"  # always float32 on disk


@config
class EncoderBundleConfig:
    """An encoder bundle's config.json (module docstring)."""

    kind: Literal["anytouch-encoder"]
    format_version: Literal[1]
    architecture: Architecture
    sensor_slots: dict[str, int]  # sensor name -> token slot, for a reader without this package
    trained_slots: tuple[int, ...]
    preprocess: Preprocess
    weights: EncoderWeights
    source: SourceInfo | None
    recipe: dict[str, Any] | None = None  # how the weights were trained (`anytouch pretrain-recipe`)

    @model_validator(mode="after")
    def _slots_exist(self) -> EncoderBundleConfig:
        bad = [s for s in self.trained_slots if not 0 <= s < self.architecture.sensor_slots]
        if bad:
            raise ValueError(f"field trained_slots must list slots in 0..{self.architecture.sensor_slots - 1}, "
                             f"got {list(self.trained_slots)}")
        return self


@dataclass
class EncoderBundle:
    """A loaded bundle: the encoder (eval mode, frozen) and what config.json says about it."""

    path: Path
    encoder: AnyTouchEncoder
    config: EncoderConfig
    trained_slots: tuple[int, ...]
    source: SourceInfo | None
    weights_sha256: str
    recipe: dict[str, Any] | None = None

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming what an embedding depends on besides input, sensor slot and token mode."""
        return _fingerprint(self.weights_sha256, self.config)


def file_sha256(path: Path | str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fingerprint(weights_sha256: str, config: EncoderConfig) -> str:
    blob = json.dumps({"weights": weights_sha256, "architecture": dump(config),
                       "preprocess": dump(_preprocess(config))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _preprocess(config: EncoderConfig) -> Preprocess:
    r, g, b = (round(float(v), 6) for v in IMAGENET_MEAN)
    mean = (r, g, b)
    r, g, b = (round(float(v), 6) for v in IMAGENET_STD)
    return Preprocess(size=config.image_size, mean=mean, std=(r, g, b))


def check_finite(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """BundleError naming the tensors that hold NaN or inf: such weights decide garbage (an all-NaN policy head
    always picks `pour`), so no bundle is written or loaded with them."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise BundleError(f"{what}: tensor(s) {', '.join(bad[:5])}{more} hold NaN or inf values")


def read_weights(path: Path, *, sha256: str, what: str, verify: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a bundle folder's model.safetensors, refused unless present, matching the sha256 its
    config.json records (when `verify`), readable and finite; `what` names the bundle kind in the errors."""
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{path} is not a complete {what}: {WEIGHTS_FILE} is missing")
    if verify and file_sha256(weights) != sha256:
        raise BundleError(f"{weights}: sha256 differs from the one in {CONFIG_FILE} (file changed or corrupt)")
    try:
        tensors = load_file(weights, device="cpu")
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{weights}: cannot read safetensors ({exc})") from None
    check_finite(tensors, str(weights))
    return tensors


def check_fit(module: nn.Module, tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """BundleError listing every missing, unexpected and mis-shaped tensor, so that one look shows all of them."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    problems = [f"missing tensor {k} {list(s)}" for k, s in expected.items() if k not in tensors]
    problems += [f"unexpected tensor {k}" for k in tensors if k not in expected]
    problems += [f"shape mismatch for {k}: file {list(tensors[k].shape)}, architecture {list(s)}"
                 for k, s in expected.items() if k in tensors and tuple(tensors[k].shape) != s]
    if problems:
        raise BundleError(f"{what}:\n  " + "\n  ".join(problems))


def save_encoder_bundle(path: Path | str, encoder: AnyTouchEncoder, *, source: SourceInfo | None = None,
                        trained_slots: tuple[int, ...] = RELEASED_TRAINED_SLOTS, overwrite: bool = False,
                        recipe: dict[str, Any] | None = None) -> str:
    """Write `encoder` as a bundle folder (weights as float32); returns the weights' sha256.

    `overwrite` replaces an encoder bundle only (anytouch_policy.outputs); the folder is written beside `path` and
    swapped in, so a crash never leaves half a bundle.
    """
    path = Path(path)
    config = EncoderBundleConfig(  # checked before anything is written; the checksum follows the weights
        kind=BUNDLE_KIND, format_version=FORMAT_VERSION, architecture=encoder.config,
        sensor_slots={s.label: int(s) for s in SensorType}, trained_slots=tuple(sorted(set(trained_slots))),
        preprocess=_preprocess(encoder.config), weights=EncoderWeights(sha256=""), source=source,
        recipe=recipe)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in encoder.state_dict().items()}
    check_finite(tensors, f"refusing to write {path / WEIGHTS_FILE}")
    with writing_dir(path, ENCODER_BUNDLE, overwrite=overwrite) as staged:
        save_file(tensors, staged / WEIGHTS_FILE, metadata={"format": "pt"})
        sha = file_sha256(staged / WEIGHTS_FILE)
        config = dataclasses.replace(config, weights=EncoderWeights(sha256=sha))
        (staged / CONFIG_FILE).write_text(json.dumps(dump(config), indent=2) + "\n")
    return sha


def shipped_encoder() -> Path | None:
    """SHIPPED_ENCODER where the bundle is there, else None (a checkout without models/, an installed wheel: the
    demo then says so above its table; `anytouch pretrain-recipe --out DIR` makes DIR/anytouch-small)."""
    return SHIPPED_ENCODER if (SHIPPED_ENCODER / CONFIG_FILE).is_file() else None


def read_config_json(path: Path, kind: type[T], *, what: str) -> T:
    """A bundle's config.json as `kind` (encoder and policy bundles, so both fail the same way): the folder, the
    file, then its `kind` and `format_version` (a policy given for an encoder is named as such), then every field;
    BundleError names the file and each field."""
    if not path.is_dir():
        raise BundleError(f"{what} folder not found: {path}" if not path.exists() else
                          f"{path} is a file, not a {what} folder")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise BundleError(f"{path} is not a {what}: {CONFIG_FILE} is missing")
    data = load_json(cfg_path, error=BundleError)
    if not isinstance(data, dict):
        raise BundleError(f"{cfg_path}: must hold a JSON object")
    fields = fields_of(kind)
    expected_kind = typing.get_args(fields["kind"].annotation)[0]
    if data.get("kind") != expected_kind:
        raise BundleError(f"{cfg_path}: kind is {data.get('kind')!r}, expected {expected_kind!r}")
    version = typing.get_args(fields["format_version"].annotation)[0]
    if data.get("format_version") != version:
        raise BundleError(f"{cfg_path}: format_version {data.get('format_version')!r} is not supported (this code "
                          f"reads {version})")
    return decode(kind, data, where=str(cfg_path), error=BundleError)


def read_bundle_config(path: Path | str) -> EncoderBundleConfig:
    """Parse and check a bundle's config.json (no weights read); BundleError names the file and field."""
    return read_config_json(Path(path), EncoderBundleConfig, what="model bundle")


def load_encoder_bundle(path: Path | str, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                        verify: bool = True) -> EncoderBundle:
    """Load a bundle from safetensors (never pickle) onto `device` in `dtype`, frozen and in eval mode.

    `verify` checks model.safetensors against the sha256 recorded in config.json (about 1 s per GB).
    """
    path = Path(path)
    data = read_bundle_config(path)
    config = data.architecture
    if data.preprocess != _preprocess(config):
        raise BundleError(f"{path / CONFIG_FILE}: field preprocess is {dump(data.preprocess)}, this code implements "
                          f"{dump(_preprocess(config))}")

    sha = data.weights.sha256
    tensors = read_weights(path, sha256=sha, what="model bundle", verify=verify)
    with torch.device("meta"):
        encoder = AnyTouchEncoder(config)
    check_fit(encoder, tensors, f"{path / WEIGHTS_FILE} does not fit the architecture in {CONFIG_FILE}")
    encoder.load_state_dict(tensors, assign=True)
    encoder.to(device=device, dtype=dtype)
    encoder.set_finetune(Finetune(FinetuneMode.FROZEN))
    encoder.eval()
    return EncoderBundle(path=path, encoder=encoder, config=config,
                         trained_slots=tuple(sorted(set(data.trained_slots))), source=data.source, weights_sha256=sha,
                         recipe=data.recipe)
