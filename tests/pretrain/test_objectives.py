"""The decoder's token layout and the two objectives on real forward passes of the tiny preset."""

import json
import math

import pytest
import torch
from torch import nn

from anytouch_policy.model import AnyTouchEncoder
from anytouch_policy.pretrain.clip_towers import TINY_CLIP_CONFIG, build_clip, init_encoder_from_clip
from anytouch_policy.pretrain.config import DecoderConfig, LoraConfig, LossWeights
from anytouch_policy.pretrain.dataset import MatchBatch, TouchBatch
from anytouch_policy.pretrain.decoder import MaskedDecoder
from anytouch_policy.pretrain.lora import add_lora
from anytouch_policy.pretrain.masking import mask_from_keep, patchify, random_tube_mask
from anytouch_policy.pretrain.objectives import INIT_LOGIT_SCALE, Alignment, MaskedModelling, masked_modelling

DEC = DecoderConfig(width=32, layers=1, heads=2)


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    return AnyTouchEncoder.from_preset("anytouch-tiny")


def _batch(frames, sensor=3):
    b = frames.shape[0]
    return TouchBatch(frames=frames, sensor=torch.full((b,), sensor), has_vision=torch.zeros(b, dtype=torch.bool),
                      has_text=torch.zeros(b, dtype=torch.bool), vision=None, text=None)


def test_decoder_unshuffles_tokens_and_adds_spatial_positions_only(encoder):
    cfg = encoder.config
    decoder = MaskedDecoder(DecoderConfig(width=cfg.output_dim, layers=1, heads=2), cfg)
    assert "pos_embed" not in dict(decoder.named_parameters()) and decoder.pos_embed.shape == (1, 17, 32)
    assert torch.equal(decoder.pos_embed[0, 0], torch.zeros(32))  # CLS position of the sin-cos table is zero
    decoder.blocks, decoder.norm = nn.Identity(), nn.Identity()  # look at the sequence the blocks would get
    with torch.no_grad():
        decoder.decoder_embed.weight.copy_(torch.eye(32))
        decoder.decoder_embed.bias.zero_()
    keep = torch.tensor([[5, 0, 9, 12]])
    mask = mask_from_keep(keep, 16)
    tokens = torch.randn(1, 6 + 4, 32)  # CLS, 5 sensor tokens, 4 visible patches in keep order
    hidden = decoder.hidden(tokens, mask.restore).detach()
    pos = decoder.pos_embed[0]
    for n in range(16):
        if n in keep[0].tolist():
            expected = tokens[0, 6 + keep[0].tolist().index(n)] + pos[1 + n]
        else:
            expected = decoder.mask_token[0, 0] + pos[1 + n]
        assert torch.allclose(hidden[0, n], expected.detach(), atol=1e-6), n


def test_masked_modelling_matches_hand_computed_losses(encoder):
    decoder = MaskedDecoder(DEC, encoder.config)
    g = torch.Generator().manual_seed(1)
    video = torch.randn(2, 4, 3, 56, 56, generator=g)
    mask = random_tube_mask(2, 16, 0.75, generator=g)
    with torch.no_grad():
        terms = masked_modelling(encoder, decoder, video, torch.tensor([3, 9]), mask)
        x = video[:, :3]
        hidden = encoder.forward_tokens(x, torch.tensor([3, 9]), keep=mask.keep)
        pred = decoder.predict_video(encoder.project_tokens(hidden), mask.restore)
    target = patchify(video, 14)
    rec = nxt = 0.0
    masked = [(b, n) for b in range(2) for n in range(16) if mask.mask[b, n] == 1]
    for b, n in masked:
        rec += float(((pred[b, n, :3] - target[b, n, :3]) ** 2).mean())
    for b in range(2):
        for n in range(16):
            nxt += float(((pred[b, n, 3] - target[b, n, 3]) ** 2).mean())
    assert float(terms["rec_dynamic"]) == pytest.approx(rec / len(masked), rel=1e-5)
    assert float(terms["pred_next"]) == pytest.approx(nxt / 32, rel=1e-5)
    static = video[:, :1]
    with torch.no_grad():
        s_terms = masked_modelling(encoder, decoder, static, torch.tensor([3, 9]), mask)
        hidden = encoder.forward_tokens(static.repeat(1, 3, 1, 1, 1), torch.tensor([3, 9]), keep=mask.keep)
        pred = decoder.predict_image(encoder.project_tokens(hidden), mask.restore)
    ref = sum(float(((pred[b, n] - target[b, n, 0]) ** 2).mean()) for b, n in masked) / len(masked)
    assert set(s_terms) == {"rec_static"} and float(s_terms["rec_static"]) == pytest.approx(ref, rel=1e-5)


