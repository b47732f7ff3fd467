"""Hyper-parameters of the two AnyTouch training stages; defaults are the official scripts and appendix A.6.

`PretrainConfig` is the whole run (what `anytouch pretrain` parses); the smaller frozen dataclasses group the
numbers one module needs, so the decoder, the losses and LoRA can be built and tested on their own.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from anytouch_policy.bounds import DROPOUT, FRACTION, LEARNING_RATE, NONNEGATIVE, POSITIVE, PROBABILITY, Interval
from anytouch_policy.model.config import Count, LayerNormEps, check_transformer
from anytouch_policy.schema import config, dump
from anytouch_policy.sensors import SensorName, SensorType

NonNegative = Annotated[float, NONNEGATIVE]
Beta = Annotated[float, Interval.parse("[0, 1)")]


class Stage(IntEnum):
    """The two training stages of AnyTouch (paper section 4.6)."""

    MASKED = 1  # masked modelling: static/dynamic reconstruction + next-frame prediction
    ALIGN = 2  # touch-vision-text alignment + cross-sensor matching (+ masked modelling unless disabled)


class ClipKind(StrEnum):
    """A tactile sample is a static image (repeated to 3 frames) or a 4-frame clip (3 inputs + the next frame)."""

    STATIC = "static"
    VIDEO = "video"


class AmpMode(StrEnum):
    """Mixed precision on cuda (CPU always runs float32)."""

    AUTO = "auto"  # bfloat16 where the GPU supports it, else float16 with a gradient scaler
    OFF = "off"
    BF16 = "bf16"
    FP16 = "fp16"


@config
class DecoderConfig:
    """The masked-modelling decoder (official: HF ViTConfig with hidden 512, 8 layers, 16 heads, MLP 2048)."""

    width: Count = 512
    layers: Count = 8
    heads: Count = 16
    mlp_ratio: Annotated[float, POSITIVE] = 4.0
    ln_eps: LayerNormEps = 1e-12  # HF ViTConfig's layer_norm_eps, which the official decoder blocks use

    @model_validator(mode="after")
    def _shape(self) -> DecoderConfig:
        check_transformer(self.width, self.heads, self.mlp_ratio)
        if self.width % 4:
            raise ValueError(f"width {self.width} must be a multiple of 4 (2-D sin-cos embedding)")
        return self


@config
class LossWeights:
    """Weights of the stage-2 terms: alpha_TV, alpha_TL, alpha_VL of equation 4 and lambda of equation 9."""

    touch_vision: NonNegative = Field(default=1.0, description="touch-vision weight")
    touch_text: NonNegative = Field(default=1.0, description="touch-text weight (2.0 = official code)")
    vision_text: NonNegative = Field(default=0.2, description="vision-text weight")
    match: NonNegative = Field(default=0.1, description="cross-sensor matching weight (lambda)")
    mae: NonNegative = 1.0  # masked modelling kept running in stage 2 (official: align + mae per alignment batch)
    cross_sensor_nce: NonNegative = Field(
        default=0.0, description="optional, not in the paper: InfoNCE between a matching batch's anchors and their "
                                 "positives (the same state through another sensor); 0 = the paper's objective")
    reference_distill: NonNegative = Field(
        default=0.0, description="optional, not in the paper: pull every sensor's embedding of a state (own or "
                                 "universal token) onto the starting encoder's embedding of that state through "
                                 "--reference-sensor, the starting encoder kept frozen; 0 = off")
    reference_change: NonNegative = Field(
        default=0.0, description="optional, not in the paper: as --reference-distill for the change between two "
                                 "times of one scenario (what a pouring policy reads), relative to the spread of "
                                 "such changes; 0 = off")

    @property
    def distills(self) -> bool:
        """Whether stage 2 runs distill batches (either reference term on)."""
        return self.reference_distill > 0 or self.reference_change > 0


@config
class LoraConfig:
    """LoRA on the vision tower's attention (official: peft r=16, alpha=16, dropout 0 on q, k, v, out)."""

    rank: Count = 16
    alpha: Annotated[float, POSITIVE] = 16.0
    dropout: Annotated[float, DROPOUT] = 0.0

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


#: Fields of PretrainConfig that may change between a run and its resumption (they do not change the trajectory).
RESUMABLE_CHANGES = frozenset({"out", "resume", "stop_after", "progress", "workers", "threads", "save_every",
                               "device", "overwrite"})

#: `clip_arch` of a touch-only stage 2 (data without vision and text): no CLIP towers are built, the alignment
#: terms are exactly 0 and matching (+ masked modelling) trains the encoder.
NO_CLIP = "none"

#: Epochs of the official scripts per stage.
DEFAULT_EPOCHS = {Stage.MASKED: 20, Stage.ALIGN: 12}


