"""What `anytouch demo` runs: its settings (checked before anything is recorded), its encoders and its six cells.

The table has the paper's form (table 4): three rows, two columns, every cell evaluated on the same episode seeds.

    row                                     encoder                              window
    random init (no touch pretraining)      --preset, randomly initialised       3 frames (the paper's CLIP row)
    sim-pretrained, static                  --encoder BUNDLE                     1 frame (repeated 3x)
    sim-pretrained, dynamic                 --encoder BUNDLE                     3 frames
    columns: fine-tune (encoder + head) and freeze (head only, on cached embeddings)

The pretrained encoder of `anytouch demo` is the bundle shipped as models/anytouch-small
(anytouch_policy.model.bundle.SHIPPED_ENCODER). Without one the "pretrained" rows start from the random init as well;
the table says so in its header, and the pretrained dynamic cells are then the random row's own runs (the same
experiment), trained and evaluated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from anytouch_policy.bounds import AT_LEAST_1, DROPOUT, MASS_G, NONNEGATIVE, Interval
from anytouch_policy.demo.record import draw_pairs
from anytouch_policy.model.bundle import read_bundle_config
from anytouch_policy.model.config import EncoderConfig, load_preset
from anytouch_policy.model.encoder import Finetune, FinetuneMode
from anytouch_policy.schema import config
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.threads import WORKERS_HELP
from anytouch_policy.train import TrainMode
from anytouch_policy.train.metrics import Selection

#: Closed-loop evaluation episodes per cell: enough for a 95 % interval to tell the rows apart (docs/training.md).
EPISODES_PER_CELL = 50


class Init(StrEnum):
    """Where a row's encoder starts."""

    RANDOM = "random"
    PRETRAINED = "pretrained"


@dataclass(frozen=True)
class Variant:
    """One cell of the table: a row (encoder start, window) and a column (training mode)."""

    init: Init
    mode: TrainMode
    frames: Literal[3, 1]  # a dynamic or a static window

    @property
    def dynamic(self) -> bool:
        return self.frames > 1

    @property
    def row(self) -> str:
        return f"{self.init.value}-{'dynamic' if self.dynamic else 'static'}"

    @property
    def name(self) -> str:
        """Folder and key of the cell: <init>-<mode>-<window>, e.g. pretrained-frozen-dynamic."""
        return f"{self.init.value}-{self.mode.value}-{'dynamic' if self.dynamic else 'static'}"


#: The table's rows (random init, pretrained static, pretrained dynamic) and columns (fine-tune, freeze).
ROWS: tuple[tuple[Init, Literal[3, 1]], ...] = ((Init.RANDOM, 3), (Init.PRETRAINED, 1), (Init.PRETRAINED, 3))
COLUMNS = (TrainMode.FINETUNE, TrainMode.FROZEN)
VARIANTS = tuple(Variant(init, mode, frames) for init, frames in ROWS for mode in COLUMNS)


Count = Annotated[int, AT_LEAST_1]
Grams = Annotated[float, MASS_G]


