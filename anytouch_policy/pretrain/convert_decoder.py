"""Convert the MAE decoder of a released AnyTouch checkpoint (HF ViTLayer names) into a `mae_decoder/` folder.

Stage 1 on top of the released encoder should continue with the decoder trained with it: a fresh decoder sends
large, random gradients into the pretrained encoder for the first few hundred steps. Both official stages save it
(stage 2 under `touch_mae_model.`). Names as transformers 4.42 writes them:

official (after the prefix)                                   ours (MaskedDecoder)
decoder_embed.{weight,bias}                                   decoder_embed
mask_token (1, 1, D)                                          mask_token
decoder_pos_embed (1, 1 + N, D), fixed sin-cos                not stored: checked against our table
touch_decoder_blocks.N.attention.attention.{query,key,value}  blocks.resblocks.N.attn.in_proj_{weight,bias} (packed)
  .attention.output.dense / .intermediate.dense / .output.dense   .attn.out_proj / .mlp.c_fc / .mlp.c_proj
  .layernorm_before / .layernorm_after                          .ln_1 / .ln_2
decoder_norm / decoder_pred / decoder_pred_video              norm / image_head / video_head
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from anytouch_policy.errors import CheckpointError
from anytouch_policy.model.config import EncoderConfig
from anytouch_policy.model.convert_official import STAGE2_PREFIX, read_checkpoint
from anytouch_policy.outputs import check_output_dir
from anytouch_policy.pretrain.checkpoint import DECODER_FOLDER, save_decoder
from anytouch_policy.pretrain.config import DecoderConfig
from anytouch_policy.pretrain.decoder import MaskedDecoder

#: The official decoder's heads (ViTConfig num_attention_heads); the tensors do not reveal it.
OFFICIAL_DECODER_HEADS = 16

_TOP = {"decoder_embed.weight": "decoder_embed.weight", "decoder_embed.bias": "decoder_embed.bias",
        "mask_token": "mask_token", "decoder_norm.weight": "norm.weight", "decoder_norm.bias": "norm.bias",
        "decoder_pred.weight": "image_head.weight", "decoder_pred.bias": "image_head.bias",
        "decoder_pred_video.weight": "video_head.weight", "decoder_pred_video.bias": "video_head.bias"}
_BLOCK = {"attention.output.dense": "attn.out_proj", "intermediate.dense": "mlp.c_fc", "output.dense": "mlp.c_proj",
          "layernorm_before": "ln_1", "layernorm_after": "ln_2"}
_QKV = ("query", "key", "value")
_BLOCK_RE = re.compile(r"^touch_decoder_blocks\.(\d+)\.(.+)\.(weight|bias)$")
_DECODER_PREFIXES = ("decoder_", "touch_decoder_blocks.", "mask_token")


def _decoder_part(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    plain = {k.removeprefix(STAGE2_PREFIX): v for k, v in state.items()
             if not k.startswith(("text_", "vision_", "visual_"))}
    return {k: v for k, v in plain.items() if k.startswith(_DECODER_PREFIXES)}


def convert_decoder_state(state: Mapping[str, torch.Tensor], encoder: EncoderConfig, *,
                          heads: int = OFFICIAL_DECODER_HEADS) -> MaskedDecoder:
    """Map the official decoder tensors (stage-1 or stage-2 names) onto a MaskedDecoder for `encoder`."""
    official = _decoder_part(state)
    if "decoder_embed.weight" not in official:
        raise CheckpointError("checkpoint holds no MAE decoder (no decoder_embed.weight)")
    width, in_dim = official["decoder_embed.weight"].shape
    if in_dim != encoder.output_dim:
        raise CheckpointError(f"decoder_embed takes {in_dim} features, the encoder gives {encoder.output_dim}")
    layers = 1 + max((int(m.group(1)) for k in official if (m := _BLOCK_RE.match(k))), default=-1)
    fc = official.get("touch_decoder_blocks.0.intermediate.dense.weight")
    if layers < 1 or fc is None:
        raise CheckpointError("checkpoint decoder has no touch_decoder_blocks.0.* tensors")
    config = DecoderConfig(width=int(width), layers=layers, heads=heads, mlp_ratio=fc.shape[0] / width)
    renames = dict(_TOP)
    for n in range(layers):
        base = f"touch_decoder_blocks.{n}."
        renames |= {f"{base}{src}.{part}": f"blocks.resblocks.{n}.{dst}.{part}"
                    for src, dst in _BLOCK.items() for part in ("weight", "bias")}
    ours = {dst: official[src] for src, dst in renames.items() if src in official}
    used = {src for src in renames if src in official}
    for n in range(layers):
        base = f"touch_decoder_blocks.{n}."
        for part in ("weight", "bias"):
            keys = [f"{base}attention.attention.{q}.{part}" for q in _QKV]
            if all(k in official for k in keys):
                ours[f"blocks.resblocks.{n}.attn.in_proj_{part}"] = torch.cat([official[k] for k in keys])
                used.update(keys)
    decoder = MaskedDecoder(config, encoder)
    if "decoder_pos_embed" in official:
        used.add("decoder_pos_embed")
        saved = official["decoder_pos_embed"].float()
        if saved.shape != decoder.pos_embed.shape or not torch.allclose(saved, decoder.pos_embed, atol=1e-5):
            raise CheckpointError(f"decoder_pos_embed {list(saved.shape)} is not the fixed 2-D sin-cos table this "
                                  f"decoder uses {list(decoder.pos_embed.shape)}")
    expected = decoder.state_dict()
    problems = [f"missing {k} {list(v.shape)}" for k, v in expected.items() if k not in ours]
    problems += [f"unmapped {k}" for k in sorted(set(official) - used)]
    problems += [f"shape of {k}: checkpoint {list(ours[k].shape)} vs decoder {list(v.shape)}"
                 for k, v in expected.items() if k in ours and ours[k].shape != v.shape]
    if problems:
        raise CheckpointError("checkpoint decoder does not map onto MaskedDecoder:\n  " + "\n  ".join(problems))
    decoder.load_state_dict({k: v.float() for k, v in ours.items()})
    return decoder


def convert_decoder_checkpoint(src: Path | str, out_dir: Path | str, encoder: EncoderConfig, *,
                               heads: int = OFFICIAL_DECODER_HEADS, trust_pickle: bool = False,
                               overwrite: bool = False) -> DecoderConfig:
    """Read an official checkpoint and write its decoder as a `mae_decoder/`-style folder; returns its config."""
    check_output_dir(out_dir, DECODER_FOLDER, overwrite=overwrite)
    state, _ = read_checkpoint(src, trust_pickle=trust_pickle)
    decoder = convert_decoder_state(state, encoder, heads=heads)
    save_decoder(Path(out_dir), decoder, overwrite=overwrite)
    return decoder.config
