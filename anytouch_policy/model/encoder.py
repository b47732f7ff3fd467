"""The AnyTouch touch encoder on open_clip's transformer blocks, in the official token layout.

Shape contract (S = image_size, P = patch_size, N = (S/P)^2, K = tokens_per_sensor):

    x (B, T=3, 3, S, S) float, ImageNet-normalised, oldest frame first
      -> Conv3d tubelet over (frames as channels, RGB as depth)      (B, N, width) + spatial pos[1:]
      -> [CLS + pos[0], sensor_tokens[slot] (K, no pos), patches]     (B, 1 + K + N, width)
      -> ln_pre -> transformer                                          forward_tokens(): last hidden states
      -> ln_post(CLS) @ proj                                            forward(): (B, output_dim)

The official code feeds (B, T, C, H, W) straight into `nn.Conv3d(in_channels=3, kernel=(3, P, P))`, so Conv3d
reads the frame axis as channels and RGB as depth: the tubelet weight is indexed [out, frame, rgb, y, x]. We keep
that exact layout so the released weight copies 1:1 (permuting it would silently give a different model).
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Annotated

import torch
from open_clip.transformer import LayerNorm, Transformer
from pydantic import model_validator
from torch import nn
from torch.utils.checkpoint import checkpoint

from anytouch_policy.bounds import NONNEGATIVE
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.config import EncoderConfig, load_preset
from anytouch_policy.schema import config


class FinetuneMode(StrEnum):
    """Which encoder parameters train."""

    FROZEN = "frozen"  # nothing: the encoder is a fixed feature extractor (embeddings can be cached)
    LAST = "last"  # the last N blocks + ln_post + proj; backward stops at the first trainable block
    ALL = "all"  # every parameter, sensor tokens, tubelet and position embedding included


@config
class Finetune:
    """A fine-tuning choice: `Finetune.parse("frozen" | "all" | "last:N")`.

    In LAST mode the sensor tokens, tubelet, CLS/position embeddings and ln_pre stay frozen: they sit at the input,
    so training them would need a backward pass through every frozen block, which is what last-N avoids.
    """

    mode: FinetuneMode
    last_n: Annotated[int, NONNEGATIVE] = 0

    @model_validator(mode="after")
    def _n_for_last(self) -> Finetune:
        if (self.mode is FinetuneMode.LAST) != (self.last_n > 0):
            raise ValueError(f"finetune: mode 'last' needs last_n >= 1 and other modes last_n = 0, "
                             f"got mode={self.mode.value!r} last_n={self.last_n}")
        return self

    @property
    def label(self) -> str:
        return f"last:{self.last_n}" if self.mode is FinetuneMode.LAST else self.mode.value

    @classmethod
    def parse(cls, text: str) -> Finetune:
        head, _, tail = text.strip().lower().partition(":")
        try:
            mode = FinetuneMode(head)
            return cls(mode, int(tail) if tail else 0)
        except ValueError:
            raise ConfigError(f"finetune: expected 'frozen', 'all' or 'last:N' (N >= 1), got {text!r}") from None


class AnyTouchEncoder(nn.Module):
    """AnyTouch touch encoder: a 3-frame clip and a sensor-token slot -> one embedding.

    Parameter names follow open_clip's VisionTransformer (class_embedding, positional_embedding, ln_pre,
    transformer.resblocks.N.*, ln_post, proj) plus `tubelet` (the Conv3d) and `sensor_tokens`.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        scale = c.width ** -0.5
        norm = partial(LayerNorm, eps=c.ln_eps)
        self.tubelet = nn.Conv3d(c.frames, c.width, kernel_size=(3, c.patch_size, c.patch_size),
                                 stride=(3, c.patch_size, c.patch_size), bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(c.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(c.num_patches + 1, c.width))
        self.sensor_tokens = nn.Parameter(0.02 * torch.randn(c.sensor_slots, c.tokens_per_sensor, c.width))
        self.ln_pre = norm(c.width)
        self.transformer = Transformer(c.width, c.layers, c.heads, c.mlp_ratio, act_layer=nn.GELU, norm_layer=norm)
        self.ln_post = norm(c.width)
        self.proj = nn.Parameter(scale * torch.randn(c.width, c.output_dim))

    @classmethod
    def from_preset(cls, name: str) -> AnyTouchEncoder:
        """A randomly initialised encoder of a shipped preset (weights come from a bundle)."""
        return cls(load_preset(name))

    @property
    def prefix_tokens(self) -> int:
        """Tokens before the patches in forward_tokens' output: CLS + the sensor tokens."""
        return 1 + self.config.tokens_per_sensor

    def _check_inputs(self, x: torch.Tensor, sensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if x.ndim != 5 or tuple(x.shape[1:]) != (c.frames, 3, c.image_size, c.image_size):
            raise ConfigError(f"encoder input must be (B, {c.frames}, 3, {c.image_size}, {c.image_size}), "
                              f"got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ConfigError("encoder input is an empty batch")
        if sensor.ndim != 1 or sensor.shape[0] != x.shape[0] or sensor.dtype != torch.long:
            raise ConfigError(f"sensor must be a LongTensor of shape ({x.shape[0]},), "
                              f"got {sensor.dtype} {tuple(sensor.shape)}")
        if int(sensor.min()) < -c.sensor_slots or int(sensor.max()) >= c.sensor_slots:
            raise ConfigError(f"sensor slots must be in [-{c.sensor_slots}, {c.sensor_slots - 1}], "
                              f"got {sensor.tolist()}")
        return x.to(self.tubelet.weight.dtype), sensor.to(self.sensor_tokens.device)

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) -> patch tokens (B, N, width) with the spatial position embedding added."""
        patches = self.tubelet(x).flatten(2).transpose(1, 2)  # (B, width, 1, g, g) -> (B, N, width)
        return patches + self.positional_embedding[1:]

    def forward_tokens(self, x: torch.Tensor, sensor: torch.Tensor, *,
                       keep: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (B, 1 + K + N', width), before ln_post.

        `keep` (B, N') LongTensor of patch indices keeps only those patch tokens (after the position embedding,
        as MAE masking does); None keeps all N.
        """
        return self.transformer(self.input_tokens(x, sensor, keep=keep))

    def input_tokens(self, x: torch.Tensor, sensor: torch.Tensor, *,
                     keep: torch.Tensor | None = None) -> torch.Tensor:
        """The sequence the first block reads (B, 1 + K + N', width): ln_pre([CLS, sensor tokens, patches])."""
        x, sensor = self._check_inputs(x, sensor)
        patches = self.embed_patches(x)
        if keep is not None:
            patches = torch.gather(patches, 1, keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        cls = (self.class_embedding + self.positional_embedding[0]).expand(x.shape[0], 1, -1)
        seq = torch.cat([cls, self.sensor_tokens[sensor], patches], dim=1)
        return self.ln_pre(seq)

    def run_blocks(self, seq: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Blocks start..stop-1 on a token sequence (B, L, width): run_blocks(input_tokens(x, s)) is
        forward_tokens(x, s), and a `last:N` fine-tune can run the frozen blocks once and the trained ones per step."""
        for block in self.transformer.resblocks[start:stop]:
            if self.transformer.grad_checkpointing and torch.is_grad_enabled():
                seq = checkpoint(block, seq, use_reentrant=False)
            else:
                seq = block(seq)
        return seq

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """Last hidden states -> embedding (B, output_dim): ln_post on CLS, then the projection."""
        return self.ln_post(hidden[:, 0]) @ self.proj

    def project_tokens(self, hidden: torch.Tensor) -> torch.Tensor:
        """Every token through the projection without ln_post, as the official MAE decoder input is built."""
        return hidden @ self.proj

    def forward(self, x: torch.Tensor, sensor: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) clips and (B,) sensor slots -> (B, output_dim) embeddings."""
        return self.pool(self.forward_tokens(x, sensor))

    def set_finetune(self, finetune: Finetune) -> None:
        """Set requires_grad on every parameter for `finetune` (see FinetuneMode for what trains)."""
        if finetune.mode is FinetuneMode.LAST and finetune.last_n > self.config.layers:
            raise ConfigError(f"finetune last:{finetune.last_n} exceeds the encoder's {self.config.layers} blocks")
        train_all = finetune.mode is FinetuneMode.ALL
        for p in self.parameters():
            p.requires_grad_(train_all)
        if finetune.mode is FinetuneMode.LAST:
            for block in self.transformer.resblocks[-finetune.last_n:]:
                block.requires_grad_(True)
            self.ln_post.requires_grad_(True)
            self.proj.requires_grad_(True)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward (less memory when fine-tuning the large preset)."""
        self.transformer.grad_checkpointing = enable