def test_the_encoder_never_sees_masked_tubes(encoder):
    objective = MaskedModelling(encoder, MaskedDecoder(DEC, encoder.config)).eval()
    g = torch.Generator().manual_seed(2)
    video = torch.randn(1, 4, 3, 56, 56, generator=g)
    mask = mask_from_keep(torch.tensor([[0, 5, 10, 15]]), 16)  # token 1 (row 0, col 1) is masked
    with torch.no_grad():
        base = objective(_batch(video), mask)
        changed = video.clone()
        changed[0, :3, :, 0:14, 14:28] += 3.0  # the three input frames of masked token 1
        out = objective(_batch(changed), mask)
        nxt = video.clone()
        nxt[0, 3, :, 0:14, 0:14] += 3.0  # only the next frame of visible token 0
        out_next = objective(_batch(nxt), mask)
    assert float(out["rec_dynamic"]) > float(base["rec_dynamic"])  # the target moved ...
    assert float(out["pred_next"]) == float(base["pred_next"])  # ... but not the prediction
    assert float(out_next["rec_dynamic"]) == float(base["rec_dynamic"])
    assert float(out_next["pred_next"]) > float(base["pred_next"])
    assert float(base["loss"]) == pytest.approx(float(base["rec_dynamic"]) + float(base["pred_next"]), rel=1e-6)


@pytest.fixture
def alignment(encoder):
    towers = build_clip(str(TINY_CLIP_CONFIG))
    towers.model.requires_grad_(False)
    add_lora(towers.model.visual, LoraConfig(rank=4, alpha=8.0))
    return Alignment(encoder, towers.model, weights=LossWeights(), decoder=MaskedDecoder(DEC, encoder.config)), towers


def test_alignment_objective_uses_the_right_rows_of_each_modality(alignment):
    objective, towers = alignment
    g = torch.Generator().manual_seed(3)
    frames = torch.randn(4, 1, 3, 56, 56, generator=g)
    has_vision = torch.tensor([True, False, True, True])
    has_text = torch.tensor([True, True, False, True])
    vision = torch.randn(3, 3, 56, 56, generator=g)
    text = towers.tokenizer(["a", "rough stone", "soft cloth"])
    batch = TouchBatch(frames=frames, sensor=torch.tensor([3, 1, 9, 3]), has_vision=has_vision, has_text=has_text,
                       vision=vision, text=text)
    objective.decoder = None
    with torch.no_grad():
        out = objective(batch)
        t = nn.functional.normalize(objective.encoder(frames.repeat(1, 3, 1, 1, 1), batch.sensor), dim=-1)
        v = nn.functional.normalize(towers.model.encode_image(vision), dim=-1)
        x = nn.functional.normalize(towers.model.encode_text(text), dim=-1)
    s = math.exp(INIT_LOGIT_SCALE)

    def ce(a, b):
        logits = s * a @ b.T
        return float(nn.functional.cross_entropy(logits, torch.arange(len(a))))

    t_v, v_rows = t[[0, 2, 3]], v  # samples 0, 2, 3 have vision (rows 0, 1, 2)
    t_l, l_rows = t[[0, 1, 3]], x  # samples 0, 1, 3 have text
    v_vl, l_vl = v[[0, 2]], x[[0, 2]]  # samples 0 and 3 have both
    expected = (0.5 * (ce(t_v, v_rows) + ce(v_rows, t_v)) + 0.5 * (ce(t_l, l_rows) + ce(l_rows, t_l))
                + 0.1 * (ce(v_vl, l_vl) + ce(l_vl, v_vl)))
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(out["pairs_vision_text"]) == 2 and float(out["logit_scale"]) == pytest.approx(INIT_LOGIT_SCALE)


