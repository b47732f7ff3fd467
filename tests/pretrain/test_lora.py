"""LoRA on open_clip's packed attention: an exact no-op at start, per-projection updates, only adapters train."""

import pytest
import torch
from torch import nn

from anytouch_policy.pretrain.clip_towers import TINY_CLIP_CONFIG, build_clip
from anytouch_policy.pretrain.config import LoraConfig
from anytouch_policy.pretrain.lora import LoraMultiheadAttention, add_lora, lora_parameters


@pytest.fixture
def towers():
    torch.manual_seed(0)
    return build_clip(str(TINY_CLIP_CONFIG))


def test_fresh_adapters_leave_the_vision_tower_bit_identical(towers):
    images = torch.randn(3, 3, 56, 56)
    visual = towers.model.visual.train()
    before = visual(images).detach()
    assert add_lora(visual, LoraConfig()) == 2
    after = visual(images).detach()
    assert torch.equal(before, after)
    visual.eval()
    with torch.no_grad():
        assert torch.allclose(visual(images), before, atol=1e-6)


def test_only_adapters_train_and_receive_gradients(towers):
    model = towers.model
    model.requires_grad_(False)
    add_lora(model.visual, LoraConfig(rank=4, alpha=8.0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n and n.startswith("visual.") for n in trainable)
    assert {id(p) for p in lora_parameters(model)} == {id(p) for p in model.parameters() if p.requires_grad}
    model.visual(torch.randn(2, 3, 56, 56)).square().sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == trainable
    # B = 0 at start, so A gets no gradient yet but B does
    assert all(float(p.grad.abs().sum()) > 0 for n, p in model.named_parameters() if n.endswith("lora_b"))


def _reference_attention(x, w_in, b_in, w_out, b_out, heads):
    """Multi-head self-attention written out: softmax(q k^T / sqrt(d)) v per head, then the output projection."""
    batch, length, d = x.shape
    q, k, v = (x @ w.T + b for w, b in zip(w_in.chunk(3), b_in.chunk(3), strict=True))
    hd = d // heads
    out = torch.empty_like(q)
    for h in range(heads):
        sl = slice(h * hd, (h + 1) * hd)
        att = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / hd ** 0.5, dim=-1)
        out[..., sl] = att @ v[..., sl]
    return out @ w_out.T + b_out


def test_each_projection_gets_its_own_low_rank_update():
    torch.manual_seed(1)
    base = nn.MultiheadAttention(16, 2, batch_first=True)
    lora = LoraMultiheadAttention(base, LoraConfig(rank=2, alpha=4.0))
    with torch.no_grad():
        lora.lora_b.normal_()
    x = torch.randn(3, 5, 16)
    s = 4.0 / 2
    delta = [s * lora.lora_b[i] @ lora.lora_a[i] for i in range(4)]
    w_in = base.in_proj_weight + torch.cat(delta[:3])
    expected = _reference_attention(x, w_in, base.in_proj_bias, base.out_proj.weight + delta[3], base.out_proj.bias, 2)
    with torch.no_grad():
        merged = lora(x, x, x)[0]
        unmerged = lora._unmerged(x, None)  # the dropout path, here without dropout
    assert torch.allclose(merged, expected, atol=1e-5) and torch.allclose(unmerged, expected, atol=1e-5)
    with torch.no_grad():  # an update on q alone touches only the q rows of the packed weight
        lora.lora_b[1:].zero_()
        w_in, w_out = lora.merged_weights()
    assert torch.equal(w_in[16:], base.in_proj_weight[16:]) and not torch.equal(w_in[:16], base.in_proj_weight[:16])
    assert torch.equal(w_out, base.out_proj.weight)


def test_lora_dropout_applies_in_training_only():
    torch.manual_seed(2)
    lora = LoraMultiheadAttention(nn.MultiheadAttention(16, 2, batch_first=True), LoraConfig(rank=2, dropout=0.5))
    with torch.no_grad():
        lora.lora_b.normal_()
    x = torch.randn(2, 4, 16)
    lora.train()
    a, b = lora(x, x, x)[0], lora(x, x, x)[0]
    assert not torch.allclose(a, b)
    lora.eval()
    assert torch.equal(lora(x, x, x)[0], lora(x, x, x)[0])