@config
class PretrainConfig:
    """One training run of either stage. Paths are strings so the config round-trips through JSON."""

    stage: Stage = Field(description="1: masked modelling; 2: alignment")
    out: str = Field(description="output folder: encoder/ bundle, mae_decoder/, checkpoints/, metrics.jsonl, run.json")
    data: tuple[str, ...] = Field(default=(), description="dataset manifest (.jsonl) or folder holding manifest.jsonl; "
                                                          "repeatable")
    bags: tuple[str, ...] = Field(default=(), description="folder of recorded episodes (touch-only clips); repeatable")
    init: str | None = Field(default=None, description="encoder bundle to start from")
    preset: str | None = Field(default=None, description="start from a preset (random, or CLIP with --clip-weights)")
    init_decoder: str | None = Field(
        default=None, description="a previous run's mae_decoder/ folder (stage 2 keeps masked modelling going)")
    clip_arch: str = Field(default="ViT-L-14", description="open_clip model name or CLIP config JSON (stage 2); "
                                                            f"{NO_CLIP!r}: touch-only stage 2")
    clip_weights: str | None = Field(default=None, description="open_clip checkpoint of --clip-arch (local file)")
    epochs: Count | None = Field(default=None, description="default: 20 (stage 1), 12 (stage 2)")
    max_steps: Count | None = Field(
        default=None, description="stop after this many optimizer steps (schedules span them); default: the epochs")
    batch_size: Count = Field(
        default=64, description="per rank; matching batches hold batch_size // 2 anchors (each with a positive and a "
                                "negative)")
    lr: Annotated[float, LEARNING_RATE] = 2e-4
    weight_decay: NonNegative = 0.1
    betas: tuple[Beta, Beta] = (0.9, 0.99)
    warmup_epochs: NonNegative = Field(
        default=1.0, description="linear warm-up, then cosine to 0, stepped per iteration")
    mask_ratio: Annotated[float, FRACTION] = 0.75
    norm_pix_loss: bool = Field(default=False, description="per-patch standardised pixel targets")
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
    universal_max: Annotated[float, PROBABILITY] = Field(
        default=0.75, description="final probability of the universal sensor token (rises linearly from 0)")
    hard_negatives: Annotated[float, PROBABILITY] = Field(
        default=0.0, description="share of matching negatives drawn from the anchor's scenario at another time")
    weights: LossWeights = Field(default_factory=LossWeights)
    reference_sensor: SensorName = Field(
        default=SensorType.GELSIGHT_MINI, description="the sensor whose embeddings --reference-distill pulls the "
                                                      "others onto")
    stage2_mae: bool = Field(default=True, description="stage 2 keeps masked modelling going")
    lora: LoraConfig = Field(default_factory=LoraConfig)
    bag_stride: Count = Field(
        default=1, description="frame spacing inside a bag clip (the encoder node's window stride)")
    bag_hop: Count = Field(default=1, description="frames between bag clip starts")
    bag_kinds: Annotated[tuple[ClipKind, ...], Field(min_length=1)] = Field(
        default=(ClipKind.VIDEO, ClipKind.STATIC), description="bag samples to cut: video, static or both")
    augment: bool = Field(default=True, description="flips + colour jitter, identical across the frames of a clip")
    seed: Annotated[int, NONNEGATIVE] = 0
    device: str = Field(default="auto", description="auto | cpu | cuda")
    amp: AmpMode = Field(default=AmpMode.AUTO, description="mixed precision on cuda")
    workers: Annotated[int, NONNEGATIVE] = Field(default=0, description="data loader worker processes")
    threads: Count | None = Field(default=None, description="torch CPU threads (default: torch's choice)")
    save_every: Annotated[int, NONNEGATIVE] = Field(
        default=200, description="steps between checkpoints, plus one at every epoch end (0: epoch ends only)")
    resume: bool = Field(default=False, description="continue from OUT/checkpoints/last.pt")
    stop_after: Count | None = Field(
        default=None, description="stop (checkpointed) after N steps of this invocation; the schedule is unchanged")
    progress: bool = Field(default=True, description="progress bars")
    overwrite: bool = Field(default=False, description="replace a previous run in OUT")
    grad_checkpointing: bool = Field(default=False, description="less memory for the large preset")
    clip_grad: Annotated[float, POSITIVE] | None = Field(
        default=None, description="max gradient norm (default: none, as the official code)")

    @model_validator(mode="after")
    def _consistent(self) -> PretrainConfig:
        if (self.init is None) == (self.preset is None):
            raise ValueError("give exactly one of --init BUNDLE or --preset NAME")
        if not self.data and not self.bags:
            raise ValueError("no data; give --data MANIFEST and/or --bags DIR")
        if self.stage is Stage.ALIGN and not self.data:
            raise ValueError("stage 2 needs --data manifests (alignment needs vision and/or text pairs)")
        if self.init_decoder is not None and self.stage is Stage.MASKED and self.init is None:
            raise ValueError("--init-decoder goes with --init (a decoder trained against that encoder)")
        if self.stage is Stage.ALIGN and self.batch_size < 2:
            raise ValueError("stage 2: batch_size must be >= 2 (contrastive and matching batches)")
        if self.weights.distills and (self.stage is not Stage.ALIGN or self.init is None):
            raise ValueError("--reference-distill and --reference-change need --stage 2 and --init BUNDLE (the "
                             "trained encoder they keep as the frozen reference)")
        if self.touch_only and self.clip_weights is not None:
            raise ValueError(f"--clip-weights given with --clip-arch {NO_CLIP} (no CLIP towers)")
        return self

    @property
    def touch_only(self) -> bool:
        """Stage 2 without CLIP towers (clip_arch == NO_CLIP)."""
        return self.clip_arch == NO_CLIP

    @property
    def total_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.stage]

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def trajectory_differences(self, saved: dict[str, Any]) -> list[str]:
        """Fields (other than RESUMABLE_CHANGES) whose value differs from a checkpoint's saved config."""
        mine = dump(self)
        keys = (set(mine) | set(saved)) - RESUMABLE_CHANGES
        return sorted(k for k in keys if mine.get(k) != saved.get(k))