def test_matching_objective_and_temperature_clamp(alignment):
    objective, _ = alignment
    g = torch.Generator().manual_seed(4)
    clips = [torch.randn(3, 4, 3, 56, 56, generator=g) for _ in range(3)]
    sensors = [torch.tensor([1, 3, 4]), torch.tensor([3, 4, 1]), torch.tensor([9, 1, 3])]
    out = objective(MatchBatch(*clips, *sensors))
    with torch.no_grad():
        emb = [nn.functional.normalize(objective.encoder(c[:, :3], s), dim=-1) for c, s in zip(clips, sensors,
                                                                                                 strict=True)]
        pos = objective.match_head(emb[0] * emb[1]).squeeze(-1)
        neg = objective.match_head(emb[0] * emb[2]).squeeze(-1)
    sig = torch.sigmoid
    ref = float(-(sig(pos).log().mean() + (1 - sig(neg)).log().mean()))
    assert float(out["match"]) == pytest.approx(ref, rel=1e-5)
    assert float(out["loss"].detach()) == pytest.approx(0.1 * ref, rel=1e-5)
    with torch.no_grad():
        objective.logit_scale.fill_(7.0)
    objective.after_step()
    assert float(objective.logit_scale.detach()) == pytest.approx(math.log(100))


def test_touch_encoder_starts_from_the_clip_vision_tower():
    towers = build_clip(str(TINY_CLIP_CONFIG))
    encoder = AnyTouchEncoder.from_preset("anytouch-tiny")
    init_encoder_from_clip(encoder, towers.model)
    visual = towers.model.visual.state_dict()
    conv = visual["conv1.weight"]
    assert torch.equal(encoder.tubelet.weight, conv.unsqueeze(1).expand(-1, 3, -1, -1, -1))
    assert torch.equal(encoder.proj, visual["proj"])
    assert torch.equal(encoder.transformer.resblocks[1].attn.in_proj_weight,
                       visual["transformer.resblocks.1.attn.in_proj_weight"])
    small = AnyTouchEncoder.from_preset("anytouch-small")
    with pytest.raises(ValueError, match="does not fit the encoder"):
        init_encoder_from_clip(small, towers.model)


def test_clip_weights_load_from_a_local_file_and_seed_the_touch_encoder(tmp_path):
    from safetensors.torch import save_file

    from anytouch_policy.errors import CheckpointError, ConfigError
    from anytouch_policy.pretrain.build import build_encoder, build_towers
    from anytouch_policy.pretrain.config import PretrainConfig, Stage

    torch.manual_seed(5)
    source = build_clip(str(TINY_CLIP_CONFIG)).model
    weights = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, weights)
    config = PretrainConfig(stage=Stage.ALIGN, out=str(tmp_path / "o"), data=("unused",), preset="anytouch-tiny",
                            clip_arch=str(TINY_CLIP_CONFIG), clip_weights=str(weights), lora=LoraConfig(rank=2))
    towers = build_towers(config)  # frozen, with LoRA on the vision tower
    assert torch.equal(towers.model.text_projection, source.text_projection)
    encoder, info = build_encoder(config, towers)
    assert torch.equal(encoder.proj, source.visual.proj) and info.path.endswith(f"clip:{weights}")
    assert torch.equal(encoder.transformer.resblocks[0].attn.in_proj_weight,
                       source.visual.transformer.resblocks[0].attn.in_proj_weight)
    other = json.loads(TINY_CLIP_CONFIG.read_text())
    other["text_cfg"]["width"] = 48
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(CheckpointError, match="open_clip_model.safetensors: does not load into open_clip"):
        build_clip(str(tmp_path / "other.json"), weights)
    with pytest.raises(CheckpointError, match="CLIP weights file not found"):
        build_clip(str(TINY_CLIP_CONFIG), tmp_path / "nope.bin")
    with pytest.raises(ConfigError, match="unknown open_clip architecture"):
        build_clip("ViT-Q-99")
