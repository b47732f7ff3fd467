"""The open_clip vision and text towers of stage 2, and starting a touch encoder from CLIP's vision tower.

Real runs use open_clip's `ViT-L-14` with the DataComp.XL weights the user downloaded (open_clip format, e.g.
`open_clip_pytorch_model.bin` or `open_clip_model.safetensors` of laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K);
nothing is downloaded here. Tests pass a JSON file holding an open_clip CLIP config (`clip-tiny.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import open_clip
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIP
from open_clip.tokenizer import SimpleTokenizer

from anytouch_policy.errors import CheckpointError, ConfigError
from anytouch_policy.model.encoder import AnyTouchEncoder

#: A tiny open_clip CLIP config (random weights) for tests and CPU smoke runs.
TINY_CLIP_CONFIG = Path(__file__).resolve().parent / "clip-tiny.json"


@dataclass
class ClipTowers:
    """A CLIP model with what feeding it needs."""

    model: CLIP
    tokenizer: SimpleTokenizer
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    arch: str
    weights: str | None


def _config(arch: str) -> dict:
    path = Path(arch)
    if path.suffix == ".json":
        if not path.is_file():
            raise ConfigError(f"CLIP config file not found: {path}")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        cfg = cfg.get("model_cfg", cfg)
        return {k: v for k, v in cfg.items() if k != "description"}
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise ConfigError(f"unknown open_clip architecture {arch!r} (e.g. ViT-L-14, or a JSON config file)")
    return cfg


def build_clip(arch: str = "ViT-L-14", weights: str | Path | None = None) -> ClipTowers:
    """The CLIP model of `arch` (open_clip name or JSON config), with weights from a local file when given."""
    cfg = _config(arch)
    for key in ("embed_dim", "vision_cfg", "text_cfg"):
        if key not in cfg:
            raise ConfigError(f"CLIP config {arch!r} lacks {key!r}")
    if cfg.get("custom_text") or "hf_model_name" in cfg["text_cfg"] or "timm_model_name" in cfg["vision_cfg"]:
        raise ConfigError(f"CLIP config {arch!r}: only open_clip's own ViT towers are supported (no timm/HF towers)")
    model = CLIP(**cfg)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise CheckpointError(f"CLIP weights file not found: {path}")
        try:
            open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
        except (RuntimeError, KeyError, ValueError, AssertionError) as exc:  # open_clip asserts on some shapes
            raise CheckpointError(f"{path}: does not load into open_clip {arch!r} ({exc})") from None
    text_cfg = cfg["text_cfg"]
    tokenizer = SimpleTokenizer(context_length=int(text_cfg.get("context_length", 77)))
    image_size = cfg["vision_cfg"].get("image_size", 224)
    if isinstance(image_size, list | tuple):
        image_size = image_size[0]
    return ClipTowers(model=model, tokenizer=tokenizer, image_size=int(image_size), mean=OPENAI_DATASET_MEAN,
                      std=OPENAI_DATASET_STD, arch=arch, weights=None if weights is None else str(weights))


def init_encoder_from_clip(encoder: AnyTouchEncoder, clip: CLIP) -> None:
    """Copy CLIP's vision tower into a touch encoder, as the official stage 1 starts (load_model_from_clip_video).

    Same names (class/positional embedding, ln_pre, blocks, ln_post, proj); the 2-D patch conv (width, 3, P, P)
    becomes the tubelet by repeating it over the frame axis (width, 3 frames, 3 rgb, P, P), not divided by 3.
    The sensor tokens keep their N(0, 0.02) initialisation.
    """
    visual = clip.visual.state_dict()
    target = encoder.state_dict()
    mapped = {k: v for k, v in visual.items() if k in target and k not in ("tubelet.weight", "sensor_tokens")}
    conv = visual.get("conv1.weight")
    if conv is None:
        raise ConfigError("CLIP vision tower has no conv1 patch embedding (not an open_clip ViT)")
    mapped["tubelet.weight"] = conv.unsqueeze(1).repeat(1, encoder.config.frames, 1, 1, 1)
    mapped["sensor_tokens"] = target["sensor_tokens"]
    problems = [f"missing {k}" for k in target if k not in mapped]
    problems += [f"{k}: CLIP {list(mapped[k].shape)} vs encoder {list(v.shape)}" for k, v in target.items()
                 if k in mapped and mapped[k].shape != v.shape]
    if problems:
        raise ConfigError("CLIP vision tower does not fit the encoder architecture:\n  " + "\n  ".join(problems))
    encoder.load_state_dict(mapped)

