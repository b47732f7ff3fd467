"""Policy bundles on disk: a self-contained folder the policy node, `anytouch eval` and the sim load.

    <bundle>/config.json        the schema of policy.config: sensors, frames, stride, token mode, conditioning,
                                reference, head, training, encoder {dir, fingerprint, sha256}, weights {file, sha256}
    <bundle>/model.safetensors  the head (PolicyHead state_dict, float32)
    <bundle>/encoder/           a complete encoder bundle (model.bundle): the fine-tuned weights, or for a frozen policy
                                hard links to (or a copy of) the bundle it was trained on

Moving the folder keeps it working: nothing in it points outside. Every inconsistency is a BundleError naming the
file and field.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from anytouch_policy.errors import BundleError
from anytouch_policy.model.bundle import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    WeightsFile,
    check_finite,
    check_fit,
    file_sha256,
    load_encoder_bundle,
    read_bundle_config,
    read_config_json,
    read_weights,
)
from anytouch_policy.outputs import writing_dir
from anytouch_policy.policy.config import ENCODER_DIR, POLICY_BUNDLE, EncoderRef, PolicyConfig, PolicySpec
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.schema import dump, fields_of


def _link_tree(src: Path, dst: Path) -> None:
    """Hard links of an encoder bundle's two files (a copy across file systems)."""
    dst.mkdir(parents=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            os.link(src / name, dst / name)
        except OSError:
            shutil.copy2(src / name, dst / name)


def save_policy_bundle(path: Path | str, *, config: PolicySpec, head: PolicyHead, encoder_bundle: Path | str,
                       overwrite: bool = False, add_files: Callable[[Path], None] | None = None) -> Path:
    """Write a policy bundle; `encoder_bundle` is the encoder bundle folder to embed (linked or copied).

    `config.head` must be `head.config`. `add_files(folder)` may write more files into the bundle (curves, logs)
    before it is published. The folder is assembled next to `path` and swapped into place, so a crash never leaves
    half a bundle there; `overwrite` replaces a policy bundle only (anytouch_policy.outputs).
    """
    path = Path(path)
    encoder_bundle = Path(encoder_bundle)
    if config.head != head.config:
        raise BundleError(f"refusing to write {path}: config.head {config.head} is not the head's {head.config}")
    enc_cfg = read_bundle_config(encoder_bundle)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head.state_dict().items()}
    check_finite(tensors, f"refusing to write {path / WEIGHTS_FILE}")
    with writing_dir(path, POLICY_BUNDLE, overwrite=overwrite) as staged:
        _link_tree(encoder_bundle, staged / ENCODER_DIR)
        fingerprint = load_encoder_bundle(staged / ENCODER_DIR, verify=True).fingerprint
        save_file(tensors, staged / WEIGHTS_FILE, metadata={"format": "pt"})
        full = PolicyConfig(**{name: getattr(config, name) for name in fields_of(PolicySpec)},
                            encoder=EncoderRef(dir=ENCODER_DIR, fingerprint=fingerprint, sha256=enc_cfg.weights.sha256),
                            weights=WeightsFile(sha256=file_sha256(staged / WEIGHTS_FILE)))
        (staged / CONFIG_FILE).write_text(json.dumps(dump(full), indent=2) + "\n")
        if add_files is not None:
            add_files(staged)
    return path


def read_policy_config(path: Path | str) -> PolicyConfig:
    """Parse and check a policy bundle's config.json and its encoder's checksum (no weights loaded)."""
    path = Path(path)
    config = read_config_json(path, PolicyConfig, what="policy bundle")
    enc_dir = path / ENCODER_DIR
    if not enc_dir.is_dir():
        raise BundleError(f"{path} is not a complete policy bundle: its encoder bundle folder {enc_dir} is missing")
    if not (enc_dir / CONFIG_FILE).is_file():
        raise BundleError(f"{path} is not a complete policy bundle: {CONFIG_FILE} is missing in {enc_dir}")
    enc_sha = read_bundle_config(enc_dir).weights.sha256
    if enc_sha != config.encoder.sha256:
        raise BundleError(f"{enc_dir}: encoder sha256 {enc_sha[:12]}... does not match the policy's "
                          f"{config.encoder.sha256[:12]}... (config.json field 'encoder'): not the encoder "
                          f"this policy was trained with")
    return config


def load_policy_head(path: Path | str) -> tuple[PolicyConfig, PolicyHead]:
    """config.json (checked) and the head with its weights, on the CPU in eval mode."""
    path = Path(path)
    config = read_policy_config(path)
    tensors = read_weights(path, sha256=config.weights.sha256, what="policy bundle")
    head = PolicyHead(config.head)
    check_fit(head, tensors, f"{path / WEIGHTS_FILE} does not fit field 'head' of {CONFIG_FILE}")
    head.load_state_dict(tensors)
    return config, head.eval()
