"""Convert a released AnyTouch checkpoint (official Hugging Face CLIP key names) into an encoder bundle.

Accepted input: a torch file holding {"model": state_dict, ...} (as the official `save_model` writes it) or a bare
state_dict, or a safetensors state_dict. Stage-1 keys have no prefix; stage-2 keys sit under `touch_mae_model.`
next to the CLIP text/vision towers, which are ignored like the MAE decoder.

Official name (after the prefix)                         ours
touch_model.embeddings.class_embedding                   class_embedding
touch_model.embeddings.position_embedding.weight         positional_embedding        (only spatial pos emb used)
video_patch_embedding.weight [out, frame, rgb, y, x]     tubelet.weight              (1:1, same layout)
sensor_token [10, 5, width]                              sensor_tokens
touch_model.pre_layrnorm / post_layernorm                ln_pre / ln_post
touch_model.encoder.layers.N.self_attn.{q,k,v}_proj      transformer.resblocks.N.attn.in_proj_{weight,bias} (packed)
  .self_attn.out_proj / .layer_norm1 / .layer_norm2        .attn.out_proj / .ln_1 / .ln_2
  .mlp.fc1 / .mlp.fc2                                      .mlp.c_fc / .mlp.c_proj
touch_projection.weight [out, width]                     proj [width, out]           (transposed: x @ proj)

Unused by the official forward, ignored on purpose: touch_model.embeddings.patch_embedding.weight (2-D CLIP conv),
video_position_embedding.weight, touch_model.embeddings.position_ids.
"""

from __future__ import annotations

import math
import pickle
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from anytouch_policy.errors import CheckpointError, ConfigError
from anytouch_policy.model.bundle import ENCODER_BUNDLE, SourceInfo, file_sha256, save_encoder_bundle
from anytouch_policy.model.config import EncoderConfig
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.outputs import check_output_dir
from anytouch_policy.schema import dump

STAGE2_PREFIX = "touch_mae_model."

#: Key prefixes of the touch encoder in the official state_dict (after STAGE2_PREFIX is stripped).
_ENCODER_PREFIXES = ("touch_model.", "touch_projection.", "video_patch_embedding.", "video_position_embedding.")
_ENCODER_EXACT = ("sensor_token",)

#: Touch-encoder tensors that the official forward never reads.
UNUSED_ENCODER_KEYS = (
    "touch_model.embeddings.patch_embedding.weight",
    "touch_model.embeddings.position_ids",
    "video_position_embedding.weight",
)

#: Groups of non-encoder tensors that a released checkpoint carries and the converter ignores.
IGNORED_GROUPS: dict[str, tuple[str, ...]] = {
    "mae_decoder": ("decoder_embed.", "decoder_pos_embed", "touch_decoder_blocks.", "decoder_norm.", "decoder_pred.",
                    "decoder_pred_video.", "mask_token", "sensor_token_proj."),
    "clip_text": ("text_model.", "text_projection."),
    "clip_vision": ("vision_model.", "visual_projection."),
    "alignment": ("logit_scale", "cross_sensor_head."),
}

_TOP_MAP = {
    "touch_model.embeddings.class_embedding": "class_embedding",
    "touch_model.embeddings.position_embedding.weight": "positional_embedding",
    "video_patch_embedding.weight": "tubelet.weight",
    "sensor_token": "sensor_tokens",
    "touch_model.pre_layrnorm.weight": "ln_pre.weight",
    "touch_model.pre_layrnorm.bias": "ln_pre.bias",
    "touch_model.post_layernorm.weight": "ln_post.weight",
    "touch_model.post_layernorm.bias": "ln_post.bias",
}
_PROJ_KEY = "touch_projection.weight"
_LAYER_MAP = {
    "self_attn.out_proj.weight": "attn.out_proj.weight",
    "self_attn.out_proj.bias": "attn.out_proj.bias",
    "layer_norm1.weight": "ln_1.weight",
    "layer_norm1.bias": "ln_1.bias",
    "layer_norm2.weight": "ln_2.weight",
    "layer_norm2.bias": "ln_2.bias",
    "mlp.fc1.weight": "mlp.c_fc.weight",
    "mlp.fc1.bias": "mlp.c_fc.bias",
    "mlp.fc2.weight": "mlp.c_proj.weight",
    "mlp.fc2.bias": "mlp.c_proj.bias",
}
_QKV = ("q_proj", "k_proj", "v_proj")
_LAYER_RE = re.compile(r"^touch_model\.encoder\.layers\.(\d+)\.")


@dataclass
class ConversionReport:
    """What the converter found and wrote (printed as JSON by `anytouch convert-checkpoint`)."""

    source: SourceInfo
    container: str  # "checkpoint['model']" | "state_dict" | "safetensors"
    config: EncoderConfig
    heads_from: str  # "width/64" | "--heads"
    mapped: int  # official tensors that found their place
    encoder_tensors: int  # tensors in our encoder
    ignored: dict[str, int] = field(default_factory=dict)  # group -> tensor count
    out_dir: str = ""
    weights_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": dump(self.source),
            "container": self.container,
            "architecture": dump(self.config),
            "heads_from": self.heads_from,
            "tensors_mapped": self.mapped,
            "encoder_tensors": self.encoder_tensors,
            "ignored": dict(sorted(self.ignored.items())),
            "out_dir": self.out_dir,
            "weights_sha256": self.weights_sha256,
        }