@config
class DemoConfig:
    """Everything the demo does, checked when built: a typo must not cost a recording."""

    out: Path = Field(description="output folder (default runs/demo-<YYYYmmdd-HHMMSS>)")
    episodes: Count = Field(default=40, description="expert demonstrations to record")
    eval_episodes: Count = Field(default=EPISODES_PER_CELL, description="closed-loop evaluation episodes per cell, "
                                                                        "the same seeds in every cell")
    initial_g: Grams = Field(default=100.0, description="beads in the cylinder at the start (g)")
    target_g: Grams = Field(default=60.0, description="mass to pour (g)")
    sensors: list[str] = Field(default_factory=lambda: ["gelsight_mini"],
                               description="simulated sensor: a shipped model name or a model file (.yaml), "
                                           "repeatable")
    seed: Annotated[int, NONNEGATIVE] = 0
    encoder: Path | None = Field(default=None, description="encoder bundle of the pretrained rows (None: they use "
                                                           "the random init too)")
    preset: str = Field(default="anytouch-small", description="encoder preset of the random-init row (and of the "
                                                              "pretrained rows without an encoder)")
    # last:1 with no jitter, not all: the frozen blocks then run once per cell (anytouch train), three fine-tunes
    # take a third of the time, and the fine-tuned dynamic cell poured as well over run seeds (docs/training.md)
    finetune: str = Field(default="last:1", description="which encoder part the fine-tuned cells train (all or "
                                                        "last:N)")
    augment: bool = Field(default=False, description="fine-tuned cells: per-episode colour jitter (with last:N "
                                                     "the frozen blocks then run at every step)")
    finetune_epochs: Count = 8  # docs/training.md: the time budget of three fine-tunes on 2 cores
    frozen_epochs: Count = 40
    # 0.5, not anytouch train's 0.1: a frozen head that also learns the grams still to pour over-fits these 40
    # demonstrations at 0.1 and waits out the clock (docs/training.md "Head dropout"); without that output 0.5 did worse
    frozen_dropout: Annotated[float, DROPOUT] = Field(default=0.5, description="head dropout of the frozen cells "
                                                                               "(the fine-tuned cells keep 0.1)")
    # 1, not train's 0: the sim's demonstrations carry the scale the target needs, and it lowered five of the six
    # cells (docs/training.md "The grams still to pour"); a user's own bags may have no scale
    remaining_weight: Annotated[float, Interval.parse("[0, 100]")] = Field(
        default=1.0, description="every cell's head also learns the grams still to pour, at this loss weight "
                                 "(anytouch train --remaining-weight; 0: without it)")
    stride: Count = 1
    bags: Path | None = Field(default=None, description="use these demonstrations instead of recording")
    max_ticks: Count | None = None  # cut episodes (demonstrations and evaluation) after this many ticks
    threads: Count | None = Field(default=2, description="CPU threads (torch) of training")
    workers: Count | None = Field(default=None, description=WORKERS_HELP)
    # float32, not bfloat16 where native: float32 gave the same table, cell for cell, on an AMD EPYC and an Intel
    # Xeon, bfloat16 another one (docs/training.md); with last:1 it saves only 4-6 s a cell
    amp: bool = Field(default=False, description="fine-tune in bfloat16 autocast: a little faster where the CPU/GPU "
                                                 "runs it natively, but the cells then depend on the machine")
    select: Selection = Selection.LAST  # 8 validation episodes pick epochs by noise; the schedule's end is stabler
    progress: bool = Field(default=True, description="progress bars")

    @model_validator(mode="after")
    def _runnable(self) -> DemoConfig:
        if not self.target_g < self.initial_g:
            raise ValueError(f"need 0 < target_g < initial_g, got initial_g={self.initial_g}, "
                             f"target_g={self.target_g}")
        finetune = Finetune.parse(self.finetune)
        if finetune.mode is FinetuneMode.FROZEN:
            raise ValueError("finetune must be 'all' or 'last:N' (the frozen variants are trained anyway)")
        for where, arch in ((f"--preset {self.preset}", self.random_architecture),
                            (f"--encoder {self.encoder}", self.pretrained_architecture)):
            if finetune.last_n > arch.layers:
                raise ValueError(f"finetune last:{finetune.last_n} exceeds the {arch.layers} blocks of the encoder "
                                 f"of {where}")
        for spec in self.sensors:
            SensorSpec.parse(spec)
        if self.bags is None:  # the recording's rule: the target at least 10 g below the initial mass
            draw_pairs(1, initial_g=self.initial_g, target_g=self.target_g, seed=self.seed)
        elif not self.bags.is_dir():
            raise ValueError(f"--bags {self.bags} is not a folder of episodes")
        return self

    @property
    def random_architecture(self) -> EncoderConfig:
        return load_preset(self.preset)

    @property
    def pretrained_architecture(self) -> EncoderConfig:
        if self.encoder is None:
            return self.random_architecture
        return read_bundle_config(self.encoder).architecture

    @property
    def pretrained(self) -> bool:
        """Whether the pretrained rows have an encoder of their own (else they run the random init)."""
        return self.encoder is not None

    def same_run(self, variant: Variant) -> Variant:
        """The variant whose run `variant` is: itself, or without a pretrained encoder the random row's cell of a
        pretrained dynamic cell (the same encoder, window and mode: one experiment, run once)."""
        if not self.pretrained and variant.init is Init.PRETRAINED and variant.dynamic:
            return Variant(Init.RANDOM, variant.mode, variant.frames)
        return variant

    def encoder_source(self, init: Init) -> str:
        """A row's encoder in words, for the log and the table's header."""
        if init is Init.PRETRAINED and self.encoder is not None:
            return f"encoder bundle {self.encoder}"
        return f"{self.preset} preset, random init (seed {self.seed})"

    @classmethod
    def quick(cls, **fields: Any) -> DemoConfig:
        """A small end-to-end run for tests (a minute or two on 2 cores). Its episodes are whole pours (the expert
        needs 75-120 ticks; cutting them short would leave every row at the same timeout error), and the 8
        demonstrations with 40 head epochs on cached embeddings are the least that lets a frozen policy finish pours
        of its own, so the smoke test tells a working pipeline from one that learns nothing."""
        base: dict[str, Any] = {"episodes": 8, "eval_episodes": 3, "preset": "anytouch-tiny", "finetune_epochs": 3,
                                "frozen_epochs": 40}
        return cls(**(base | fields))
