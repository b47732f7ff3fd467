"""Checkpoint reading and mapping: the pickle policy, clear errors for bad files, every bad tensor listed."""

import json

import cv2
import numpy as np
import pytest
import torch

from anytouch_policy.cli.main import main
from anytouch_policy.errors import CheckpointError
from anytouch_policy.model import load_encoder_bundle, read_checkpoint
from anytouch_policy.model.convert_official import convert_checkpoint, convert_state_dict
from anytouch_policy.tactile import preprocess_window, static_window


def official_state(case) -> dict[str, torch.Tensor]:
    return dict(case.model.state_dict())


def test_pickle_refused_without_trust_flag(official_cases, tmp_path, capsys):
    src = official_cases["stage1"].path
    with pytest.raises(CheckpointError, match=r"argparse\.Namespace.*--trust-pickle"):
        read_checkpoint(src)
    assert main(["convert-checkpoint", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "anytouch convert-checkpoint: error:" in err and "--trust-pickle" in err
    assert not (tmp_path / "out" / "config.json").exists()


def test_bare_state_dict_needs_no_pickle(official_cases, tmp_path):
    case = official_cases["stage2"]
    src = tmp_path / "bare.pth"
    torch.save(official_state(case), src)  # tensors only: weights_only loading suffices
    report = convert_checkpoint(src, tmp_path / "bundle")
    assert report.container == "state_dict" and report.source.format == "official-stage1"
    assert report.config.heads == 2  # width 128 / 64
    bundle = load_encoder_bundle(tmp_path / "bundle")
    assert bundle.source.sha256 == report.source.sha256 and len(bundle.source.sha256) == 64


def test_heads_matter_and_default_is_width_over_64(official_cases, tmp_path):
    """Stage-1 has width 64 but 4 heads: converting with the default (1 head) gives a different model."""
    case = official_cases["stage1"]
    state, _ = read_checkpoint(case.path, trust_pickle=True)
    default = convert_state_dict(state)
    assert default.config.heads == 1 and default.heads_from == "width/64"
    right = convert_state_dict(state, heads=4)
    assert right.config.heads == 4 and right.heads_from == "--heads"
    from anytouch_policy.model import AnyTouchEncoder

    x, s = torch.randn(2, 3, 3, 42, 42), torch.tensor([0, 9])
    outs = []
    for conv in (default, right):
        enc = AnyTouchEncoder(conv.config).eval()
        enc.load_state_dict(conv.tensors)
        with torch.no_grad():
            outs.append(enc(x, s))
    with torch.no_grad():
        expected = case.model(x, s)
    assert (outs[1] - expected).abs().max() < 1e-4
    assert (outs[0] - expected).abs().max() > 1e-3


def test_missing_and_unmapped_tensors_all_listed(official_cases):
    state = official_state(official_cases["stage2"])
    removed = ["touch_model.encoder.layers.0.self_attn.q_proj.bias", "touch_model.post_layernorm.weight",
               "touch_model.encoder.layers.1.mlp.fc2.weight"]
    for key in removed:
        del state[key]
    extra = ["touch_model.encoder.layers.0.self_attn.q_proj.lora_A.default.weight", "touch_model.extra_norm.weight"]
    for key in extra:
        state[key] = torch.zeros(3)
    state = {f"touch_mae_model.{k}": v for k, v in state.items()}
    with pytest.raises(CheckpointError) as info:
        convert_state_dict(state, heads=2)
    message = str(info.value)
    assert "3 missing, 2 unmapped" in message
    for key in removed:
        assert f"missing encoder tensor: {key}" in message
    for key in extra:
        assert f"unmapped touch-encoder tensor: {key}" in message


def test_shape_mismatches_all_listed(official_cases):
    state = official_state(official_cases["stage2"])
    state["touch_model.encoder.layers.1.mlp.fc1.bias"] = torch.zeros(7)
    state["touch_model.pre_layrnorm.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as info:
        convert_state_dict(state)
    message = str(info.value)
    assert "touch_model.encoder.layers.1.mlp.fc1.bias: shape [7]" in message
    assert "touch_model.pre_layrnorm.bias: shape [5]" in message


def test_dict_without_encoder_tensors(tmp_path):
    src = tmp_path / "other.pth"
    torch.save({"model": {"backbone.weight": torch.zeros(2, 2)}, "epoch": 1}, src)
    with pytest.raises(CheckpointError, match=r"other\.pth: no AnyTouch touch-encoder tensors.*backbone.weight"):
        convert_checkpoint(src, tmp_path / "out")
    torch.save({"epoch": 1, "note": "no tensors"}, src)
    with pytest.raises(CheckpointError, match="no tensors found"):
        read_checkpoint(src)


def test_missing_truncated_and_foreign_files(official_cases, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="not a file"):
        read_checkpoint(tmp_path)
    data = official_cases["stage2"].path.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(truncated, trust_pickle=True)
    png = tmp_path / "image.png"
    cv2.imwrite(str(png), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CheckpointError, match=r"not a PyTorch or safetensors checkpoint.*PNG"):
        read_checkpoint(png, trust_pickle=True)
    text = tmp_path / "notes.txt"
    text.write_text("definitely not weights\n")
    with pytest.raises(CheckpointError, match="not a PyTorch or safetensors checkpoint"):
        read_checkpoint(text)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(empty)


def test_cli_missing_file_exit_code(tmp_path, capsys):
    assert main(["convert-checkpoint", str(tmp_path / "nope.pth"), str(tmp_path / "out")]) == 2
    assert f"checkpoint file not found: {tmp_path / 'nope.pth'}" in capsys.readouterr().err


def write_rgb(path, image):
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return str(path)


def test_convert_then_embed_through_the_cli(official_cases, tmp_path, capsys):
    case = official_cases["stage2"]
    bundle = tmp_path / "bundle"
    assert main(["convert-checkpoint", str(case.path), str(bundle), "--trust-pickle"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out_dir"] == str(bundle) and summary["architecture"]["output_dim"] == 48

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(3)]  # not the model's 56 px
    paths = [write_rgb(tmp_path / f"f{i}.png", im) for i, im in enumerate(images)]

    assert main(["embed", "--model", str(bundle), "--sensor", "gelsight_mini", *paths]) == 0
    window = json.loads(capsys.readouterr().out)
    assert main(["embed", "--model", str(bundle), "--sensor", "gelsight_mini", paths[0]]) == 0
    static = json.loads(capsys.readouterr().out)
    assert main(["embed", "--model", str(bundle), "--sensor", "gelsight_mini", "--universal", paths[0]]) == 0
    universal = json.loads(capsys.readouterr().out)

    assert window["dim"] == len(window["embedding"]) == 48
    assert (window["frames"], window["static"], window["sensor"], window["slot"]) == (3, False, "gelsight_mini", 3)
    assert (static["frames"], static["static"], static["token_mode"]) == (1, True, "specific")
    assert (universal["token_mode"], universal["slot"]) == ("universal", 9)
    assert window["source_sizes"] == [[60, 80]] * 3 and window["input_size"] == 56
    assert np.abs(np.subtract(window["embedding"], static["embedding"])).max() > 1e-3
    assert np.abs(np.subtract(static["embedding"], universal["embedding"])).max() > 1e-3
    # the CLI result is the official forward on the resized, normalised frames
    for result, frames, slot in ((window, images, 3), (static, static_window(images[0]), 3),
                                 (universal, static_window(images[0]), -1)):
        clip = torch.from_numpy(preprocess_window(frames, 56)).unsqueeze(0)
        with torch.no_grad():
            expected = case.model(clip, torch.tensor([slot]))[0].numpy()
        assert np.abs(np.asarray(result["embedding"]) - expected).max() < 1e-4


@pytest.mark.parametrize("count", [2, 4])
def test_embed_rejects_wrong_frame_count(official_cases, tmp_path, capsys, count):
    bundle = tmp_path / "bundle"
    assert main(["convert-checkpoint", str(official_cases["stage2"].path), str(bundle), "--trust-pickle"]) == 0
    capsys.readouterr()
    path = write_rgb(tmp_path / "f.png", np.zeros((56, 56, 3), np.uint8))
    assert main(["embed", "--model", str(bundle), "--sensor", "digit", *[path] * count]) == 2
    assert f"1 image (static) or 3 images (a window), got {count}" in capsys.readouterr().err


def test_embed_rejects_unknown_sensor_and_bad_image(official_cases, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    assert main(["convert-checkpoint", str(official_cases["stage2"].path), str(bundle), "--trust-pickle"]) == 0
    capsys.readouterr()
    path = write_rgb(tmp_path / "f.png", np.zeros((56, 56, 3), np.uint8))
    assert main(["embed", "--model", str(bundle), "--sensor", "geltouch", path]) == 2
    err = capsys.readouterr().err
    assert "unknown sensor name 'geltouch'" in err and "gelsight_mini" in err
    bogus = tmp_path / "bogus.png"
    bogus.write_text("not an image")
    assert main(["embed", "--model", str(bundle), "--sensor", "digit", str(bogus)]) == 2
    assert f"cannot decode image file {bogus}" in capsys.readouterr().err
    assert main(["embed", "--model", str(tmp_path / "none"), "--sensor", "digit", path]) == 2
    assert "model bundle folder not found" in capsys.readouterr().err


def test_embed_refuses_a_window_of_mixed_frame_sizes(official_cases, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    assert main(["convert-checkpoint", str(official_cases["stage2"].path), str(bundle), "--trust-pickle"]) == 0
    capsys.readouterr()
    paths = [write_rgb(tmp_path / f"f{i}.png", np.zeros(shape, np.uint8))
             for i, shape in enumerate([(240, 320, 3), (240, 320, 3), (320, 240, 3)])]
    assert main(["embed", "--model", str(bundle), "--sensor", "digit", *paths]) == 2
    err = capsys.readouterr().err
    assert "the frames of one window must come from one sensor and have one size" in err
    assert f"{paths[0]}: 320x240, {paths[1]}: 320x240, {paths[2]}: 240x320" in err


def test_convert_overwrites_an_encoder_bundle_only(official_cases, tmp_path, capsys):
    """--overwrite used to rewrite config.json and model.safetensors in whatever folder OUT_DIR was."""
    case = official_cases["stage2"]
    target = tmp_path / "policy_like"
    target.mkdir()
    (target / "config.json").write_text('{"kind": "anytouch-policy"}')
    (target / "model.safetensors").write_bytes(b"head")
    (target / "encoder").mkdir()
    argv = ["convert-checkpoint", str(case.path), str(target), "--trust-pickle", "--overwrite"]
    assert main(argv) == 2
    assert "it is not an encoder bundle (config.json kind is 'anytouch-policy'" in capsys.readouterr().err
    assert (target / "model.safetensors").read_bytes() == b"head"
    bundle = tmp_path / "bundle"
    assert main(["convert-checkpoint", str(case.path), str(bundle), "--trust-pickle"]) == 0
    assert main(["convert-checkpoint", str(case.path), str(bundle), "--trust-pickle"]) == 2
    assert "already holds an encoder bundle; pass --overwrite" in capsys.readouterr().err
    # the decoder folder is checked before the conversion starts
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep")
    assert main([*argv[:2], str(bundle), "--trust-pickle", "--overwrite", "--decoder-out", str(notes)]) == 2
    assert "it is not a decoder folder" in capsys.readouterr().err
    assert sorted(p.name for p in notes.iterdir()) == ["todo.txt"]
