"""The proof: an official-layout checkpoint converted by the CLI gives the official forward's embeddings (< 1e-4)."""

import json

import numpy as np
import pytest
import torch

from anytouch_policy.cli.main import main
from anytouch_policy.model import EncoderRuntime, TokenMode, load_encoder_bundle
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import preprocess_window, static_window

TOL = 1e-4


@pytest.fixture(scope="module")
def converted(official_cases, tmp_path_factory):
    """Each case converted through `anytouch convert-checkpoint --trust-pickle`, with the printed summary."""
    out = {}
    for name, case in official_cases.items():
        bundle_dir = tmp_path_factory.mktemp(f"bundle-{name}")
        argv = ["convert-checkpoint", str(case.path), str(bundle_dir), "--trust-pickle", "--overwrite",
                *case.heads_flag]
        out[name] = (bundle_dir, argv)
    return out


@pytest.mark.parametrize("name", ["stage1", "stage2"])
def test_converted_embeddings_equal_official_forward(name, official_cases, converted, capsys):
    case = official_cases[name]
    bundle_dir, argv = converted[name]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    ref = case.model
    width = ref.touch_projection.in_features
    layers = len(ref.touch_model.encoder.layers)
    assert summary["architecture"]["width"] == width
    assert summary["architecture"]["layers"] == layers
    assert summary["architecture"]["heads"] == ref.touch_model.config.num_attention_heads
    assert summary["architecture"]["image_size"] == case.image_size
    assert summary["architecture"]["output_dim"] == ref.touch_projection.out_features
    assert summary["architecture"]["mlp_ratio"] * width == ref.touch_model.config.intermediate_size
    # 8 top-level tensors + touch_projection, and 16 per block (q/k/v/out/fc1/fc2 weight+bias, 2 norms x 2)
    assert summary["tensors_mapped"] == 9 + 16 * layers
    assert summary["ignored"]["mae_decoder"] == 8
    assert summary["source"]["format"] == f"official-{name}"
    if name == "stage2":
        assert summary["ignored"]["clip_text"] == 2 and summary["ignored"]["clip_vision"] == 3
        assert summary["ignored"]["alignment"] == 3
        assert summary["ignored"]["unused_by_official_forward"] == 3  # 2-D conv, video pos emb, position_ids
    else:
        assert summary["ignored"]["unused_by_official_forward"] == 2

    ours = load_encoder_bundle(bundle_dir).encoder
    size = case.image_size
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(4, 3, 3, size, size, generator=gen)  # 3 distinct frames per clip
    image = torch.randn(4, 3, size, size, generator=gen)
    static = image.unsqueeze(1).repeat(1, 3, 1, 1, 1)  # as the official forward_encoder does for images
    specific = torch.tensor([0, 1, 3, 4])
    universal_official = torch.full((4,), -1)  # the official universal index
    universal_ours = torch.full((4,), 9)

    with torch.no_grad():
        for clips in (video, static):
            for official_slots, our_slots in ((specific, specific), (universal_official, universal_ours)):
                expected = ref(clips, official_slots)
                got = ours(clips, our_slots)
                assert got.shape == expected.shape
                assert (got - expected).abs().max().item() < TOL
                # our encoder also takes the official index -1 for the universal slot
                assert (ours(clips, official_slots) - got).abs().max().item() < TOL
        # the sensor token really enters, and frames are not collapsed
        assert (ours(video, specific) - ours(video, universal_ours)).abs().max().item() > 1e-2
        assert (ours(video, specific) - ours(static, specific)).abs().max().item() > 1e-2


def test_runtime_on_uint8_frames_matches_official_forward(official_cases, converted, capsys):
    """The runtime's preprocessing + batching feeds the model exactly what the official forward would get."""
    case = official_cases["stage2"]
    bundle_dir, argv = converted["stage2"]
    assert main(argv) == 0
    capsys.readouterr()
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(3)]
    windows = [frames, static_window(frames[0])]
    sensors = [SensorType.GELSIGHT_MINI, SensorType.DIGIT]
    clips = torch.from_numpy(np.stack([preprocess_window(w, case.image_size) for w in windows]))
    for mode, slots in ((TokenMode.SPECIFIC, [3, 1]), (TokenMode.UNIVERSAL, [-1, -1])):
        runtime = EncoderRuntime.from_bundle(bundle_dir, device="cpu", token_mode=mode)
        got = runtime.embed(windows, sensors)
        with torch.no_grad():
            expected = case.model(clips, torch.tensor(slots)).numpy()
        assert got.dtype == np.float32
        assert np.abs(got - expected).max() < TOL
