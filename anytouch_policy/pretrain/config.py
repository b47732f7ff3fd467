"""Hyper-parameters of the two AnyTouch training stages; defaults are the official scripts and appendix A.6.

`PretrainConfig` is the whole run (what `anytouch pretrain` parses); the smaller frozen dataclasses group the
numbers one module needs, so the decoder, the losses and LoRA can be built and tested on their own.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

from anytouch_policy.errors import ConfigError


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


def _positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class DecoderConfig:
    """The masked-modelling decoder (official: HF ViTConfig with hidden 512, 8 layers, 16 heads, MLP 2048)."""

    width: int = 512
    layers: int = 8
    heads: int = 16
    mlp_ratio: float = 4.0
    ln_eps: float = 1e-12  # HF ViTConfig's layer_norm_eps, which the official decoder blocks use

    def __post_init__(self) -> None:
        for name in ("width", "layers", "heads"):
            _positive_int("DecoderConfig", name, getattr(self, name))
        if self.width % self.heads:
            raise ConfigError(f"DecoderConfig.width {self.width} is not divisible by heads {self.heads}")
        if self.width % 4:
            raise ConfigError(f"DecoderConfig.width {self.width} must be a multiple of 4 (2-D sin-cos embedding)")
        if not self.mlp_ratio > 0 or not float(self.width * self.mlp_ratio).is_integer():
            raise ConfigError(f"DecoderConfig.mlp_ratio {self.mlp_ratio} must give an integer MLP width")
        if not 0 < self.ln_eps < 1:
            raise ConfigError(f"DecoderConfig.ln_eps must be in (0, 1), got {self.ln_eps}")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the stage-2 terms: alpha_TV, alpha_TL, alpha_VL of equation 4 and lambda of equation 9."""

    touch_vision: float = 1.0
    touch_text: float = 1.0
    vision_text: float = 0.2
    match: float = 0.1
    mae: float = 1.0  # masked modelling kept running in stage 2 (official: align + mae per alignment batch)
    cross_sensor_nce: float = 0.0  # optional, not in the paper: InfoNCE between a matching batch's anchors and
    # positives (the same state through another sensor); 0 = the paper's objective

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ConfigError(f"LossWeights.{f.name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class LoraConfig:
    """LoRA on the vision tower's attention (official: peft r=16, alpha=16, dropout 0 on q, k, v, out)."""

    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("LoraConfig", "rank", self.rank)
        if not 0 < self.alpha < math.inf:
            raise ConfigError(f"LoraConfig.alpha must be a finite number > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LoraConfig.dropout must be in [0, 1), got {self.dropout}")

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


@dataclass(frozen=True)
class PretrainConfig:
    """One training run of either stage. Paths are strings so the config round-trips through JSON."""

    stage: Stage
    out: str  # output folder: encoder/ bundle, mae_decoder/, checkpoints/, metrics.jsonl, run.json
    data: tuple[str, ...] = ()  # manifest files (or folders holding manifest.jsonl)
    bags: tuple[str, ...] = ()  # folders of recorded episodes (rosbag2); touch-only clips
    init: str | None = None  # encoder bundle to start from
    preset: str | None = None  # or a preset, randomly initialised (or from --clip-weights' vision tower)
    init_decoder: str | None = None  # a stage-1 run's mae_decoder/ folder (stage 2 keeps masked modelling going)
    clip_arch: str = "ViT-L-14"  # open_clip model name, a JSON file of an open_clip CLIP config, or NO_CLIP
    clip_weights: str | None = None  # open_clip checkpoint file of that architecture (.safetensors/.bin/.pt)
    epochs: int | None = None  # None: 20 for stage 1, 12 for stage 2
    max_steps: int | None = None  # stop after this many optimizer steps (schedules span them); None: the epochs
    batch_size: int = 64  # per rank; matching batches hold batch_size // 2 anchors (each with a pos and a neg)
    lr: float = 2e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_epochs: float = 1.0  # linear warm-up, then cosine to 0, stepped per iteration
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    universal_max: float = 0.75  # p_u rises linearly from 0 to this over the whole run
    hard_negatives: float = 0.0  # share of matching negatives drawn from the anchor's object at another position
    weights: LossWeights = field(default_factory=LossWeights)
    stage2_mae: bool = True
    lora: LoraConfig = field(default_factory=LoraConfig)
    bag_stride: int = 1  # frame spacing inside a bag clip (the encoder node's window stride)
    bag_hop: int = 1  # frames between the starts of consecutive bag clips
    bag_kinds: tuple[ClipKind, ...] = (ClipKind.VIDEO, ClipKind.STATIC)
    augment: bool = True  # flips + colour jitter, identical across the frames of a clip
    seed: int = 0
    device: str = "auto"
    amp: AmpMode = AmpMode.AUTO
    workers: int = 0  # DataLoader worker processes
    threads: int | None = None  # torch CPU threads for this process (None: torch's default)
    save_every: int = 200  # steps between checkpoints (plus one at every epoch end); 0 = epoch ends only
    resume: bool = False
    stop_after: int | None = None  # stop this invocation after N steps (checkpointed); the schedule is unchanged
    progress: bool = True
    overwrite: bool = False
    grad_checkpointing: bool = False
    clip_grad: float | None = None  # max gradient norm; None = no clipping (as the official code)

    def __post_init__(self) -> None:
        if not isinstance(self.stage, Stage):
            raise ConfigError(f"PretrainConfig.stage must be a Stage, got {self.stage!r}")
        if (self.init is None) == (self.preset is None):
            raise ConfigError("pretrain: give exactly one of --init BUNDLE or --preset NAME")
        if not self.data and not self.bags:
            raise ConfigError("pretrain: no data; give --data MANIFEST and/or --bags DIR")
        if self.stage is Stage.ALIGN and not self.data:
            raise ConfigError("pretrain stage 2 needs --data manifests (alignment needs vision and/or text pairs)")
        if self.init_decoder is not None and self.stage is Stage.MASKED and self.init is None:
            raise ConfigError("pretrain: --init-decoder goes with --init (a decoder trained against that encoder)")
        if self.epochs is not None:
            _positive_int("pretrain", "epochs", self.epochs)
        if self.max_steps is not None:
            _positive_int("pretrain", "max_steps", self.max_steps)
        for name in ("batch_size", "bag_stride", "bag_hop"):
            _positive_int("pretrain", name, getattr(self, name))
        if self.stage is Stage.ALIGN and self.batch_size < 2:
            raise ConfigError("pretrain stage 2: batch_size must be >= 2 (contrastive and matching batches)")
        if not 0 < self.lr <= 1 or not 0 <= self.weight_decay < math.inf:
            raise ConfigError(f"pretrain: lr must be in (0, 1] and weight_decay a finite number >= 0, got {self.lr}, "
                              f"{self.weight_decay}")
        if not 0 <= self.warmup_epochs < math.inf:
            raise ConfigError(f"pretrain: warmup_epochs must be a finite number >= 0, got {self.warmup_epochs}")
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"pretrain: mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if not 0 <= self.universal_max <= 1:
            raise ConfigError(f"pretrain: universal_max must be in [0, 1], got {self.universal_max}")
        if not 0 <= self.hard_negatives <= 1:
            raise ConfigError(f"pretrain: hard_negatives must be in [0, 1], got {self.hard_negatives}")
        if self.touch_only and self.clip_weights is not None:
            raise ConfigError(f"pretrain: --clip-weights given with --clip-arch {NO_CLIP} (no CLIP towers)")
        if not self.bag_kinds:
            raise ConfigError("pretrain: bag_kinds must name at least one of static, video")
        if self.workers < 0 or self.save_every < 0:
            raise ConfigError("pretrain: workers and save_every must be >= 0")
        if self.stop_after is not None:
            _positive_int("pretrain", "stop_after", self.stop_after)
        if self.threads is not None:
            _positive_int("pretrain", "threads", self.threads)
        if self.clip_grad is not None and not 0 < self.clip_grad < math.inf:
            raise ConfigError(f"pretrain: clip_grad must be a finite number > 0, got {self.clip_grad}")

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (enums as values, tuples as lists)."""
        def plain(value: Any) -> Any:
            if isinstance(value, IntEnum):
                return int(value)
            if isinstance(value, StrEnum):
                return str(value)
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}

    def trajectory_differences(self, saved: dict[str, Any]) -> list[str]:
        """Fields (other than RESUMABLE_CHANGES) whose value differs from a checkpoint's saved config."""
        mine = self.to_dict()
        keys = (set(mine) | set(saved)) - RESUMABLE_CHANGES
        return sorted(k for k in keys if mine.get(k) != saved.get(k))
