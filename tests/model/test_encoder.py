"""Presets build and run; fine-tuning flags train exactly what they document; the token layout holds."""

import json

import pytest
import torch

from anytouch_policy.errors import ConfigError
from anytouch_policy.model import AnyTouchEncoder, EncoderConfig, Finetune, FinetuneMode, list_presets, load_preset
from anytouch_policy.model.config import PRESET_DIR
from anytouch_policy.sensors import SensorType


def test_presets_listed_and_large_is_the_released_model():
    assert {"anytouch-large", "anytouch-small", "anytouch-tiny"} <= set(list_presets())
    large = load_preset("anytouch-large")
    assert (large.image_size, large.patch_size, large.width, large.layers, large.heads) == (224, 14, 1024, 24, 16)
    assert (large.mlp_width, large.output_dim, large.ln_eps, large.act) == (4096, 768, 1e-5, "gelu")
    assert (large.sensor_slots, large.tokens_per_sensor, large.frames, large.num_patches) == (10, 5, 3, 256)


def test_the_universal_sensor_type_is_every_presets_last_token_slot():
    """SensorType.UNIVERSAL is the slot the official code indexes as -1, in every preset's token table."""
    for name in list_presets():
        assert load_preset(name).sensor_slots - 1 == SensorType.UNIVERSAL == 9, name


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown encoder preset 'vit-huge'.*anytouch-large.*anytouch-small"):
        load_preset("vit-huge")


def test_preset_files_hold_every_field():
    for path in PRESET_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        assert data.pop("description")
        assert EncoderConfig.from_dict(data).to_dict() == data


@pytest.mark.parametrize("name", ["anytouch-tiny", "anytouch-small"])
def test_small_presets_forward(name):
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset(name).eval()
    c = enc.config
    x = torch.randn(2, 3, 3, c.image_size, c.image_size)
    with torch.no_grad():
        out = enc(x, torch.tensor([3, 9]))
        tokens = enc.forward_tokens(x, torch.tensor([3, 9]))
    assert out.shape == (2, c.output_dim) and torch.isfinite(out).all()
    assert tokens.shape == (2, 1 + c.tokens_per_sensor + c.num_patches, c.width)
    with torch.no_grad():  # pool() of the token output is forward(); every token can be projected (MAE input)
        assert torch.equal(enc.pool(tokens), out)
        assert enc.project_tokens(tokens).shape == (2, tokens.shape[1], c.output_dim)


def test_large_preset_on_meta_device():
    """The released size without allocating: ~305 M parameters, and the forward's shapes hold."""
    with torch.device("meta"):
        enc = AnyTouchEncoder.from_preset("anytouch-large")
        x = torch.empty(2, 3, 3, 224, 224)
    params = sum(p.numel() for p in enc.parameters())
    # open_clip ViT-L/14 visual is 304.0 M with a 2-D conv; the Conv3d adds 2 x 0.6 M, sensor tokens 0.05 M
    assert 304e6 < params < 306e6
    assert tuple(enc.tubelet.weight.shape) == (1024, 3, 3, 14, 14)
    assert tuple(enc.positional_embedding.shape) == (257, 1024)
    assert tuple(enc.sensor_tokens.shape) == (10, 5, 1024)
    assert tuple(enc.proj.shape) == (1024, 768)
    out = enc.eval()(x, torch.tensor([0, 9]))
    assert out.shape == (2, 768)


def test_sensor_token_and_frame_order_enter_the_output():
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset("anytouch-tiny").eval()
    x = torch.randn(1, 3, 3, 56, 56)
    with torch.no_grad():
        outs = [enc(x, torch.tensor([s])) for s in (0, 1, 9)]
        reversed_frames = enc(x.flip(1), torch.tensor([0]))
        negative = enc(x, torch.tensor([-1]))
    assert (outs[0] - outs[1]).abs().max() > 1e-4 and (outs[0] - outs[2]).abs().max() > 1e-4
    assert (outs[0] - reversed_frames).abs().max() > 1e-4  # time order matters through the Conv3d
    assert torch.equal(negative, outs[2])  # -1 is the universal slot 9, as in the official code


def _patch(x: torch.Tensor, index: int, value: float, patch: int = 14) -> torch.Tensor:
    """x with every frame's pixels of patch `index` (row-major on the patch grid) set to `value`."""
    out, grid = x.clone(), x.shape[-1] // patch
    row, col = divmod(index, grid)
    out[..., row * patch:(row + 1) * patch, col * patch:(col + 1) * patch] = value
    return out


