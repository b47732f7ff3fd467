"""What a training run is asked to do: `anytouch train` builds its flags from TrainConfig (defaults, ranges, help)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from anytouch_policy.bounds import AT_LEAST_1, DROPOUT, FRACTION, LEARNING_RATE, NONNEGATIVE, Interval
from anytouch_policy.model.config import load_preset
from anytouch_policy.model.encoder import Finetune, FinetuneMode
from anytouch_policy.model.runtime import Precision, TokenMode
from anytouch_policy.policy.config import CONDITIONING_NAMES, ReferenceMode, ordered_conditioning
from anytouch_policy.schema import config
from anytouch_policy.train.augment import Augment
from anytouch_policy.train.metrics import Selection

Count = Annotated[int, AT_LEAST_1]
Rate = Annotated[float, LEARNING_RATE]


class LabelMode(StrEnum):
    """Which labels the head learns (train.data): what the expert did at every tick, or ticks up to its decision
    with hindsight targets (what makes a policy over many targets read its target input)."""

    AUTO = "auto"  # hindsight when the demonstrations' targets differ, demonstrated when they share one
    DEMONSTRATED = "demonstrated"
    HINDSIGHT = "hindsight"


class TrainMode(StrEnum):
    """Frozen: the encoder is a fixed feature extractor (embeddings cached), only the head trains.
    Finetune: encoder (all, or its last N blocks) and head train together on augmented frames."""

    FROZEN = "frozen"
    FINETUNE = "finetune"


#: Epochs when --epochs is not given: the head alone converges fast on cached embeddings.
DEFAULT_EPOCHS = {TrainMode.FROZEN: 40, TrainMode.FINETUNE: 8}
#: Head dropout when --dropout is not given.
HEAD_DROPOUT = 0.1


@config(frozen=False)
class TrainConfig:
    bags: Annotated[list[Path], Field(min_length=1, description="folder of episode bags (MCAP or sqlite3), or one "
                                                                 "episode; repeatable")]
    out: Path = Field(description="policy bundle folder to write")
    mode: TrainMode = TrainMode.FROZEN
    encoder: Path | None = Field(default=None, description="encoder bundle to start from")
    preset: str | None = Field(default=None, description="a preset, randomly initialised from --seed")
    finetune: str = Field(default="all", description="finetune: which encoder part trains (all or last:N)")
    frames: Literal[3, 1] = Field(
        default=3, description="3 = dynamic window, 1 = static (the newest frame repeated 3x)")
    stride: Count = Field(default=1, description="frames between the window's frames")
    token_mode: TokenMode = Field(default=TokenMode.SPECIFIC, description="sensor token")
    sensors: list[str] | None = Field(
        default=None, description="sensor name to use (default: every sensor in the bags); repeatable")
    conditioning: tuple[str, ...] = Field(default=CONDITIONING_NAMES, description="grams the head is given")
    reference: ReferenceMode = Field(default=ReferenceMode.EPISODE_START, description="what the head compares the "
                                                                                      "current window with")
    epochs: Count | None = Field(default=None, description="default: 40 frozen, 8 finetune")
    batch_size: Count = 32
    episodes_per_batch: Count = 8  # finetune: a batch holds this many episodes' ticks (their references encode once)
    lr: Rate = Field(default=1e-3, description="head learning rate")
    encoder_lr: Rate = Field(default=2e-4, description="finetune: encoder learning rate")
    weight_decay: Annotated[float, NONNEGATIVE] = 0.05
    warmup_fraction: Annotated[float, Interval.parse("[0, 1)")] = 0.1  # of all steps, linear warm-up before the
    #   cosine decay
    hidden: Count = Field(default=256, description="head hidden width")
    layers: Count = Field(default=2, description="head hidden layers")
    dropout: Annotated[float, DROPOUT] = HEAD_DROPOUT
    feature_noise: Annotated[float, Interval.parse("[0, 10]")] = Field(
        default=0.0, description="frozen: Gaussian noise on the training embeddings, in units of each dimension's "
                                 "spread (a head for another sensor's embeddings, which match the seen one's only "
                                 "up to a residual)")
    remaining_weight: Annotated[float, Interval.parse("[0, 100]")] = Field(
        default=0.0, description="weight of a 4th head output that learns the grams the demonstrator still poured "
                                 "after each tick (from the scale series; the decision ignores it, the policy node "
                                 "reports it); 0: no such output")
    val_fraction: Annotated[float, FRACTION] = Field(default=0.2, description="share of episodes held out")
    select: Selection = Field(
        default=Selection.VAL_LOSS, description="epoch saved as the bundle: lowest validation loss, or the last (end "
                                                "of the schedule)")
    seed: Annotated[int, NONNEGATIVE] = 0
    labels: LabelMode = Field(
        default=LabelMode.AUTO, description="demonstrated: the expert's action at every tick; hindsight: ticks up to "
                                            "its decision, half relabelled with other targets; auto: hindsight when "
                                            "the demonstrations' targets differ")
    class_weights: bool = Field(default=True, description="inverse-frequency weights in the loss (wait/pour dominate, "
                                                          "retract is rare)")
    augment: Augment | None = Field(default_factory=Augment, description="finetune: per-episode colour jitter")
    prefix_draws: Annotated[int, Interval.parse("[0, 32]")] = Field(
        default=0, description="finetune last:N with colour jitter: store the frozen blocks' output for this many "
                               "draws per episode instead of running them at every step with a fresh draw (0); "
                               "without jitter (--no-augment) they always run once (docs/training.md)")
    cache_dir: Path | None = Field(default=None, description="frozen: embedding cache (default ~/.cache/anytouch)")
    use_cache: bool = Field(default=True, description="frozen: keep embeddings in the on-disk cache")
    precision: Precision = Field(
        default=Precision.FLOAT32, description="frozen: precision the embeddings are computed (and later run) in")
    amp: bool = Field(default=False, description="finetune: bfloat16 autocast (faster on recent CPUs/GPUs)")
    device: str = Field(default="auto", description="auto | cpu | cuda")
    threads: Count | None = Field(default=None, description="CPU threads (torch)")
    skip_bad: bool = Field(default=False, description="skip (and list) corrupt bags instead of stopping")
    progress: bool = Field(default=True, description="progress bars")
    overwrite: bool = Field(default=False, description="replace an existing bundle at --out")

    @field_validator("conditioning")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return ordered_conditioning(value)

    @field_validator("finetune")
    @classmethod
    def _spec(cls, value: str) -> str:
        Finetune.parse(value)  # its ConfigError (a ValueError) says what is expected
        return value

    @field_validator("preset")
    @classmethod
    def _shipped(cls, value: str | None) -> str | None:
        if value is not None:
            load_preset(value)  # an unknown name fails now, not after the bags are read
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if (self.encoder is None) == (self.preset is None):
            raise ValueError("give exactly one encoder source: --encoder BUNDLE or --preset NAME")
        if self.mode is TrainMode.FINETUNE and self.finetune_spec.mode is FinetuneMode.FROZEN:
            raise ValueError("--mode finetune needs --finetune all or last:N (use --mode frozen to freeze)")
        if self.mode is TrainMode.FINETUNE and self.feature_noise:
            raise ValueError("--feature-noise is for --mode frozen (a fine-tune's colour jitter is --augment)")
        return self

    @property
    def finetune_spec(self) -> Finetune:
        return Finetune.parse(self.finetune)

    @property
    def stores_frozen_blocks(self) -> bool:
        """Whether a fine-tune runs its frozen blocks once (train.trainers.CachedPrefixTrainer): `last:N` without
        colour jitter, where that changes nothing but the time, or with --prefix-draws stored draws."""
        return (self.mode is TrainMode.FINETUNE and self.finetune_spec.mode is FinetuneMode.LAST
                and (self.augment is None or self.prefix_draws > 0))

    @property
    def total_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.mode]
