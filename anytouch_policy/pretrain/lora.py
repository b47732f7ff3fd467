"""LoRA on the q, k, v and out projections of open_clip's attention (nn.MultiheadAttention, packed in_proj).

The official code puts peft LoRA (r=16, alpha=16, dropout 0) on the HF CLIP vision tower's separate q/k/v/out
linears. open_clip packs q, k and v into one `in_proj_weight` (3D x D, rows q | k | v), so here each projection
gets its own low-rank pair (A_i: r x D, B_i: D x r) and the update lands on its own block of rows:

    W_q' = W_q + (alpha / r) B_q A_q,   likewise k, v (rows D..2D, 2D..3D of in_proj) and out_proj

B starts at zero, so a fresh adapter is an exact no-op. Without LoRA dropout (the default) the update is merged
into the weights for each forward and the attention runs through the same torch function as nn.MultiheadAttention,
giving bit-identical outputs at initialisation; with dropout the low-rank path is applied to the dropped-out input,
as peft does. The base weights keep their state_dict names; the adapters add `lora_a` / `lora_b`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from anytouch_policy.errors import ConfigError
from anytouch_policy.pretrain.config import LoraConfig

#: Order of the adapters in lora_a / lora_b: the three packed in_proj blocks, then out_proj.
PROJECTIONS = ("q", "k", "v", "out")


class LoraMultiheadAttention(nn.Module):
    """Self-attention with the parameters of `base` (frozen by the caller) plus trainable LoRA adapters."""

    def __init__(self, base: nn.MultiheadAttention, config: LoraConfig) -> None:
        super().__init__()
        if not base._qkv_same_embed_dim or base.bias_k is not None or base.add_zero_attn:
            raise ConfigError("LoRA: only packed-projection self-attention without bias_k/zero_attn is supported")
        self.embed_dim = base.embed_dim
        self.num_heads = base.num_heads
        self.batch_first = base.batch_first
        self.dropout = base.dropout
        self.in_proj_weight = base.in_proj_weight
        self.in_proj_bias = base.in_proj_bias
        self.out_proj = base.out_proj
        self.config = config
        d, r = self.embed_dim, config.rank
        ref = base.in_proj_weight
        self.lora_a = nn.Parameter(torch.empty(len(PROJECTIONS), r, d, device=ref.device, dtype=ref.dtype))
        self.lora_b = nn.Parameter(torch.zeros(len(PROJECTIONS), d, r, device=ref.device, dtype=ref.dtype))
        for i in range(len(PROJECTIONS)):  # peft's lora_A init (nn.Linear default), B = 0
            nn.init.kaiming_uniform_(self.lora_a.data[i], a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(config.dropout)

    def delta(self) -> torch.Tensor:
        """(4, D, D): scaling * B_i A_i for q, k, v, out."""
        return self.config.scaling * torch.bmm(self.lora_b, self.lora_a)

    def merged_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(in_proj_weight, out_proj.weight) with the adapters added."""
        d = self.delta()
        return self.in_proj_weight + d[:3].reshape(3 * self.embed_dim, self.embed_dim), self.out_proj.weight + d[3]

    def _low_rank(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.config.scaling * F.linear(F.linear(self.lora_dropout(x), self.lora_a[i]), self.lora_b[i])

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, need_weights: bool = False,
                attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """Same call and result layout as nn.MultiheadAttention (open_clip's blocks call it this way)."""
        if key is not query or value is not query:
            raise ConfigError("LoRA attention supports self-attention only (query, key and value the same tensor)")
        if need_weights:
            raise ConfigError("LoRA attention does not return attention weights")
        if self.config.dropout == 0 or not self.training:
            return self._merged(query, attn_mask), None
        return self._unmerged(query, attn_mask), None

    def _merged(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        w_in, w_out = self.merged_weights()
        x_t = x.transpose(1, 0) if self.batch_first else x
        out, _ = F.multi_head_attention_forward(
            x_t, x_t, x_t, self.embed_dim, self.num_heads, w_in, self.in_proj_bias, None, None, False, self.dropout,
            w_out, self.out_proj.bias, training=self.training, need_weights=False, attn_mask=attn_mask)
        return out.transpose(1, 0) if self.batch_first else out

    def _unmerged(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        if not self.batch_first:
            x = x.transpose(0, 1)
        batch, length, d = x.shape
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
        heads = []
        for i, (w, b) in enumerate(((w_q, b_q), (w_k, b_k), (w_v, b_v))):
            proj = F.linear(x, w, b) + self._low_rank(x, i)
            heads.append(proj.view(batch, length, self.num_heads, d // self.num_heads).transpose(1, 2))
        q, k, v = heads
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                              dropout_p=self.dropout if self.training else 0.0)
        attn = attn.transpose(1, 2).reshape(batch, length, d)
        out = self.out_proj(attn) + self._low_rank(attn, 3)
        return out if self.batch_first else out.transpose(0, 1)


def add_lora(module: nn.Module, config: LoraConfig) -> int:
    """Freeze `module` and replace every nn.MultiheadAttention inside it by a LoRA one; returns how many.

    Afterwards exactly the adapters' parameters require grad.
    """
    module.requires_grad_(False)
    targets = [(name, child) for name, child in module.named_modules() if isinstance(child, nn.MultiheadAttention)]
    if not targets:
        raise ConfigError(f"LoRA: no nn.MultiheadAttention found in {type(module).__name__}")
    for name, child in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, LoraMultiheadAttention(child, config))
    return len(targets)


def lora_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The adapters' parameters inside `module`."""
    return [p for m in module.modules() if isinstance(m, LoraMultiheadAttention) for p in (m.lora_a, m.lora_b)]
