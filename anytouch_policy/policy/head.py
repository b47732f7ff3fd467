"""The pouring policy's head: an MLP over AnyTouch embeddings, and what one decision is.

Shape contract (K sensors, D = encoder output_dim, C conditioning values):

    per sensor a window (3 frames, or 1 repeated 3x) ──encoder──> e (D,)          EncoderRuntime.embed
    episode reference r (D,): the embedding of the first decision of the pour     (reference mode "episode_start")
    head input: BatchNorm([e_1, e_1 - r_1, ..., e_K, e_K - r_K]) ++ conditioning / 100 g   (K*D*2 + C)
      -> Linear -> GELU -> Dropout (x layers) -> Linear -> logits (3,) in Action order POUR, WAIT, RETRACT
                                                         [+ (1,) grams still to pour / REMAINING_SCALE_G]

Why a reference: the grip carries the cylinder (86-94 g, not known to the gram) plus the beads, so one window tells
the load only to a few grams. The change since the start of the pour cancels the cylinder and the grip: the same
thing a person does by feeling the weight before pouring. Conditioning is the initial and target mass in grams,
scaled by a fixed 100 g (not by training statistics: a run that saw one pair only would divide by zero).

Why a "remaining" output (HeadConfig.remaining, `anytouch train --remaining-weight`): a head cloned from a few dozen
demonstrations learns when the expert retracted, but not what the retract depends on. Asking the same layers for the
grams the expert still poured after each tick (read from the demonstrations' scale) makes them keep what the pour has
left. The decision still comes from the three logits alone; the estimate is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.policy.config import CONDITIONING_SCALE_G, REMAINING_SCALE_G, HeadConfig


class PolicyHead(nn.Module):
    """Embeddings (+ episode reference) + conditioning -> action logits (+ the grams still to pour)."""

    logit_adjust: torch.Tensor  # a buffer (train.loop sets it from the class balance)

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.norm = nn.BatchNorm1d(config.feature_dim, affine=False)  # running stats keep the magnitude of e - r
        layers: list[nn.Module] = []
        width = config.feature_dim + config.conditioning
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden
        layers.append(nn.Linear(width, config.outputs))
        self.mlp = nn.Sequential(*layers)
        # Added to the logits when deciding: -log(class weight) undoes the shift a class-weighted loss puts into the
        # logits (logit adjustment), so the decision follows the demonstrations' own class balance.
        self.register_buffer("logit_adjust", torch.zeros(len(Action)))

    def features(self, emb: torch.Tensor, ref: torch.Tensor | None) -> torch.Tensor:
        """(B, K, D) embeddings and (B, K, D) references -> (B, feature_dim) before normalisation."""
        c = self.config
        if emb.ndim != 3 or tuple(emb.shape[1:]) != (c.sensors, c.embed_dim):
            raise ConfigError(f"policy head takes embeddings (B, {c.sensors}, {c.embed_dim}), got {tuple(emb.shape)}")
        if not c.reference:
            return emb.flatten(1)
        if ref is None or ref.shape != emb.shape:
            raise ConfigError(f"policy head needs reference embeddings of shape {tuple(emb.shape)}")
        return torch.stack([emb, emb - ref], dim=2).flatten(1)

    def forward(self, emb: torch.Tensor, ref: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        """(B, K, D), (B, K, D) or None, (B, C) grams already scaled -> (B, outputs): the logits as trained, then
        (with config.remaining) the grams still to pour / REMAINING_SCALE_G (`logits`, `remaining_g` split them)."""
        x = self.norm(self.features(emb, ref))
        if self.config.conditioning:
            x = torch.cat([x, cond.to(x.dtype)], dim=1)
        return self.mlp(x)

    @staticmethod
    def logits(out: torch.Tensor) -> torch.Tensor:
        """(B, outputs) -> (B, 3) the action logits as trained."""
        return out[:, :len(Action)]

    def remaining_g(self, out: torch.Tensor) -> torch.Tensor | None:
        """(B, outputs) -> (B,) the estimated grams still to pour, or None for a head without that output."""
        return out[:, len(Action)] * REMAINING_SCALE_G if self.config.remaining else None

    def decision_logits(self, out: torch.Tensor) -> torch.Tensor:
        """(B, outputs) -> the (B, 3) logits a decision takes the argmax / softmax of."""
        logits = self.logits(out)
        return logits + self.logit_adjust.to(logits.dtype)


def conditioning_vector(names: Sequence[str], *, initial_g: float, target_g: float) -> np.ndarray:
    """The head's conditioning input for one decision: the named grams / CONDITIONING_SCALE_G."""
    if not 0.0 < target_g < initial_g:
        raise ConfigError(f"need 0 < target_g < initial_g, got initial_g={initial_g}, target_g={target_g}")
    values = {"initial_g": initial_g, "target_g": target_g}
    return np.asarray([values[n] / CONDITIONING_SCALE_G for n in names], np.float32)


@dataclass(frozen=True)
class Decision:
    action: Action
    probs: np.ndarray  # (3,) softmax over Action order POUR, WAIT, RETRACT
    remaining_g: float | None = None  # the head's estimate of the grams still to pour (heads with that output)
