"""Policy bundles on disk: a self-contained folder the policy node, `anytouch eval` and the sim load.

    <bundle>/config.json        kind "anytouch-policy", format_version, sensors [{name, type}], frames, stride,
                                token_mode, conditioning, conditioning_scale_g, reference, classes, head (HeadConfig),
                                variant, training (data, epochs, val metrics), encoder {dir, fingerprint, sha256},
                                weights {file, sha256}
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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from anytouch_policy.actions import Action
from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model.bundle import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    check_finite,
    file_sha256,
    read_bundle_config,
    read_config_json,
    require_field,
)
from anytouch_policy.model.runtime import TokenMode
from anytouch_policy.outputs import OutputKind, writing_dir
from anytouch_policy.policy import CONDITIONING_NAMES, CONDITIONING_SCALE_G, HeadConfig, PolicyHead, ReferenceMode
from anytouch_policy.sensors import SensorType

POLICY_KIND = "anytouch-policy"
POLICY_FORMAT_VERSION = 1
ENCODER_DIR = "encoder"
CURVES_FILE = "training_curves.png"  # written by `anytouch train` beside config.json
LOG_FILE = "training_log.json"

#: A policy bundle folder, for the output-folder rule (anytouch_policy.outputs); `anytouch eval` may have put its
#: default plots (eval_<initial>-<target>_seed<seed>.png) in it.
POLICY_BUNDLE = OutputKind("policy bundle", markers=(CONFIG_FILE, WEIGHTS_FILE),
                           contents=(CONFIG_FILE, WEIGHTS_FILE, ENCODER_DIR, CURVES_FILE, LOG_FILE, "eval_*.png"),
                           config_kind=POLICY_KIND)


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
        from anytouch_policy.model.bundle import load_encoder_bundle

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
    enc_dir = path / ENCODER_DIR
    if data["encoder"]["dir"] != ENCODER_DIR:
        raise BundleError(f"{cfg_path}: field 'encoder' dir is {data['encoder']['dir']!r}, must be {ENCODER_DIR!r}")
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
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{path} is not a complete policy bundle: {WEIGHTS_FILE} is missing")
    if file_sha256(weights) != data["weights"]["sha256"]:
        raise BundleError(f"{weights}: sha256 differs from the one in {CONFIG_FILE} (file changed or corrupt)")
    try:
        tensors = load_file(weights, device="cpu")
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{weights}: cannot read safetensors ({exc})") from None
    check_finite(tensors, str(weights))
    head = PolicyHead(head_cfg)
    expected = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        shapes = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise BundleError(f"{weights} does not fit field 'head' of {CONFIG_FILE}: missing {missing}, unexpected "
                          f"{extra}, shape mismatch {shapes}")
    head.load_state_dict(tensors)
    return data, head.eval()
