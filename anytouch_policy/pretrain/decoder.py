"""The masked-modelling decoder of AnyTouch stage 1, in the official layout (reference doc section 2).

    encoder hidden (B, 1 + K + N_keep, width) -> project_tokens (no ln_post)     (B, 1 + K + N_keep, output_dim)
      -> decoder_embed                                                           (B, 1 + K + N_keep, D)
      -> patches + mask tokens, unshuffled with `restore`                        (B, N, D)
      -> [CLS + pos[0], K sensor tokens (no pos), patches + pos[1:]]            (B, 1 + K + N, D)
      -> blocks -> norm -> drop the 1 + K prefix tokens                          (B, N, D)
      -> image head (P*P*3) or video head (4 x P*P*3: the 3 input frames + the next frame)

The position embedding is the fixed 2-D sin-cos table (spatial only, zeros for CLS), a buffer, never trained.
"""

from __future__ import annotations

from functools import partial

import torch
from open_clip.pos_embed import get_2d_sincos_pos_embed
from open_clip.transformer import LayerNorm, Transformer
from torch import nn

from anytouch_policy.errors import ConfigError
from anytouch_policy.model.config import EncoderConfig
from anytouch_policy.pretrain.config import DecoderConfig

#: Frames the video head predicts: the 3 encoder inputs and the next frame.
VIDEO_TARGET_FRAMES = 4


class MaskedDecoder(nn.Module):
    """Reconstructs pixels of every patch token from the visible encoder tokens (MAE decoder + sensor tokens)."""

    pos_embed: torch.Tensor  # a buffer: fixed 2-D sin-cos positions

    def __init__(self, config: DecoderConfig, encoder: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder_config = encoder
        self.prefix = 1 + encoder.tokens_per_sensor
        self.num_patches = encoder.num_patches
        pixels = encoder.patch_size * encoder.patch_size * 3
        self.decoder_embed = nn.Linear(encoder.output_dim, config.width)
        self.mask_token = nn.Parameter(0.02 * torch.randn(1, 1, config.width))
        table = get_2d_sincos_pos_embed(config.width, encoder.grid, cls_token=True)
        self.register_buffer("pos_embed", torch.from_numpy(table).float().unsqueeze(0), persistent=False)
        norm = partial(LayerNorm, eps=config.ln_eps)
        self.blocks = Transformer(config.width, config.layers, config.heads, config.mlp_ratio, act_layer=nn.GELU,
                                  norm_layer=norm)
        self.norm = norm(config.width)
        self.image_head = nn.Linear(config.width, pixels)
        self.video_head = nn.Linear(config.width, pixels * VIDEO_TARGET_FRAMES)
        self._init_weights()

    def _init_weights(self) -> None:
        """MAE's initialisation: xavier-uniform linears with zero bias, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def hidden(self, tokens: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """Projected encoder tokens (B, 1 + K + N_keep, output_dim) -> decoded patch tokens (B, N, width)."""
        batch, length, _ = tokens.shape
        n_keep = length - self.prefix
        if restore.shape != (batch, self.num_patches) or not 0 < n_keep <= self.num_patches:
            raise ConfigError(f"decoder: {length} tokens with a {self.prefix}-token prefix and restore "
                              f"{tuple(restore.shape)} do not fit {self.num_patches} patches")
        x = self.decoder_embed(tokens)
        masked = self.mask_token.to(x.dtype).expand(batch, self.num_patches - n_keep, -1)
        patches = torch.cat([x[:, self.prefix:], masked], dim=1)
        patches = torch.gather(patches, 1, restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        pos = self.pos_embed.to(x.dtype)
        seq = torch.cat([x[:, :1] + pos[:, :1], x[:, 1:self.prefix], patches + pos[:, 1:]], dim=1)
        return self.norm(self.blocks(seq))[:, self.prefix:]

    def predict_image(self, tokens: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """(B, N, P*P*3): the static image's pixels per token."""
        return self.image_head(self.hidden(tokens, restore))

    def predict_video(self, tokens: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """(B, N, 4, P*P*3): per token, the 3 input frames then the next frame."""
        out = self.video_head(self.hidden(tokens, restore))
        return out.view(out.shape[0], out.shape[1], VIDEO_TARGET_FRAMES, -1)
