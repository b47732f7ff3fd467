"""What trains in each mode, as one module each so DDP wraps a single object.

Frozen: cached embeddings (B, K, D) + the episode reference embeddings -> head.
Finetune: windows (B, K, 3, 3, S, S) -> encoder -> head; the references of the U episodes in the batch are encoded
once, with gradients, and gathered per sample (B, K, D) by `ref_index`.
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
    def __init__(self, encoder: AnyTouchEncoder, head: PolicyHead, slots: list[int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.register_buffer("slots", torch.tensor(slots, dtype=torch.long), persistent=False)

    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, K, T, 3, S, S) -> (B, K, D): every sensor's window with its token slot, in one pass."""
        b, k = windows.shape[:2]
        out = self.encoder(windows.flatten(0, 1), self.slots.repeat(b))
        return out.view(b, k, -1)

    def forward(self, windows: torch.Tensor, ref_windows: torch.Tensor | None, ref_index: torch.Tensor | None,
                cond: torch.Tensor) -> torch.Tensor:
        emb = self.embed(windows)
        ref = None if ref_windows is None else self.embed(ref_windows)[ref_index]
        return self.head(emb, ref, cond)
