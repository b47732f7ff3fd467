"""The two training objectives as nn.Modules whose forward returns every loss term (one DDP-wrappable module each).

Stage 1, per batch (static and video batches alternate, as the official loaders do):
    static: L = L_rec^S                   video: L = L_rec^D + L_pred^D          (paper eq. 8, 1:1)
Stage 2, per batch:
    alignment batch: L = L_align (eq. 4) + w_mae * (masked-modelling terms of that batch, unless disabled)
    matching batch:  L = lambda * L_match (eq. 5-6, lambda = 0.1) (+ the optional cross-sensor InfoNCE)
    distill batch (optional, not in the paper): L = w * |f(x_s, slot or universal) - f0(x_ref, ref slot)|^2 / Var(f0)
        where x_ref is the same state through the reference sensor and f0 the frozen starting encoder: every sensor
        lands where the reference sensor's embedding of that state was, so a head trained on the reference sensor
        reads the others, and the reference's own read-out is kept;
        + w_c * the same loss on the change between two times t, t' of one scenario: f(x_t) - f(x_t') against
        f0(ref_t) - f0(ref_t'), relative to the spread of those changes (the state-to-state spread of a batch is
        mostly across scenarios, and would drown the small changes within a pour that a policy reads)

forward(batch, mask) returns {"loss": the scalar to minimise, <term>: detached values for logging}.
"""

from __future__ import annotations

import functools
import math
import operator

import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from torch import nn

from anytouch_policy.errors import ConfigError
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.pretrain.config import LossWeights
from anytouch_policy.pretrain.dataset import DistillBatch, MatchBatch, TouchBatch
from anytouch_policy.pretrain.decoder import MaskedDecoder
from anytouch_policy.pretrain.losses import (
    alignment_loss,
    contrastive_pair,
    dynamic_losses,
    matching_loss,
    reference_distill_loss,
    static_reconstruction,
)
from anytouch_policy.pretrain.masking import TubeMask, normalize_patches, patchify

#: CLIP's initial temperature 0.07 as a log-scale, and the cap CLIP clamps it to (logits scaled by at most 100).
INIT_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100)

STAGE1_TERMS = ("loss", "rec_static", "rec_dynamic", "pred_next")
STAGE2_TERMS = STAGE1_TERMS + ("align", "touch_to_vision", "vision_to_touch", "touch_to_text", "text_to_touch",
                               "vision_to_text", "text_to_vision", "match", "cross_sensor_nce", "reference_distill",
                               "reference_change", "logit_scale",
                               "pairs_touch_vision", "pairs_touch_text", "pairs_vision_text")


def encoder_input(frames: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, S, S) sample frames -> (B, 3, 3, S, S) encoder input: a static image repeated, a clip's 3 inputs."""
    return frames.repeat(1, 3, 1, 1, 1) if frames.shape[1] == 1 else frames[:, :3]


def masked_modelling(encoder: AnyTouchEncoder, decoder: MaskedDecoder, frames: torch.Tensor, sensor: torch.Tensor,
                     mask: TubeMask, *, norm_pix_loss: bool = False) -> dict[str, torch.Tensor]:
    """Reconstruction terms of one batch: {"rec_static"} or {"rec_dynamic", "pred_next"} (not yet weighted)."""
    if mask.mask.shape != (frames.shape[0], decoder.num_patches):
        raise ConfigError(f"mask {tuple(mask.mask.shape)} does not fit a batch of {frames.shape[0]} clips with "
                          f"{decoder.num_patches} tokens")
    hidden = encoder.forward_tokens(encoder_input(frames), sensor, keep=mask.keep)
    tokens = encoder.project_tokens(hidden)
    target = patchify(frames.float(), encoder.config.patch_size)
    if norm_pix_loss:
        target = normalize_patches(target)
    if frames.shape[1] == 1:
        pred = decoder.predict_image(tokens, mask.restore)
        return {"rec_static": static_reconstruction(pred, target[:, :, 0], mask.mask)}
    if frames.shape[1] != 4:
        raise ConfigError(f"a video sample needs 4 frames (3 inputs + the next), got {frames.shape[1]}")
    rec, nxt = dynamic_losses(decoder.predict_video(tokens, restore=mask.restore), target, mask.mask)
    return {"rec_dynamic": rec, "pred_next": nxt}


