"""A random AnyTouch touch encoder in the official layout (Hugging Face CLIP modules) and checkpoints saved from it.

The reference forward is written here from the facts of the official code (reference doc, section 1):
Conv3d video_patch_embedding over (B, T, C, H, W); patches + pos[1:]; CLS + pos[0]; sensor_token[slot] (5 tokens, no
pos); pre_layrnorm; CLIP encoder; post_layernorm on CLS; touch_projection (no bias). transformers 5 merged
CLIPVisionTransformer into CLIPVisionModel with the same attribute names, so `touch_model.*` keys match the release.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel


class OfficialTouchEncoder(nn.Module):
    """The touch-encoder part of the official TactileVideoMAE, with the same attribute (= state_dict key) names."""

    def __init__(self, *, width: int, layers: int, heads: int, mlp: int, image_size: int, patch: int,
                 projection: int) -> None:
        super().__init__()
        config = CLIPVisionConfig(hidden_size=width, intermediate_size=mlp, num_hidden_layers=layers,
                                  num_attention_heads=heads, image_size=image_size, patch_size=patch,
                                  hidden_act="gelu", layer_norm_eps=1e-5, attn_implementation="eager")
        self.touch_model = CLIPVisionModel(config)
        self.touch_projection = nn.Linear(width, projection, bias=False)
        self.video_patch_embedding = nn.Conv3d(3, width, kernel_size=(3, patch, patch), stride=(3, patch, patch),
                                               bias=False)
        self.video_position_embedding = nn.Embedding(self.touch_model.embeddings.num_positions, width)
        self.sensor_token = nn.Parameter(torch.zeros(10, 5, width))
        gen = torch.Generator().manual_seed(width + layers)
        with torch.no_grad():  # every tensor random (layer norms too), so a mis-mapped tensor cannot hide
            for name, p in self.named_parameters():
                if "norm" in name and name.endswith("weight"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen) / max(1, p.shape[-1]) ** 0.25)

    def forward(self, x: torch.Tensor, sensor_type: torch.Tensor) -> torch.Tensor:
        emb = self.touch_model.embeddings
        batch = x.shape[0]
        patches = self.video_patch_embedding(x).flatten(2).transpose(1, 2)
        pos = emb.position_embedding(emb.position_ids)
        patches = patches + pos[:, 1:, :]
        cls = (emb.class_embedding + pos[:, 0, :]).expand(batch, 1, -1)
        seq = torch.cat([cls, self.sensor_token[sensor_type], patches], dim=1)
        hidden = self.touch_model.encoder(inputs_embeds=self.touch_model.pre_layrnorm(seq)).last_hidden_state
        return self.touch_projection(self.touch_model.post_layernorm(hidden[:, 0, :]))


def decoder_tensors(width: int, projection: int) -> dict[str, torch.Tensor]:
    """Stand-ins for the MAE decoder tensors a checkpoint carries next to the encoder (ignored by the converter)."""
    return {
        "decoder_embed.weight": torch.randn(16, projection),
        "decoder_embed.bias": torch.randn(16),
        "decoder_pos_embed": torch.randn(1, 17, 16),
        "touch_decoder_blocks.0.attention.attention.query.weight": torch.randn(16, 16),
        "decoder_norm.weight": torch.randn(16),
        "decoder_pred.weight": torch.randn(588, 16),
        "decoder_pred_video.weight": torch.randn(2352, 16),
        "mask_token": torch.randn(1, 1, 16),
    }


def stage2_extras(width: int) -> dict[str, torch.Tensor]:
    """CLIP text/vision towers and alignment heads of a stage-2 checkpoint (ignored by the converter)."""
    return {
        "text_model.embeddings.token_embedding.weight": torch.randn(50, 8),
        "text_projection.weight": torch.randn(8, 8),
        "vision_model.encoder.layers.0.self_attn.q_proj.base_layer.weight": torch.randn(width, width),
        "vision_model.encoder.layers.0.self_attn.q_proj.lora_A.default.weight": torch.randn(4, width),
        "visual_projection.weight": torch.randn(8, width),
        "logit_scale": torch.tensor(2.6592),
        "cross_sensor_head.weight": torch.randn(1, 8),
        "cross_sensor_head.bias": torch.randn(1),
    }


@dataclass
class OfficialCase:
    """A reference model, its checkpoint file and the CLI flags its conversion needs."""

    name: str
    model: OfficialTouchEncoder
    path: Path
    heads_flag: list[str]
    image_size: int


def save_official(model: OfficialTouchEncoder, path: Path, *, stage: int, projection: int, width: int) -> None:
    """Save as the official `save_model` does: {'model', 'optimizer', 'epoch', 'args' (argparse.Namespace)}."""
    state = dict(model.state_dict()) | decoder_tensors(width, projection)
    if stage == 2:
        state = {f"touch_mae_model.{k}": v for k, v in state.items()}
        state["touch_mae_model.touch_model.embeddings.position_ids"] = torch.arange(
            model.touch_model.embeddings.num_positions).unsqueeze(0)  # persistent in older transformers
        state |= stage2_extras(width)
    args = argparse.Namespace(use_sensor_token=True, use_same_patchemb=True, mask_ratio=0.75, lr=2e-4)
    torch.save({"model": state, "optimizer": {}, "epoch": 19, "scaler": {}, "args": args}, path)


@pytest.fixture(scope="session")
def official_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OfficialCase]:
    """Stage-1: width 64 with 4 heads (needs --heads), MLP x2, 42 px. Stage-2: width 128, 2 heads (inferred), 56 px."""
    root = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    cases = {}
    stage1 = OfficialTouchEncoder(width=64, layers=2, heads=4, mlp=128, image_size=42, patch=14, projection=32).eval()
    save_official(stage1, root / "stage1.pth", stage=1, projection=32, width=64)
    cases["stage1"] = OfficialCase("stage1", stage1, root / "stage1.pth", ["--heads", "4"], 42)
    stage2 = OfficialTouchEncoder(width=128, layers=2, heads=2, mlp=512, image_size=56, patch=14, projection=48).eval()
    save_official(stage2, root / "stage2.pth", stage=2, projection=48, width=128)
    cases["stage2"] = OfficialCase("stage2", stage2, root / "stage2.pth", [], 56)
    return cases