def test_keep_drops_patches_as_mae_masking_does():
    """forward_tokens(keep=...) sees only the kept patches, each still at its own position."""
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset("anytouch-tiny").eval()  # 56 px, 14 px patches: a 4 x 4 grid
    x, s = torch.randn(1, 3, 3, 56, 56), torch.tensor([2])
    keep = torch.tensor([[0, 5, 6, 15]])
    with torch.no_grad():
        every = enc.forward_tokens(x, s, keep=torch.arange(16)[None])
        masked = enc.forward_tokens(x, s, keep=keep)
        assert torch.equal(every, enc.forward_tokens(x, s))  # keeping all in order is no masking
        assert masked.shape == (1, enc.prefix_tokens + 4, 64)
        # a dropped patch does not reach the output; a kept one does
        assert torch.allclose(enc.forward_tokens(_patch(x, 3, 9.0), s, keep=keep), masked, atol=1e-6)
        assert not torch.allclose(enc.forward_tokens(_patch(x, 5, 9.0), s, keep=keep), masked, atol=1e-3)
        # the order of `keep` only orders the patch tokens: CLS and sensor tokens are the same
        shuffled = enc.forward_tokens(x, s, keep=keep[:, [2, 0, 3, 1]])
    prefix = enc.prefix_tokens
    assert torch.allclose(shuffled[:, :prefix], masked[:, :prefix], atol=1e-5)
    assert torch.allclose(shuffled[:, prefix:], masked[:, prefix:][:, [2, 0, 3, 1]], atol=1e-5)


def test_patches_carry_their_position_and_sensor_tokens_carry_none():
    """The position embedding is spatial: swapping two patches' contents changes the embedding. The sensor tokens
    enter without one: permuting the tokens of a slot leaves the embedding unchanged."""
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset("anytouch-tiny").eval()
    x, s = torch.randn(1, 3, 3, 56, 56), torch.tensor([1])
    swapped = x.clone()
    swapped[..., 0:14, 0:14], swapped[..., 42:56, 42:56] = x[..., 42:56, 42:56], x[..., 0:14, 0:14]
    with torch.no_grad():
        out = enc(x, s)
        assert (enc(swapped, s) - out).abs().max() > 1e-4
        enc.sensor_tokens[1] = enc.sensor_tokens[1].flip(0)
        assert torch.allclose(enc(x, s), out, atol=1e-5)


@pytest.mark.parametrize(("shape", "sensor", "message"), [
    ((2, 2, 3, 56, 56), [0, 0], r"must be \(B, 3, 3, 56, 56\)"),
    ((2, 3, 3, 64, 64), [0, 0], r"must be \(B, 3, 3, 56, 56\)"),
    ((2, 3, 3, 56, 56), [0], r"LongTensor of shape \(2,\)"),
    ((2, 3, 3, 56, 56), [0, 10], r"sensor slots must be in \[-10, 9\]"),
])
def test_bad_inputs(shape, sensor, message):
    enc = AnyTouchEncoder.from_preset("anytouch-tiny")
    with pytest.raises(ConfigError, match=message):
        enc(torch.zeros(shape), torch.tensor(sensor))


def trainable(enc):
    return {n for n, p in enc.named_parameters() if p.requires_grad}


def test_finetune_flags():
    enc = AnyTouchEncoder.from_preset("anytouch-small")  # 4 blocks
    every = {n for n, _ in enc.named_parameters()}
    enc.set_finetune(Finetune.parse("frozen"))
    assert trainable(enc) == set()
    enc.set_finetune(Finetune.parse("all"))
    assert trainable(enc) == every
    enc.set_finetune(Finetune.parse("last:2"))
    expected = {n for n in every if n.startswith(("transformer.resblocks.2.", "transformer.resblocks.3.",
                                                   "ln_post.")) or n == "proj"}
    assert trainable(enc) == expected
    assert "sensor_tokens" not in expected and "tubelet.weight" not in expected
    with pytest.raises(ConfigError, match="exceeds the encoder's 4 blocks"):
        enc.set_finetune(Finetune(FinetuneMode.LAST, 5))


@pytest.mark.parametrize("text", ["last", "last:0", "frozen:2", "some", "last:x"])
def test_finetune_parse_errors(text):
    with pytest.raises(ConfigError, match="expected 'frozen', 'all' or 'last:N'"):
        Finetune.parse(text)


def test_finetune_label_round_trip():
    for text in ("frozen", "all", "last:3"):
        assert Finetune.parse(text).label == text


def test_backward_reaches_only_trainable_parameters():
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset("anytouch-tiny")
    x, s = torch.randn(2, 3, 3, 56, 56), torch.tensor([1, 9])
    enc.set_finetune(Finetune.parse("last:1"))
    enc(x, s).square().sum().backward()
    with_grad = {n for n, p in enc.named_parameters() if p.grad is not None}
    assert with_grad == trainable(enc)
    assert all(enc.get_parameter(n).grad.abs().sum() > 0 for n in with_grad)

    enc.zero_grad(set_to_none=True)
    enc.set_finetune(Finetune.parse("all"))
    enc(x, s).square().sum().backward()
    grad = enc.sensor_tokens.grad
    assert grad[[1, 9]].abs().sum() > 0 and grad[[0, 2, 3, 4]].abs().sum() == 0  # only the used slots learn
    assert enc.tubelet.weight.grad.abs().sum() > 0


def test_grad_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset("anytouch-tiny")
    x, s = torch.randn(2, 3, 3, 56, 56), torch.tensor([0, 3])
    enc(x, s).sum().backward()
    plain = enc.proj.grad.clone()
    enc.zero_grad(set_to_none=True)
    enc.set_grad_checkpointing(True)
    enc(x, s).sum().backward()
    assert torch.allclose(enc.proj.grad, plain, atol=1e-6)
