"""The official MAE decoder (HF ViTLayer blocks, transformers 4.42 key names) converts and predicts the same pixels."""

import pytest
import torch
from open_clip.pos_embed import get_2d_sincos_pos_embed
from safetensors.torch import save_file
from torch import nn
from transformers import ViTConfig
from transformers.models.vit.modeling_vit import ViTLayer

from anytouch_policy.errors import CheckpointError
from anytouch_policy.model.config import load_preset
from anytouch_policy.pretrain.checkpoint import load_decoder
from anytouch_policy.pretrain.convert_decoder import convert_decoder_checkpoint, convert_decoder_state
from anytouch_policy.pretrain.masking import random_tube_mask

ENC = load_preset("anytouch-tiny")  # output_dim 32, 16 patches, 5 sensor tokens
WIDTH, LAYERS, HEADS = 24, 2, 2
#: transformers 5 ViTLayer names -> the 4.42 names the official checkpoint carries
V5_TO_V4 = {"attention.q_proj": "attention.attention.query", "attention.k_proj": "attention.attention.key",
            "attention.v_proj": "attention.attention.value", "attention.o_proj": "attention.output.dense",
            "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}


class OfficialDecoder(nn.Module):
    """The official decoder, written from the reference facts (section 2), on HF ViTLayer blocks."""

    def __init__(self):
        super().__init__()
        cfg = ViTConfig(hidden_size=WIDTH, num_attention_heads=HEADS, intermediate_size=4 * WIDTH,
                        attn_implementation="eager")
        self.decoder_embed = nn.Linear(ENC.output_dim, WIDTH)
        self.mask_token = nn.Parameter(torch.randn(1, 1, WIDTH))
        table = get_2d_sincos_pos_embed(WIDTH, ENC.grid, cls_token=True)
        self.decoder_pos_embed = nn.Parameter(torch.from_numpy(table).float().unsqueeze(0), requires_grad=False)
        self.touch_decoder_blocks = nn.ModuleList(ViTLayer(cfg) for _ in range(LAYERS))
        self.decoder_norm = nn.LayerNorm(WIDTH, eps=1e-12)
        self.decoder_pred = nn.Linear(WIDTH, 14 * 14 * 3)
        self.decoder_pred_video = nn.Linear(WIDTH, 14 * 14 * 3 * 4)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name != "decoder_pos_embed":
                    p.copy_((1.0 if "norm" in name and name.endswith("weight") else 0.0)
                            + 0.3 * torch.randn(p.shape))

    def forward(self, tokens, restore, video):
        x = self.decoder_embed(tokens)
        b, length, d = x.shape
        masked = self.mask_token.repeat(b, restore.shape[1] + 6 - length, 1)
        patches = torch.cat([x[:, 6:], masked], dim=1)
        patches = torch.gather(patches, 1, restore.unsqueeze(-1).repeat(1, 1, d))
        x = torch.cat([x[:, :1] + self.decoder_pos_embed[:, :1], x[:, 1:6], patches + self.decoder_pos_embed[:, 1:]],
                      dim=1)
        for block in self.touch_decoder_blocks:
            x = block(x)
        x = self.decoder_norm(x)
        out = (self.decoder_pred_video if video else self.decoder_pred)(x)[:, 6:]
        return out.view(b, restore.shape[1], 4, -1) if video else out

    def official_state(self):
        state = {}
        for key, value in self.state_dict().items():
            for new, old in V5_TO_V4.items():
                key = key.replace(f".{new}.", f".{old}.")
            state[f"touch_mae_model.{key}"] = value
        return state


@pytest.fixture
def official():
    torch.manual_seed(0)
    return OfficialDecoder().eval()


def test_converted_decoder_predicts_what_the_official_one_does(official, tmp_path):
    state = official.official_state() | {"text_projection.weight": torch.randn(4, 4),
                                         "touch_mae_model.sensor_token": torch.randn(10, 5, 64)}
    decoder = convert_decoder_state(state, ENC, heads=HEADS).eval()
    assert (decoder.config.width, decoder.config.layers, decoder.config.mlp_ratio) == (WIDTH, LAYERS, 4.0)
    mask = random_tube_mask(3, 16, 0.75, generator=torch.Generator().manual_seed(1))
    tokens = torch.randn(3, 6 + 4, ENC.output_dim)
    with torch.no_grad():
        for video in (False, True):
            ref = official(tokens, mask.restore, video)
            ours = decoder.predict_video(tokens, mask.restore) if video else decoder.predict_image(tokens,
                                                                                                  mask.restore)
            assert torch.allclose(ours, ref, atol=1e-5), (video, float((ours - ref).abs().max()))
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "ckpt.safetensors")
    config = convert_decoder_checkpoint(tmp_path / "ckpt.safetensors", tmp_path / "dec", ENC, heads=HEADS)
    reloaded = load_decoder(tmp_path / "dec", ENC)
    assert reloaded.config == config
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), decoder.state_dict().values(),
                                                 strict=True))


def test_conversion_lists_what_does_not_fit(official):
    state = official.official_state()
    broken = dict(state)
    del broken["touch_mae_model.touch_decoder_blocks.1.output.dense.weight"]
    broken["touch_mae_model.decoder_extra.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match=r"missing blocks.resblocks.1.mlp.c_proj.weight(.|\n)*"
                                              r"unmapped decoder_extra.weight"):
        convert_decoder_state(broken, ENC, heads=HEADS)
    shifted = dict(state)
    shifted["touch_mae_model.decoder_pos_embed"] = state["touch_mae_model.decoder_pos_embed"].flip(1)
    with pytest.raises(CheckpointError, match="not the fixed 2-D sin-cos table"):
        convert_decoder_state(shifted, ENC, heads=HEADS)
    with pytest.raises(CheckpointError, match="holds no MAE decoder"):
        convert_decoder_state({"touch_mae_model.sensor_token": torch.zeros(1)}, ENC)
    with pytest.raises(CheckpointError, match="decoder_embed takes 32 features, the encoder gives 256"):
        convert_decoder_state(state, load_preset("anytouch-small"), heads=HEADS)
