"""What a training run is asked to do (`anytouch train` flags map 1:1 onto TrainConfig)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from anytouch_policy.errors import ConfigError
from anytouch_policy.model.config import load_preset
from anytouch_policy.model.encoder import Finetune, FinetuneMode
from anytouch_policy.model.runtime import Precision, TokenMode
from anytouch_policy.policy.config import CONDITIONING_NAMES, ReferenceMode
from anytouch_policy.train.augment import Augment
from anytouch_policy.train.metrics import Selection


class TrainMode(StrEnum):
    """Frozen: the encoder is a fixed feature extractor (embeddings cached), only the head trains.
    Finetune: encoder (all, or its last N blocks) and head train together on augmented frames."""

    FROZEN = "frozen"
    FINETUNE = "finetune"


#: Epochs when --epochs is not given: the head alone converges fast on cached embeddings.
DEFAULT_EPOCHS = {TrainMode.FROZEN: 40, TrainMode.FINETUNE: 8}


@dataclass
class TrainConfig:
    bags: list[Path]  # folders of episode bags (or single episode folders)
    out: Path  # the policy bundle folder to write
    mode: TrainMode = TrainMode.FROZEN
    encoder: Path | None = None  # encoder bundle to start from
    preset: str | None = None  # ... or a preset, randomly initialised from `seed`
    finetune: str = "all"  # finetune mode: "all" or "last:N"
    frames: int = 3  # 3 = dynamic window, 1 = static (the newest frame repeated 3x)
    stride: int = 1
    token_mode: TokenMode = TokenMode.SPECIFIC
    sensors: list[str] | None = None  # sensor names to use (default: every sensor of the episodes)
    conditioning: tuple[str, ...] = CONDITIONING_NAMES
    reference: ReferenceMode = ReferenceMode.EPISODE_START
    epochs: int | None = None  # None: DEFAULT_EPOCHS[mode]
    batch_size: int = 32
    episodes_per_batch: int = 8  # finetune: a batch holds this many episodes' ticks (their references encode once)
    lr: float = 1e-3  # head
    encoder_lr: float = 2e-4  # finetune: encoder parameters
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1  # of all steps, linear warm-up before the cosine decay
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    val_fraction: float = 0.2
    select: Selection = Selection.VAL_LOSS  # which epoch becomes the bundle: lowest validation loss, or the last
    seed: int = 0
    class_weights: bool = True  # inverse-frequency weights in the loss (wait/pour dominate, retract is rare)
    augment: Augment | None = field(default_factory=Augment)  # finetune only
    cache_dir: Path | None = None  # frozen: embedding cache (None: train.cache.default_cache_dir())
    use_cache: bool = True
    precision: Precision = Precision.FLOAT32  # frozen: precision the embeddings are computed (and later run) in
    amp: bool = False  # finetune: bfloat16 autocast for the forward pass (CPU with AVX512-BF16/AMX, or cuda)
    device: str = "auto"
    threads: int | None = None
    skip_bad: bool = False  # skip (and report) corrupt bags and bags missing a topic instead of stopping
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.mode = TrainMode(self.mode)
        self.token_mode = TokenMode(self.token_mode)
        self.reference = ReferenceMode(self.reference)
        self.precision = Precision(self.precision)
        self.select = Selection(self.select)
        if (self.encoder is None) == (self.preset is None):
            raise ConfigError("give exactly one encoder source: --encoder BUNDLE or --preset NAME")
        if not self.bags:
            raise ConfigError("no --bags folders given")
        if self.frames not in (1, 3):
            raise ConfigError(f"--frames must be 3 (dynamic) or 1 (static), got {self.frames}")
        if self.mode is TrainMode.FINETUNE and self.finetune_spec.mode is FinetuneMode.FROZEN:
            raise ConfigError("--mode finetune needs --finetune all or last:N (use --mode frozen to freeze)")
        unknown = [c for c in self.conditioning if c not in CONDITIONING_NAMES]
        if unknown:
            raise ConfigError(f"unknown conditioning {unknown}; valid: {list(CONDITIONING_NAMES)}")
        self.conditioning = tuple(c for c in CONDITIONING_NAMES if c in self.conditioning)
        if self.preset is not None:
            load_preset(self.preset)  # an unknown name fails now, not after the bags are read
        for name in ("batch_size", "episodes_per_batch", "hidden", "layers", "stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        # `not a < x` rather than `x <= a`: NaN fails every comparison and must be refused too
        for name in ("lr", "encoder_lr"):  # AdamW moves every weight by about lr a step: above 1 only destroys
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0 <= self.weight_decay < math.inf:
            raise ConfigError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        for name, high in (("warmup_fraction", 1.0), ("dropout", 1.0)):
            if not 0 <= getattr(self, name) < high:
                raise ConfigError(f"{name} must be in [0, {high:g}), got {getattr(self, name)}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    @property
    def finetune_spec(self) -> Finetune:
        return Finetune.parse(self.finetune)

    @property
    def total_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.mode]
