"""Every loss term against a reference written here with explicit loops, and what each term may depend on."""

import math

import pytest
import torch

from anytouch_policy.pretrain.config import LossWeights
from anytouch_policy.pretrain.losses import (
    alignment_loss,
    contrastive_pair,
    dynamic_losses,
    matching_loss,
    static_reconstruction,
)


def _loop_mse(pred, target, tokens):
    """Mean over the listed (b, n) tokens of the mean squared error over every value of that token."""
    total = 0.0
    for b, n in tokens:
        diff = (pred[b, n] - target[b, n]).flatten()
        total += sum(float(d) ** 2 for d in diff) / diff.numel()
    return total / len(tokens)


def _masked(mask):
    return [(b, n) for b in range(mask.shape[0]) for n in range(mask.shape[1]) if mask[b, n] == 1]


@pytest.fixture
def recon():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 6, 4, 12, generator=g)
    target = torch.randn(2, 6, 4, 12, generator=g)
    mask = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=torch.float)
    return pred, target, mask


def test_static_reconstruction_matches_loop(recon):
    pred, target, mask = recon
    got = static_reconstruction(pred[:, :, 0], target[:, :, 0], mask)
    assert float(got) == pytest.approx(_loop_mse(pred[:, :, 0], target[:, :, 0], _masked(mask)), rel=1e-6)


def test_dynamic_terms_match_loops(recon):
    pred, target, mask = recon
    rec, nxt = dynamic_losses(pred, target, mask)
    assert float(rec) == pytest.approx(_loop_mse(pred[:, :, :3], target[:, :, :3], _masked(mask)), rel=1e-6)
    everyone = [(b, n) for b in range(2) for n in range(6)]
    assert float(nxt) == pytest.approx(_loop_mse(pred[:, :, 3], target[:, :, 3], everyone), rel=1e-6)


def test_reconstruction_reads_masked_tokens_only_and_prediction_reads_all(recon):
    pred, target, mask = recon
    rec0, nxt0 = dynamic_losses(pred, target, mask)
    visible = target.clone()
    visible[0, 1, :3] += 5.0  # token (0, 1) is visible
    rec1, nxt1 = dynamic_losses(pred, visible, mask)
    assert float(rec1) == float(rec0) and float(nxt1) == float(nxt0)
    hidden = target.clone()
    hidden[0, 0, :3] += 5.0  # token (0, 0) is masked
    assert float(dynamic_losses(pred, hidden, mask)[0]) > float(rec0)
    nextframe = target.clone()
    nextframe[0, 1, 3] += 5.0  # the next frame of a visible token still counts
    rec2, nxt2 = dynamic_losses(pred, nextframe, mask)
    assert float(rec2) == float(rec0) and float(nxt2) > float(nxt0)
    s0 = static_reconstruction(pred[:, :, 0], target[:, :, 0], mask)
    assert float(static_reconstruction(pred[:, :, 0], visible[:, :, 0], mask)) == float(s0)
    assert float(static_reconstruction(pred[:, :, 0], hidden[:, :, 0], mask)) > float(s0)


def _loop_ce(a, b, rows, scale):
    """-1/|rows| sum_i log(exp(s a_i.b_i) / sum_j exp(s a_i.b_j)), i and j over `rows` only."""
    total = 0.0
    for i in rows:
        num = math.exp(scale * float(a[i] @ b[i]))
        den = sum(math.exp(scale * float(a[i] @ b[j])) for j in rows)
        total -= math.log(num / den)
    return total / len(rows)


@pytest.fixture
def embeddings():
    g = torch.Generator().manual_seed(1)
    unit = lambda x: torch.nn.functional.normalize(x, dim=-1)  # noqa: E731
    touch, vision, text = (unit(torch.randn(5, 8, generator=g)) for _ in range(3))
    has_vision = torch.tensor([True, True, False, True, False])
    has_text = torch.tensor([True, False, True, True, True])
    return touch, vision, text, has_vision, has_text


