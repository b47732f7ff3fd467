"""Tube masks, pixel targets in the tubelet's token order, and the universal-token schedule."""

import pytest
import torch

from anytouch_policy.model import AnyTouchEncoder
from anytouch_policy.pretrain.masking import (
    mask_from_keep,
    patchify,
    random_tube_mask,
    replace_with_universal,
    universal_probability,
    visible_count,
)
from anytouch_policy.sensors import SensorType


def test_random_mask_keeps_a_quarter_per_sample_and_restores_order():
    g = torch.Generator().manual_seed(0)
    m = random_tube_mask(6, 64, 0.75, generator=g)
    assert m.keep.shape == (6, 16) and m.restore.shape == (6, 64)
    assert torch.equal(m.mask.sum(1), torch.full((6,), 48.0))
    for b in range(6):  # kept tokens are exactly the unmasked ones
        assert set(m.keep[b].tolist()) == set((m.mask[b] == 0).nonzero().squeeze(1).tolist())
    assert len({tuple(sorted(k.tolist())) for k in m.keep}) == 6  # a different shuffle per sample
    again = random_tube_mask(6, 64, 0.75, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.keep, m.keep)
    # restore sends token n to its slot in [visible..., masked...]: kept token keep[b, i] sits at slot i
    assert torch.equal(torch.gather(m.restore, 1, m.keep), torch.arange(16).expand(6, 16))
    assert bool((m.restore[m.mask == 1] >= 16).all())
    assert all(sorted(r.tolist()) == list(range(64)) for r in m.restore)


def test_mask_from_keep_and_visible_count():
    m = mask_from_keep(torch.tensor([[3, 0], [1, 2]]), 4)
    assert m.mask.tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    assert visible_count(16, 0.75) == 4 and visible_count(256, 0.75) == 64 and visible_count(3, 0.9) == 1
    with pytest.raises(ValueError, match="mask ratio"):
        visible_count(16, 1.0)


def test_patchify_follows_the_tubelet_token_order():
    """Token n of the tubelet conv is a linear map of exactly patchify's token n (all frames, (y, x, rgb) order)."""
    encoder = AnyTouchEncoder.from_preset("anytouch-tiny")
    p = encoder.config.patch_size
    x = torch.randn(2, 3, 3, 56, 56)
    with torch.no_grad():
        conv = encoder.tubelet(x).flatten(2).transpose(1, 2)  # (B, N, width)
    patches = patchify(x, p)  # (B, N, 3 frames, P*P*3)
    w = encoder.tubelet.weight.detach()  # [out, frame, rgb, y, x]
    w_flat = w.permute(0, 1, 3, 4, 2).reshape(w.shape[0], 3, p * p * 3)  # [out, frame, (y, x, rgb)]
    manual = torch.einsum("bnfk,ofk->bno", patches, w_flat)
    assert torch.allclose(manual, conv, atol=1e-4)
    # and a single pixel lands in the token of its row-major patch
    one = torch.zeros(1, 1, 3, 56, 56)
    one[0, 0, 1, 20, 33] = 1.0  # green, row 20 -> patch row 1, col 33 -> patch col 2
    hit = patchify(one, p)[0, :, 0]
    assert hit.nonzero().tolist() == [[1 * 4 + 2, ((20 - 14) * 14 + (33 - 28)) * 3 + 1]]


def test_universal_schedule_is_linear_from_zero_to_max():
    total = 101
    ps = [universal_probability(s, total, 0.75) for s in range(total)]
    assert ps[0] == 0.0 and ps[-1] == pytest.approx(0.75) and ps[50] == pytest.approx(0.375)
    assert all(b - a == pytest.approx(0.0075) for a, b in zip(ps, ps[1:], strict=False))
    assert universal_probability(0, 1, 0.75) == 0.75


def test_replacement_rate_follows_probability():
    g = torch.Generator().manual_seed(3)
    sensor = torch.full((20000,), 3)
    for p in (0.0, 0.3, 0.75, 1.0):
        out = replace_with_universal(sensor, p, generator=g)
        assert set(out.unique().tolist()) <= {3, SensorType.UNIVERSAL}
        rate = float((out == SensorType.UNIVERSAL).float().mean())
        assert abs(rate - p) < 4 * (p * (1 - p) / 20000) ** 0.5 + 1e-9


def test_norm_pix_targets_are_standardised_per_patch_and_frame():
    from anytouch_policy.pretrain.masking import normalize_patches

    target = patchify(torch.rand(2, 4, 3, 28, 28) * 3 + 1, 14)
    out = normalize_patches(target)
    assert torch.allclose(out.mean(-1), torch.zeros(2, 4, 4), atol=1e-5)
    assert torch.allclose(out.var(-1), torch.ones(2, 4, 4), atol=1e-3)