def _sniff(path: Path) -> str:
    """'zip' (torch >= 1.6), 'legacy' (old torch pickle) or 'safetensors'; CheckpointError otherwise."""
    if not path.exists():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint path is not a file: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    if size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80":
        return "legacy"
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size:
        return "safetensors"
    raise CheckpointError(f"{path} is not a PyTorch or safetensors checkpoint (it starts with {head[:8]!r})")


def read_checkpoint(path: Path | str, *, trust_pickle: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict in a checkpoint file and where it was found ("checkpoint['model']", "state_dict"...).

    Loads with `weights_only=True`; a file that needs full unpickling (the official one stores an
    argparse.Namespace under 'args') is refused unless `trust_pickle`, because unpickling can run arbitrary code.
    """
    path = Path(path)
    kind = _sniff(path)
    if kind == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(path), "safetensors"
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=kind == "zip")
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if not trust_pickle and found and kind == "zip":
            raise CheckpointError(
                f"{path} stores Python objects besides tensors ({found.group(1)}), so reading it needs full "
                "unpickling, which can run arbitrary code. If you trust where the file came from, rerun with "
                "--trust-pickle (trust_pickle=True).") from None
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({_first_line(exc)})"
                              + ("" if trust_pickle else "; if it is an old-format torch file you trust, "
                                 "retry with --trust-pickle")) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({_first_line(exc)})") from None
    return _state_dict_of(obj, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _state_dict_of(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj, container = obj["model"], "checkpoint['model']"
    else:
        container = "state_dict"
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict or a dict with 'model'")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{path}: no tensors found in the {container} (keys: {sorted(map(str, obj))[:10]})")
    return state, container


def _is_encoder_key(key: str) -> bool:
    return key.startswith(_ENCODER_PREFIXES) or key in _ENCODER_EXACT


def _expected_keys(layers: int) -> list[str]:
    keys = [*_TOP_MAP, _PROJ_KEY]
    for i in range(layers):
        base = f"touch_model.encoder.layers.{i}."
        keys += [f"{base}self_attn.{n}.{p}" for n in _QKV for p in ("weight", "bias")]
        keys += [base + k for k in _LAYER_MAP]
    return keys


def _infer_config(state: dict[str, torch.Tensor], layers: int, heads: int | None) -> tuple[EncoderConfig, str]:
    width = state["touch_model.embeddings.class_embedding"].shape[0]
    tube = state["video_patch_embedding.weight"]
    pos = state["touch_model.embeddings.position_embedding.weight"]
    sensor = state["sensor_token"]
    fc1 = state["touch_model.encoder.layers.0.mlp.fc1.weight"]
    if tube.ndim != 5 or tube.shape[2] != 3 or tube.shape[3] != tube.shape[4]:
        raise CheckpointError(f"video_patch_embedding.weight has shape {list(tube.shape)}; expected "
                              "[width, frames, 3 (rgb), patch, patch] (the official Conv3d layout)")
    grid = math.isqrt(pos.shape[0] - 1) if pos.ndim == 2 and pos.shape[0] > 1 else 0
    if grid * grid != pos.shape[0] - 1:
        raise CheckpointError(f"touch_model.embeddings.position_embedding.weight has shape {list(pos.shape)}; "
                              "expected [1 + grid^2, width]")
    if sensor.ndim != 3:
        raise CheckpointError(f"sensor_token has shape {list(sensor.shape)}; expected [slots, tokens, width]")
    heads_from = "--heads"
    if heads is None:
        if width % 64:
            raise CheckpointError(f"cannot infer attention heads: width {width} is not a multiple of 64; "
                                  "pass --heads N")
        heads, heads_from = width // 64, "width/64"
    try:
        config = EncoderConfig(image_size=grid * tube.shape[3], patch_size=tube.shape[3], width=width, layers=layers,
                               heads=heads, mlp_ratio=fc1.shape[0] / width,
                               output_dim=state[_PROJ_KEY].shape[0], frames=tube.shape[1],
                               sensor_slots=sensor.shape[0], tokens_per_sensor=sensor.shape[1])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint tensors give an invalid architecture: {exc}") from None
    return config, heads_from


@dataclass
class ConvertedState:
    """An official state_dict mapped onto AnyTouchEncoder."""

    config: EncoderConfig
    tensors: dict[str, torch.Tensor]  # our state_dict, float32
    ignored: dict[str, int]  # group -> tensor count
    heads_from: str  # "width/64" | "--heads"
    mapped: int  # official tensors consumed


def convert_state_dict(state: Mapping[str, torch.Tensor], *, heads: int | None = None) -> ConvertedState:
    """Map an official state_dict (stage-1 or stage-2 keys) onto AnyTouchEncoder.

    Raises CheckpointError listing every missing encoder tensor, every unmapped touch-encoder tensor and every
    shape mismatch at once.
    """
    prefixed = [k for k in state if k.startswith(STAGE2_PREFIX)]
    plain = {k: v for k, v in state.items() if not k.startswith(STAGE2_PREFIX)}
    stripped = {k[len(STAGE2_PREFIX):]: state[k] for k in prefixed}
    clash = sorted(set(stripped) & set(plain))
    if clash:
        raise CheckpointError(f"keys present both with and without the {STAGE2_PREFIX!r} prefix: {clash[:10]}")
    merged = {**plain, **stripped}

    ignored: dict[str, int] = {}
    encoder_keys = set()
    for key in merged:
        if _is_encoder_key(key):
            if key in UNUSED_ENCODER_KEYS:
                ignored["unused_by_official_forward"] = ignored.get("unused_by_official_forward", 0) + 1
            else:
                encoder_keys.add(key)
            continue
        group = next((g for g, pre in IGNORED_GROUPS.items() if key.startswith(pre)), "other")
        ignored[group] = ignored.get(group, 0) + 1
    if not encoder_keys:
        raise CheckpointError("no AnyTouch touch-encoder tensors found (expected keys such as "
                              "'touch_model.embeddings.class_embedding', optionally under 'touch_mae_model.'); "
                              f"first keys: {sorted(merged)[:8]}")

    layer_ids = {int(m.group(1)) for k in encoder_keys if (m := _LAYER_RE.match(k))}
    layers = max(layer_ids, default=0) + 1
    expected = _expected_keys(layers)
    missing = [k for k in expected if k not in encoder_keys]
    unmapped = sorted(encoder_keys - set(expected))
    if missing or unmapped:
        lines = [f"missing encoder tensor: {k}" for k in missing] + [f"unmapped touch-encoder tensor: {k}"
                                                                     for k in unmapped]
        raise CheckpointError(f"checkpoint does not map onto the AnyTouch encoder ({len(missing)} missing, "
                              f"{len(unmapped)} unmapped):\n  " + "\n  ".join(lines))

    config, heads_from = _infer_config(merged, layers, heads)
    ours: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    for official, name in _TOP_MAP.items():
        ours[name], sources[name] = merged[official], official
    ours["proj"], sources["proj"] = merged[_PROJ_KEY].t(), _PROJ_KEY
    problems = []
    for i in range(layers):
        base, dst = f"touch_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for official, name in _LAYER_MAP.items():
            ours[dst + name], sources[dst + name] = merged[base + official], base + official
        for part in ("weight", "bias"):
            qkv = [merged[f"{base}self_attn.{n}.{part}"] for n in _QKV]
            if len({tuple(t.shape) for t in qkv}) != 1:
                problems.append(f"{base}self_attn.{{q,k,v}}_proj.{part} shapes differ: "
                                f"{[list(t.shape) for t in qkv]}")
                continue
            ours[f"{dst}attn.in_proj_{part}"] = torch.cat(qkv, dim=0)
            sources[f"{dst}attn.in_proj_{part}"] = f"{base}self_attn.{{q,k,v}}_proj.{part}"

    with torch.device("meta"):
        reference = AnyTouchEncoder(config).state_dict()
    for name, target in reference.items():
        if name in ours and tuple(ours[name].shape) != tuple(target.shape):
            problems.append(f"{sources[name]}: shape {list(ours[name].shape)} does not fit {name} "
                            f"{list(target.shape)} of the inferred architecture")
    if problems:
        raise CheckpointError("checkpoint tensors do not fit the inferred architecture:\n  " + "\n  ".join(problems))
    return ConvertedState(config=config, tensors={k: v.float().contiguous() for k, v in ours.items()},
                          ignored=ignored, heads_from=heads_from, mapped=len(expected))


def convert_checkpoint(src: Path | str, out_dir: Path | str, *, heads: int | None = None,
                       trust_pickle: bool = False, overwrite: bool = False) -> ConversionReport:
    """Read an official checkpoint, map it onto AnyTouchEncoder and write a bundle to `out_dir`."""
    src = Path(src)
    check_output_dir(out_dir, ENCODER_BUNDLE, overwrite=overwrite)  # before reading gigabytes
    state, container = read_checkpoint(src, trust_pickle=trust_pickle)
    stage = "official-stage2" if any(k.startswith(STAGE2_PREFIX) for k in state) else "official-stage1"
    try:
        converted = convert_state_dict(state, heads=heads)
    except CheckpointError as exc:
        raise CheckpointError(f"{src}: {exc}") from None
    with torch.device("meta"):
        encoder = AnyTouchEncoder(converted.config)
    encoder.load_state_dict(converted.tensors, assign=True)
    source = SourceInfo(path=str(src), sha256=file_sha256(src), format=stage)
    sha = save_encoder_bundle(out_dir, encoder, source=source, overwrite=overwrite)
    return ConversionReport(source=source, container=container, config=converted.config,
                            heads_from=converted.heads_from, mapped=converted.mapped,
                            encoder_tensors=len(converted.tensors), ignored=converted.ignored, out_dir=str(out_dir),
                            weights_sha256=sha)