def test_contrastive_pair_matches_loops(embeddings):
    touch, vision, _, has_vision, _ = embeddings
    scale = torch.tensor(math.log(1 / 0.07))
    a2b, b2a, n = contrastive_pair(touch, vision, has_vision, scale)
    rows = [0, 1, 3]
    assert n == 3
    assert float(a2b) == pytest.approx(_loop_ce(touch, vision, rows, 1 / 0.07), rel=1e-5)
    assert float(b2a) == pytest.approx(_loop_ce(vision, touch, rows, 1 / 0.07), rel=1e-5)


def test_alignment_is_equation_4_over_paired_subsets(embeddings):
    touch, vision, text, has_vision, has_text = embeddings
    weights = LossWeights(touch_vision=1.0, touch_text=1.0, vision_text=0.2)
    scale = torch.tensor(math.log(1 / 0.07))
    out = alignment_loss(touch, vision, text, has_vision=has_vision, has_text=has_text, logit_scale=scale,
                         weights=weights)
    s = 1 / 0.07
    tv, tl, vl = [0, 1, 3], [0, 2, 3, 4], [0, 3]
    expected = {
        "touch_to_vision": _loop_ce(touch, vision, tv, s), "vision_to_touch": _loop_ce(vision, touch, tv, s),
        "touch_to_text": _loop_ce(touch, text, tl, s), "text_to_touch": _loop_ce(text, touch, tl, s),
        "vision_to_text": _loop_ce(vision, text, vl, s), "text_to_vision": _loop_ce(text, vision, vl, s),
    }
    for name, value in expected.items():
        assert float(getattr(out, name)) == pytest.approx(value, rel=1e-5), name
    total = (1.0 / 2 * (expected["touch_to_vision"] + expected["vision_to_touch"])
             + 1.0 / 2 * (expected["touch_to_text"] + expected["text_to_touch"])
             + 0.2 / 2 * (expected["vision_to_text"] + expected["text_to_vision"]))
    assert float(out.total) == pytest.approx(total, rel=1e-5)
    assert out.pairs == {"touch_vision": 3, "touch_text": 4, "vision_text": 2}


def test_a_sample_without_text_changes_no_text_term(embeddings):
    touch, vision, text, has_vision, has_text = embeddings
    scale = torch.tensor(2.0)
    kw = dict(logit_scale=scale, weights=LossWeights())
    keep = [0, 2, 3, 4]  # sample 1 has vision but no text
    full = alignment_loss(touch, vision, text, has_vision=has_vision, has_text=has_text, **kw)
    without = alignment_loss(touch[keep], vision[keep], text[keep], has_vision=has_vision[keep],
                             has_text=has_text[keep], **kw)
    for name in ("touch_to_text", "text_to_touch", "vision_to_text", "text_to_vision"):
        assert float(getattr(full, name)) == pytest.approx(float(getattr(without, name)), rel=1e-6), name
    assert float(full.touch_to_vision) != pytest.approx(float(without.touch_to_vision), rel=1e-3)
    garbage = text.clone()
    garbage[1] = 100.0  # what a missing modality's row holds is never read
    again = alignment_loss(touch, vision, garbage, has_vision=has_vision, has_text=has_text, **kw)
    assert float(again.total) == float(full.total)


def test_all_missing_gives_zero_not_nan_and_backpropagates(embeddings):
    touch, vision, text, _, _ = embeddings
    touch = touch.clone().requires_grad_(True)
    scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    none = torch.zeros(5, dtype=torch.bool)
    out = alignment_loss(touch, vision, text, has_vision=none, has_text=none, logit_scale=scale,
                         weights=LossWeights())
    assert float(out.total.detach()) == 0.0 and out.pairs == {"touch_vision": 0, "touch_text": 0, "vision_text": 0}
    out.total.backward()
    assert torch.equal(touch.grad, torch.zeros_like(touch)) and float(scale.grad) == 0.0


def test_matching_loss_is_bce_of_positive_and_negative():
    pos = torch.tensor([2.0, -0.5, 0.3])
    neg = torch.tensor([-1.0, 0.7, 0.0])
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    expected = (sum(-math.log(sig(float(z))) for z in pos) / 3
                + sum(-math.log(1 - sig(float(z))) for z in neg) / 3)
    assert float(matching_loss(pos, neg)) == pytest.approx(expected, rel=1e-6)