def _logged(loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"loss": loss, **{k: v.detach().float() for k, v in terms.items()}}


class MaskedModelling(nn.Module):
    """Stage 1: the touch encoder and the MAE decoder."""

    def __init__(self, encoder: AnyTouchEncoder, decoder: MaskedDecoder, *, norm_pix_loss: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.norm_pix_loss = norm_pix_loss

    def forward(self, batch: TouchBatch, mask: TubeMask) -> dict[str, torch.Tensor]:
        terms = masked_modelling(self.encoder, self.decoder, batch.frames, batch.sensor, mask,
                                 norm_pix_loss=self.norm_pix_loss)
        return _logged(functools.reduce(operator.add, terms.values()), terms)

    def after_step(self) -> None:
        """Nothing to clamp in stage 1."""


class Alignment(nn.Module):
    """Stage 2: touch encoder + CLIP vision (LoRA) and text (frozen) towers + matching head (+ MAE decoder)."""

    def __init__(self, encoder: AnyTouchEncoder, clip: CLIP | None, *, weights: LossWeights,
                 decoder: MaskedDecoder | None = None, norm_pix_loss: bool = False,
                 reference: AnyTouchEncoder | None = None) -> None:
        """`clip` None: touch-only (data without vision or text; every alignment term is exactly 0);
        `reference`: the frozen starting encoder that distill batches aim at (frozen and put in eval mode here)."""
        super().__init__()
        dim = encoder.config.output_dim if clip is None else int(clip.text_projection.shape[1])
        if dim != encoder.config.output_dim:
            raise ConfigError(f"CLIP embedding size {dim} differs from the touch encoder's output_dim "
                              f"{encoder.config.output_dim}; pick a matching --clip-arch")
        self.encoder = encoder
        self.clip = clip
        self.decoder = decoder
        self.weights = weights
        self.norm_pix_loss = norm_pix_loss
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))
        self.match_head = nn.Linear(dim, 1)
        self.reference = reference
        if reference is not None:
            reference.requires_grad_(False)
            reference.eval()

    def train(self, mode: bool = True) -> Alignment:
        """The reference encoder stays in eval mode whatever the rest does."""
        super().train(mode)
        if self.reference is not None:
            self.reference.eval()
        return self

    def touch_embeddings(self, frames: torch.Tensor, sensor: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(encoder_input(frames), sensor).float(), dim=-1)

    def forward(self, batch: TouchBatch | MatchBatch | DistillBatch,
                mask: TubeMask | None = None) -> dict[str, torch.Tensor]:
        if isinstance(batch, MatchBatch):
            return self._match(batch)
        if isinstance(batch, DistillBatch):
            return self._distill(batch)
        return self._align(batch, mask)

    def _scatter(self, rows: torch.Tensor | None, present: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(n, D) rows of the samples that have a modality -> (B, D), zeros elsewhere (never read by the loss)."""
        full = torch.zeros_like(like)
        if rows is None:
            return full
        return full.index_put((present.nonzero().squeeze(1),), F.normalize(rows.float(), dim=-1))

    def _align(self, batch: TouchBatch, mask: TubeMask | None) -> dict[str, torch.Tensor]:
        touch = self.touch_embeddings(batch.frames, batch.sensor)
        clip = self.clip
        if clip is None and (batch.vision is not None or batch.text is not None):
            raise ConfigError("a touch-only stage 2 (no CLIP towers) got a batch with vision or text")
        vision = self._scatter(None if batch.vision is None or clip is None else clip.encode_image(batch.vision),
                               batch.has_vision, touch)
        with torch.no_grad():
            text_rows = None if batch.text is None or clip is None else clip.encode_text(batch.text)
        text = self._scatter(text_rows, batch.has_text, touch)
        align = alignment_loss(touch, vision, text, has_vision=batch.has_vision, has_text=batch.has_text,
                               logit_scale=self.logit_scale, weights=self.weights)
        terms = {"align": align.total, "touch_to_vision": align.touch_to_vision,
                 "vision_to_touch": align.vision_to_touch, "touch_to_text": align.touch_to_text,
                 "text_to_touch": align.text_to_touch, "vision_to_text": align.vision_to_text,
                 "text_to_vision": align.text_to_vision, "logit_scale": self.logit_scale}
        terms |= {f"pairs_{k}": torch.tensor(float(v)) for k, v in align.pairs.items()}
        loss = align.total
        if self.decoder is not None and self.weights.mae > 0:
            if mask is None:
                raise ConfigError("stage 2 with masked modelling needs a tube mask per alignment batch")
            mae = masked_modelling(self.encoder, self.decoder, batch.frames, batch.sensor, mask,
                                   norm_pix_loss=self.norm_pix_loss)
            loss = loss + self.weights.mae * sum(mae.values())
            terms |= mae
        return _logged(loss, terms)

    def _match(self, batch: MatchBatch) -> dict[str, torch.Tensor]:
        frames = torch.cat([batch.anchor, batch.positive, batch.negative])
        sensors = torch.cat([batch.anchor_sensor, batch.positive_sensor, batch.negative_sensor])
        anchor, positive, negative = self.touch_embeddings(frames, sensors).chunk(3)
        pos_logits = self.match_head(anchor * positive).squeeze(-1)
        neg_logits = self.match_head(anchor * negative).squeeze(-1)
        match = matching_loss(pos_logits, neg_logits)
        loss, terms = self.weights.match * match, {"match": match, "logit_scale": self.logit_scale}
        if self.weights.cross_sensor_nce > 0:
            every = torch.ones(anchor.shape[0], dtype=torch.bool, device=anchor.device)
            a_to_p, p_to_a, _ = contrastive_pair(anchor, positive, every, self.logit_scale)
            nce = (a_to_p + p_to_a) / 2
            loss = loss + self.weights.cross_sensor_nce * nce
            terms["cross_sensor_nce"] = nce
        return _logged(loss, terms)

    def _distill(self, batch: DistillBatch) -> dict[str, torch.Tensor]:
        if self.reference is None:
            raise ConfigError("a distill batch needs the reference encoder (--reference-distill or --reference-change)")
        frames, reference = batch.frames, batch.reference
        sensor, reference_sensor = batch.sensor, batch.reference_sensor
        if batch.partner is not None and batch.partner_reference is not None:  # one pass over both times
            frames, reference = torch.cat([frames, batch.partner]), torch.cat([reference, batch.partner_reference])
            sensor, reference_sensor = sensor.repeat(2), reference_sensor.repeat(2)
        with torch.no_grad():
            target = self.reference(encoder_input(reference), reference_sensor).float()
        student = self.encoder(encoder_input(frames), sensor).float()
        terms = {"reference_distill": reference_distill_loss(student, target)}
        loss = self.weights.reference_distill * terms["reference_distill"]
        if batch.partner is not None:
            (s_now, s_then), (t_now, t_then) = student.chunk(2), target.chunk(2)
            terms["reference_change"] = reference_distill_loss(s_now - s_then, t_now - t_then)
            loss = loss + self.weights.reference_change * terms["reference_change"]
        return _logged(loss, terms)

    def after_step(self) -> None:
        """Clamp the temperature as CLIP training does: logit_scale in [0, ln 100]."""
        with torch.no_grad():
            self.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
