"""What trains in each mode, as one module each so DDP wraps a single object.

Frozen: cached embeddings (B, K, D) + the episode reference embeddings -> head.
Finetune: windows (B, K, 3, 3, S, S) -> encoder -> head; the references of the U episodes in the batch are encoded
once, with gradients, and gathered per sample (B, K, D) by `ref_index`. A `last:N` fine-tune may pass the token
states before its first trained block instead of the windows (`start`).
"""

from __future__ import annotations

import torch
from torch import nn

from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.policy.head import PolicyHead


class FrozenNet(nn.Module):
    def __init__(self, head: PolicyHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, emb: torch.Tensor, ref: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        return self.head(emb, ref, cond)


class FinetuneNet(nn.Module):
    slots: torch.Tensor  # a buffer: each window's token slot
    def __init__(self, encoder: AnyTouchEncoder, head: PolicyHead, slots: list[int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.register_buffer("slots", torch.tensor(slots, dtype=torch.long), persistent=False)

    def embed(self, x: torch.Tensor, start: int | None = None) -> torch.Tensor:
        """(B, K, T, 3, S, S) windows -> (B, K, D): every sensor's window with its token slot, in one pass. With
        `start`, x holds the windows' token states (B, K, L, width) before block `start` (a `last:N` fine-tune's
        frozen blocks, run once: trainers.CachedPrefixTrainer)."""
        b, k = x.shape[:2]
        if start is None:
            out = self.encoder(x.flatten(0, 1), self.slots.repeat(b))
        else:
            out = self.encoder.pool(self.encoder.run_blocks(x.flatten(0, 1), start))
        return out.view(b, k, -1)

    def forward(self, windows: torch.Tensor, ref_windows: torch.Tensor | None, ref_index: torch.Tensor | None,
                cond: torch.Tensor, start: int | None = None) -> torch.Tensor:
        emb = self.embed(windows, start)
        ref = None if ref_windows is None else self.embed(ref_windows, start)[ref_index]
        return self.head(emb, ref, cond)
