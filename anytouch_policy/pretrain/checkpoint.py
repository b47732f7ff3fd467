"""Training checkpoints (resume) and the MAE decoder folder that carries stage 1's decoder into stage 2.

A training checkpoint is one torch file written atomically (temp file + os.replace), readable with
weights_only=True: model (trainable state; the frozen CLIP towers come back from --clip-weights), optimizer,
scheduler, grad scaler, epoch, global step, steps done in the epoch, RNG states (torch, cuda, numpy, python) and
the run config, which a resume compares field by field.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from anytouch_policy.errors import CheckpointError
from anytouch_policy.model.config import Architecture, EncoderConfig
from anytouch_policy.outputs import OutputKind, writing_dir
from anytouch_policy.pretrain.config import DecoderConfig
from anytouch_policy.pretrain.decoder import MaskedDecoder
from anytouch_policy.schema import config, dump, read_json

CHECKPOINT_KIND = "anytouch-pretrain-checkpoint"
DECODER_KIND: Final = "anytouch-mae-decoder"
FORMAT_VERSION: Final = 1

#: An MAE decoder folder, for the output-folder rule (anytouch_policy.outputs).
DECODER_FOLDER = OutputKind("decoder folder", markers=("config.json", "model.safetensors"),
                            contents=("config.json", "model.safetensors"), config_kind=DECODER_KIND)


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain Python values (weights_only-loadable)."""
    legacy = np.random.get_state(legacy=True)  # the tuple form (kind, keys, pos, has_gauss, gauss)
    assert isinstance(legacy, tuple)
    kind, keys, pos, has_gauss, gauss = legacy
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: nn.Module, *, skip_prefix: str = "clip.") -> dict[str, torch.Tensor]:
    """The model's state without the frozen tensors under `skip_prefix` (LoRA adapters under it are kept)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(skip_prefix) or ".lora_" in k}


@dataclass
class TrainingState:
    """What a resume restores besides the objects' own state_dicts."""

    epoch: int  # epoch in progress
    step: int  # optimizer steps done in the whole run
    epoch_step: int  # steps done within `epoch`
    world_size: int  # ranks the run was split over (the batch plan depends on it)
    config: dict[str, Any]


def save_checkpoint(path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: torch.amp.GradScaler, state: TrainingState) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"kind": CHECKPOINT_KIND, "format_version": FORMAT_VERSION, "model": trainable_state(model),
               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "scaler": scaler.state_dict(), "epoch": state.epoch, "step": state.step,
               "epoch_step": state.epoch_step, "world_size": state.world_size,
               "config_json": json.dumps(state.config, sort_keys=True), "rng": rng_state()}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint without unpickling code; CheckpointError names the file."""
    if not path.is_file():
        raise CheckpointError(f"no training checkpoint to resume from: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for damaged or foreign files
        raise CheckpointError(f"{path}: not a readable training checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path}: not an anytouch pretraining checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {payload.get('format_version')} is not supported")
    payload["config"] = json.loads(payload.pop("config_json"))
    return payload


def restore_model(model: nn.Module, saved: dict[str, torch.Tensor], *, where: Path) -> None:
    """Load a trainable_state into `model`; anything missing other than frozen CLIP tensors is an error."""
    result = model.load_state_dict(saved, strict=False)
    expected_missing = set(model.state_dict()) - set(trainable_state(model))
    missing = sorted(set(result.missing_keys) - expected_missing)
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{where}: checkpoint does not fit this model: missing {missing[:8]}, "
                              f"unexpected {sorted(result.unexpected_keys)[:8]}")


@config
class DecoderFolderConfig:
    """A decoder folder's config.json: the decoder, and the encoder architecture it was trained against."""

    kind: Literal["anytouch-mae-decoder"]
    format_version: Literal[1]
    decoder: DecoderConfig
    encoder_architecture: Architecture


def save_decoder(path: Path, decoder: MaskedDecoder, *, overwrite: bool = False) -> None:
    """A folder of config.json (decoder + encoder architecture) and model.safetensors, written beside `path` and
    swapped in; `overwrite` replaces a decoder folder only (anytouch_policy.outputs)."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in decoder.state_dict().items()}
    config = DecoderFolderConfig(kind=DECODER_KIND, format_version=FORMAT_VERSION, decoder=decoder.config,
                                 encoder_architecture=decoder.encoder_config)
    with writing_dir(path, DECODER_FOLDER, overwrite=overwrite) as staged:
        save_file(tensors, staged / "model.safetensors")
        (staged / "config.json").write_text(json.dumps(dump(config), indent=2) + "\n")


def load_decoder(path: Path | str, encoder: EncoderConfig) -> MaskedDecoder:
    """Rebuild a saved decoder for `encoder`; CheckpointError names the file and what differs."""
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{path} is not an MAE decoder folder: config.json is missing")
    folder = read_json(cfg_path, DecoderFolderConfig, error=CheckpointError)
    config, trained_for = folder.decoder, folder.encoder_architecture
    fit = ("patch_size", "image_size", "output_dim", "tokens_per_sensor")
    differ = [f"{k}: decoder {getattr(trained_for, k)} vs encoder {getattr(encoder, k)}" for k in fit
              if getattr(trained_for, k) != getattr(encoder, k)]
    if differ:
        raise CheckpointError(f"{cfg_path}: decoder was trained for another encoder ({'; '.join(differ)})")
    decoder = MaskedDecoder(config, encoder)
    try:
        tensors = load_file(path / "model.safetensors")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path / 'model.safetensors'}: cannot read ({exc})") from None
    try:
        decoder.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path / 'model.safetensors'}: does not fit {config} ({exc})") from None
    return decoder
