"""Bundles round-trip bit-exactly through safetensors, carry a stable checksum and refuse inconsistent folders."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model import AnyTouchEncoder, load_encoder_bundle, save_encoder_bundle
from anytouch_policy.model.bundle import file_sha256, read_bundle_config


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return AnyTouchEncoder.from_preset("anytouch-tiny").eval()


def test_round_trip_bit_exact_and_checksum_stable(tiny, tmp_path):
    sha = save_encoder_bundle(tmp_path / "a", tiny)
    assert sha == file_sha256(tmp_path / "a" / "model.safetensors")
    bundle = load_encoder_bundle(tmp_path / "a")
    ours, theirs = tiny.state_dict(), bundle.encoder.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    x, s = torch.randn(2, 3, 3, 56, 56), torch.tensor([1, 9])
    with torch.no_grad():
        assert torch.equal(tiny(x, s), bundle.encoder(x, s))
    assert not any(p.requires_grad for p in bundle.encoder.parameters()) and not bundle.encoder.training
    # saving the loaded encoder again gives the same bytes, hence the same checksum and fingerprint
    assert save_encoder_bundle(tmp_path / "b", bundle.encoder) == sha
    assert load_encoder_bundle(tmp_path / "b").fingerprint == bundle.fingerprint
    # one changed weight changes both
    with torch.no_grad():
        tiny.transformer.resblocks[1].mlp.c_proj.bias[0] += 1e-3
    sha_changed = save_encoder_bundle(tmp_path / "c", tiny)
    assert sha_changed != sha
    assert load_encoder_bundle(tmp_path / "c").fingerprint != bundle.fingerprint


def test_config_json_contents(tiny, tmp_path):
    save_encoder_bundle(tmp_path, tiny, trained_slots=(3, 9))
    data = read_bundle_config(tmp_path)
    assert data.kind == "anytouch-encoder" and data.format_version == 1
    assert data.architecture.width == 64 and data.trained_slots == (3, 9)
    assert data.sensor_slots["gelsight_mini"] == 3 and data.sensor_slots["universal"] == 9
    assert data.preprocess.size == 56 and data.preprocess.mean == (0.485, 0.456, 0.406)
    assert data.weights.dtype == "float32" and data.source is None
    assert load_encoder_bundle(tmp_path).trained_slots == (3, 9)


def test_refuses_to_overwrite(tiny, tmp_path):
    save_encoder_bundle(tmp_path, tiny)
    with pytest.raises(ConfigError, match="already holds an encoder bundle; pass --overwrite"):
        save_encoder_bundle(tmp_path, tiny)
    save_encoder_bundle(tmp_path, tiny, overwrite=True)


def edit_config(path, edit):
    data = json.loads((path / "config.json").read_text())
    edit(data)
    (path / "config.json").write_text(json.dumps(data))


def test_shape_mismatch_lists_every_tensor(tiny, tmp_path):
    save_encoder_bundle(tmp_path, tiny)
    edit_config(tmp_path, lambda d: d["architecture"].update(output_dim=16, mlp_ratio=2.0))
    with pytest.raises(BundleError) as info:
        load_encoder_bundle(tmp_path)
    message = str(info.value)
    assert "shape mismatch for proj: file [64, 32], architecture [64, 16]" in message
    for i in range(2):
        assert f"shape mismatch for transformer.resblocks.{i}.mlp.c_fc.weight" in message


def test_layer_count_mismatch_lists_missing_and_unexpected(tiny, tmp_path):
    save_encoder_bundle(tmp_path, tiny)
    edit_config(tmp_path, lambda d: d["architecture"].update(layers=1))
    with pytest.raises(BundleError, match="unexpected tensor transformer.resblocks.1.ln_1.weight"):
        load_encoder_bundle(tmp_path)
    edit_config(tmp_path, lambda d: d["architecture"].update(layers=3))
    with pytest.raises(BundleError, match="missing tensor transformer.resblocks.2.ln_1.weight"):
        load_encoder_bundle(tmp_path)


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda p: (p / "config.json").unlink(), "config.json is missing"),
    (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda p: edit_config(p, lambda d: d.pop("architecture")), r"json: missing required field\(s\) architecture"),
    (lambda p: edit_config(p, lambda d: d["architecture"].pop("heads")),
     "field architecture must give every field of EncoderConfig; missing heads"),
    (lambda p: edit_config(p, lambda d: d.update(kind="policy")), "kind is 'policy'"),
    (lambda p: edit_config(p, lambda d: d.update(format_version=7)), "format_version 7 is not supported"),
    (lambda p: edit_config(p, lambda d: d["preprocess"].update(size=224)), r"json: field preprocess is \{'size': 224"),
    (lambda p: edit_config(p, lambda d: d.update(trained_slots=[12])),
     r"field trained_slots must list slots in 0..9, got \[12\]"),
    (lambda p: (p / "model.safetensors").write_bytes(b"\0" * 64), "sha256 differs"),
])
def test_broken_bundles_name_file_and_field(tiny, tmp_path, breakage, message):
    save_encoder_bundle(tmp_path, tiny)
    breakage(tmp_path)
    with pytest.raises(BundleError, match=message):
        load_encoder_bundle(tmp_path)


def test_missing_folder_and_truncated_weights(tiny, tmp_path):
    with pytest.raises(BundleError, match="model bundle folder not found"):
        load_encoder_bundle(tmp_path / "absent")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BundleError, match="afile is a file, not a model bundle folder"):
        load_encoder_bundle(tmp_path / "afile")
    (tmp_path / "afile").unlink()
    save_encoder_bundle(tmp_path, tiny)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(BundleError, match="cannot read safetensors"):
        load_encoder_bundle(tmp_path, verify=False)


def test_non_finite_weights_are_refused_at_save_and_at_load(tiny, tmp_path):
    with torch.no_grad():
        bad = AnyTouchEncoder.from_preset("anytouch-tiny")
        bad.proj[0, 3] = float("nan")
    with pytest.raises(BundleError, match=r"refusing to write .*nan/model.safetensors: tensor\(s\) proj hold NaN"):
        save_encoder_bundle(tmp_path / "nan", bad)
    assert not (tmp_path / "nan").exists()
    # a bundle whose file was written by something else (or damaged) with an inf in it, checksum updated to match
    save_encoder_bundle(tmp_path / "b", tiny)
    tensors = load_file(tmp_path / "b" / "model.safetensors")
    tensors["transformer.resblocks.0.ln_1.weight"][0] = float("inf")
    save_file(tensors, tmp_path / "b" / "model.safetensors")
    edit_config(tmp_path / "b", lambda d: d["weights"].update(sha256=file_sha256(tmp_path / "b" / "model.safetensors")))
    with pytest.raises(BundleError, match=r"b/model.safetensors: tensor\(s\) transformer.resblocks.0.ln_1.weight "
                                          "hold NaN or inf"):
        load_encoder_bundle(tmp_path / "b")


def test_architecture_errors_name_the_file_and_field(tiny, tmp_path):
    save_encoder_bundle(tmp_path, tiny)
    edit_config(tmp_path, lambda d: d["architecture"].update(width="64"))
    with pytest.raises(BundleError, match=r"json: field architecture.width must be an integer, got '64'") as info:
        load_encoder_bundle(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)
    edit_config(tmp_path, lambda d: d["architecture"].update(width=64, mlp_ratio="4"))
    with pytest.raises(BundleError, match=r"config.json: field architecture.mlp_ratio must be a number, got '4'"):
        load_encoder_bundle(tmp_path)
