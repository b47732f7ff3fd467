"""The loss terms of both stages as plain functions of tensors (paper equations 1-6, appendix A.2).

Masked modelling (targets: ImageNet-normalised pixels, or per-patch standardised with norm_pix_loss):
    L_rec^S  = mean over masked tokens of mean_pixels (I_hat - I)^2
    L_rec^D  = mean over masked tokens of mean_{3 frames, pixels} (V_hat_f - V_f)^2
    L_pred^D = mean over ALL tokens of mean_pixels (V_hat_4 - V_4)^2

Alignment with missing modalities, for a pair (a, b) over Omega = samples having both (touch is always present):
    L_a->b = -1/|Omega| sum_{i in Omega} log softmax_j in Omega (x_a,i . x_b,j / tau)       (x L2-normalised)
    L_align = a_TV/2 (L_T->V + L_V->T) + a_TL/2 (L_T->L + L_L->T) + a_VL/2 (L_V->L + L_L->V)  (paper eq. 4)
An empty Omega gives exactly 0 (still attached to the graph, so backward and DDP see a normal step).

Cross-sensor matching: m = head(x_a * x_c) on L2-normalised embeddings; BCE-with-logits, pos -> 1, neg -> 0.

Reference distillation (optional): |f(x) - f0(x_ref)|^2 averaged over the batch / the target's total variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from anytouch_policy.pretrain.config import LossWeights


def _zero_like_graph(x: torch.Tensor) -> torch.Tensor:
    """An exact 0 that backpropagates (zero gradients) into whatever produced x."""
    return (x * 0).sum()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over tokens with mask = 1 of the per-token mean squared error.

    pred, target: (B, N, ...) with everything after N averaged per token; mask (B, N) of 0/1.
    """
    per_token = (pred.float() - target.float()).pow(2).flatten(2).mean(dim=-1)
    return (per_token * mask).sum() / mask.sum().clamp_min(1)


def static_reconstruction(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_rec^S: pred and target (B, N, P*P*3), masked tokens only."""
    return masked_mse(pred, target, mask)


def dynamic_losses(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_rec^D, L_pred^D) from pred and target (B, N, 4, P*P*3): frames 0-2 on masked tokens, frame 3 on all."""
    rec = masked_mse(pred[:, :, :3], target[:, :, :3], mask)
    nxt = masked_mse(pred[:, :, 3], target[:, :, 3], torch.ones_like(mask))
    return rec, nxt


def contrastive_pair(a: torch.Tensor, b: torch.Tensor, present: torch.Tensor,
                     logit_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(L_a->b, L_b->a, |Omega|) over the rows where `present` (B,) is true.

    a, b: (B, D) L2-normalised embeddings (rows of absent samples are ignored, whatever they hold);
    logit_scale: the learnable log(1/tau) (the caller clamps it as CLIP does).
    """
    idx = present.nonzero().squeeze(1)
    n = int(idx.numel())
    if n == 0:
        zero = _zero_like_graph(a) + _zero_like_graph(b) + _zero_like_graph(logit_scale)
        return zero, zero, 0
    a_sel, b_sel = a[idx].float(), b[idx].float()
    logits = logit_scale.float().exp() * a_sel @ b_sel.T
    labels = torch.arange(n, device=logits.device)
    return F.cross_entropy(logits, labels), F.cross_entropy(logits.T, labels), n


@dataclass
class AlignmentTerms:
    """Every directional term, the pair counts and the weighted sum (equation 4)."""

    touch_to_vision: torch.Tensor
    vision_to_touch: torch.Tensor
    touch_to_text: torch.Tensor
    text_to_touch: torch.Tensor
    vision_to_text: torch.Tensor
    text_to_vision: torch.Tensor
    pairs: dict[str, int]
    total: torch.Tensor


def alignment_loss(touch: torch.Tensor, vision: torch.Tensor, text: torch.Tensor, *, has_vision: torch.Tensor,
                   has_text: torch.Tensor, logit_scale: torch.Tensor, weights: LossWeights) -> AlignmentTerms:
    """Equation 4 over the largest paired subset of each modality pair.

    touch, vision, text: (B, D) L2-normalised, rows of missing modalities hold anything (they are never read);
    has_vision, has_text: (B,) bool.
    """
    t2v, v2t, n_tv = contrastive_pair(touch, vision, has_vision, logit_scale)
    t2l, l2t, n_tl = contrastive_pair(touch, text, has_text, logit_scale)
    v2l, l2v, n_vl = contrastive_pair(vision, text, has_vision & has_text, logit_scale)
    total = (weights.touch_vision / 2 * (t2v + v2t) + weights.touch_text / 2 * (t2l + l2t)
             + weights.vision_text / 2 * (v2l + l2v))
    return AlignmentTerms(t2v, v2t, t2l, l2t, v2l, l2v,
                          {"touch_vision": n_tv, "touch_text": n_tl, "vision_text": n_vl}, total)


def matching_loss(positive_logits: torch.Tensor, negative_logits: torch.Tensor) -> torch.Tensor:
    """BCE(m+, 1) + BCE(m-, 0), each averaged over the anchors (official multi_model.py, before lambda)."""
    pos = F.binary_cross_entropy_with_logits(positive_logits.float(), torch.ones_like(positive_logits.float()))
    neg = F.binary_cross_entropy_with_logits(negative_logits.float(), torch.zeros_like(negative_logits.float()))
    return pos + neg


def reference_distill_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error of (B, D) embeddings relative to the target's spread over the batch: 1 for answering every
    state with the batch's mean target, 0 for the target itself, whatever the embedding's scale."""
    spread = target.var(dim=0, unbiased=False).sum().clamp_min(1e-8)
    return (student - target).pow(2).sum(dim=1).mean() / spread
