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
from typing import Any

import torch
from safetensors.torch import save_file

from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model.bundle import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    check_finite,
    check_fit,
    file_sha256,
    load_encoder_bundle,
    read_bundle_config,
    read_config_json,
    read_weights,
)
from anytouch_policy.outputs import writing_dir
from anytouch_policy.policy.config import (
    ENCODER_DIR,
    POLICY_BUNDLE,
    POLICY_FORMAT_VERSION,
    POLICY_KIND,
    HeadConfig,
    ReferenceMode,
    check_policy_config,
)
from anytouch_policy.policy.head import PolicyHead


def _link_tree(src: Path, dst: Path) -> None:
    """Hard links of an encoder bundle's two files (a copy across file systems)."""
    dst.mkdir(parents=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            os.link(src / name, dst / name)
        except OSError:
            shutil.copy2(src / name, dst / name)


def save_policy_bundle(path: Path | str, *, config: dict[str, Any], head: PolicyHead, encoder_bundle: Path | str,
                       overwrite: bool = False, add_files: Callable[[Path], None] | None = None) -> Path:
    """Write a policy bundle; `encoder_bundle` is the encoder bundle folder to embed (linked or copied).

    `add_files(folder)` may write more files into the bundle (curves, logs) before it is published. The folder is
    assembled next to `path` and swapped into place, so a crash never leaves half a bundle there; `overwrite`
    replaces a policy bundle only (anytouch_policy.outputs).
    """
    path = Path(path)
    encoder_bundle = Path(encoder_bundle)
    enc_cfg = read_bundle_config(encoder_bundle)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head.state_dict().items()}
    check_finite(tensors, f"refusing to write {path / WEIGHTS_FILE}")
    with writing_dir(path, POLICY_BUNDLE, overwrite=overwrite) as staged:
        _link_tree(encoder_bundle, staged / ENCODER_DIR)
        fingerprint = load_encoder_bundle(staged / ENCODER_DIR, verify=True).fingerprint
        save_file(tensors, staged / WEIGHTS_FILE, metadata={"format": "pt"})
        full = dict(config)
        full["head"] = head.config.to_dict()
        full["encoder"] = {"dir": ENCODER_DIR, "fingerprint": fingerprint, "sha256": enc_cfg["weights"]["sha256"]}
        full["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(staged / WEIGHTS_FILE)}
        (staged / CONFIG_FILE).write_text(json.dumps(full, indent=2) + "\n")
        if add_files is not None:
            add_files(staged)
    return path


def read_policy_config(path: Path | str) -> dict[str, Any]:
    """Parse and check a policy bundle's config.json and its encoder's checksum (no weights loaded)."""
    path = Path(path)
    data, cfg_path = read_config_json(path, kind=POLICY_KIND, version=POLICY_FORMAT_VERSION, what="policy bundle")
    check_policy_config(data, cfg_path)
    enc_dir = path / ENCODER_DIR
    if not enc_dir.is_dir():
        raise BundleError(f"{path} is not a complete policy bundle: its encoder bundle folder {enc_dir} is missing")
    if not (enc_dir / CONFIG_FILE).is_file():
        raise BundleError(f"{path} is not a complete policy bundle: {CONFIG_FILE} is missing in {enc_dir}")
    enc_sha = read_bundle_config(enc_dir)["weights"]["sha256"]
    if enc_sha != data["encoder"]["sha256"]:
        raise BundleError(f"{enc_dir}: encoder sha256 {enc_sha[:12]}... does not match the policy's "
                          f"{data['encoder']['sha256'][:12]}... (config.json field 'encoder'): not the encoder "
                          f"this policy was trained with")
    return data


def load_policy_head(path: Path | str) -> tuple[dict[str, Any], PolicyHead]:
    """config.json (checked) and the head with its weights, on the CPU in eval mode."""
    path = Path(path)
    data = read_policy_config(path)
    cfg_path = path / CONFIG_FILE
    try:
        head_cfg = HeadConfig(**data["head"])
    except (TypeError, ConfigError) as exc:
        raise BundleError(f"{cfg_path}: field 'head' is not a head configuration ({exc})") from None
    if head_cfg.sensors != len(data["sensors"]) or head_cfg.conditioning != len(data["conditioning"]):
        raise BundleError(f"{cfg_path}: field 'head' takes {head_cfg.sensors} sensors and {head_cfg.conditioning} "
                          f"conditioning values; the config lists {len(data['sensors'])} and "
                          f"{len(data['conditioning'])}")
    if head_cfg.reference != (data["reference"] != ReferenceMode.NONE.value):
        raise BundleError(f"{cfg_path}: field 'head' reference={head_cfg.reference} contradicts field 'reference' "
                          f"{data['reference']!r}")
    tensors = read_weights(path, sha256=data["weights"]["sha256"], what="policy bundle")
    head = PolicyHead(head_cfg)
    check_fit(head, tensors, f"{path / WEIGHTS_FILE} does not fit field 'head' of {CONFIG_FILE}")
    head.load_state_dict(tensors)
    return data, head.eval()
