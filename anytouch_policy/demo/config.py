"""What `anytouch demo` runs: its settings (checked before anything is recorded), its encoders and its six cells.

The table has the paper's form (table 4): three rows, two columns, every cell evaluated on the same episode seeds.

    row                                     encoder                              window
    random init (no touch pretraining)      --preset, randomly initialised       3 frames (the paper's CLIP row)
    sim-pretrained, static                  --encoder BUNDLE                     1 frame (repeated 3x)
    sim-pretrained, dynamic                 --encoder BUNDLE                     3 frames
    columns: fine-tune (encoder + head) and freeze (head only, on cached embeddings)

The pretrained encoder of `anytouch demo` is the bundle shipped as models/PRETRAINED_ENCODER (`default_encoder`).
Without one the "pretrained" rows start from the random init as well; the table says so in its header, and the
pretrained dynamic cells are then the random row's own runs (the same experiment), trained and evaluated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from anytouch_policy.demo.record import draw_pairs
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import CONFIG_FILE, read_bundle_config
from anytouch_policy.model.config import EncoderConfig, load_preset
from anytouch_policy.model.encoder import Finetune, FinetuneMode
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.train import TrainMode
from anytouch_policy.train.metrics import Selection

#: The sim-pretrained anytouch-small encoder bundle shipped in models/ (models/README.md): the demo's default.
PRETRAINED_ENCODER = "anytouch-small-sim"
#: Closed-loop evaluation episodes per cell: enough for a 95 % interval to tell the rows apart (docs/training.md).
EPISODES_PER_CELL = 50


def models_dir() -> Path:
    """The checkout's models/ folder, where shipped bundles live."""
    return Path(__file__).resolve().parents[2] / "models"


def shipped_encoder_path() -> Path:
    """Where the shipped pretrained encoder bundle lives (it may not be there)."""
    return models_dir() / PRETRAINED_ENCODER


def default_encoder() -> Path | None:
    """models/PRETRAINED_ENCODER when that bundle is there, else None (the demo then runs the random init only)."""
    path = shipped_encoder_path()
    return path if (path / CONFIG_FILE).is_file() else None


class Init(StrEnum):
    """Where a row's encoder starts."""

    RANDOM = "random"
    PRETRAINED = "pretrained"


@dataclass(frozen=True)
class Variant:
    """One cell of the table: a row (encoder start, window) and a column (training mode)."""

    init: Init
    mode: TrainMode
    frames: int

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
ROWS = ((Init.RANDOM, 3), (Init.PRETRAINED, 1), (Init.PRETRAINED, 3))
COLUMNS = (TrainMode.FINETUNE, TrainMode.FROZEN)
VARIANTS = tuple(Variant(init, mode, frames) for init, frames in ROWS for mode in COLUMNS)


@dataclass
class DemoConfig:
    out: Path
    episodes: int = 40  # expert demonstrations
    eval_episodes: int = EPISODES_PER_CELL  # closed-loop episodes per cell, the same seeds in every cell
    initial_g: float = 100.0
    target_g: float = 60.0
    sensors: tuple[str, ...] = ("gelsight_mini",)  # sim sensor specs
    seed: int = 0
    encoder: Path | None = None  # the pretrained rows' encoder bundle; None: they use the random init too
    preset: str = "anytouch-small"  # the random-init row (and the pretrained rows without an encoder)
    finetune: str = "all"
    finetune_epochs: int = 8  # docs/training.md: the time budget of three fine-tunes on 2 cores
    frozen_epochs: int = 40
    stride: int = 1
    bags: Path | None = None  # use these demonstrations instead of recording
    max_ticks: int | None = None  # cut episodes (demonstrations and evaluation) after this many ticks
    threads: int | None = 2  # torch threads of training (and of evaluation with workers=1)
    workers: int | None = None  # processes for the evaluation episodes, one torch thread each (None: one per CPU)
    amp: bool | None = None  # fine-tune in bfloat16 autocast; None: where the CPU or GPU runs bfloat16 natively
    select: Selection = Selection.LAST  # 8 validation episodes pick epochs by noise; the schedule's end is stabler
    progress: bool = True

    def __post_init__(self) -> None:
        """Every setting is checked here, before anything is recorded (a typo must not cost a recording)."""
        for name in ("episodes", "eval_episodes", "finetune_epochs", "frozen_epochs", "stride", "max_ticks",
                     "threads", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"demo: {name} must be an integer >= 1, got {value!r}")
        if not 0 < self.target_g < self.initial_g < math.inf:
            raise ConfigError(f"demo: need 0 < target_g < initial_g, got initial_g={self.initial_g}, "
                              f"target_g={self.target_g}")
        self.sensors = tuple(self.sensors)
        finetune = Finetune.parse(self.finetune)
        if finetune.mode is FinetuneMode.FROZEN:
            raise ConfigError("demo: finetune must be 'all' or 'last:N' (the frozen variants are trained anyway)")
        for where, arch in (("--preset " + self.preset, self.random_architecture),
                            (f"--encoder {self.encoder}", self.pretrained_architecture)):
            if finetune.last_n > arch.layers:
                raise ConfigError(f"demo: finetune last:{finetune.last_n} exceeds the {arch.layers} blocks of the "
                                  f"encoder of {where}")
        for spec in self.sensors:
            SensorSpec.parse(spec)
        if self.bags is None:  # the recording's rule: the target at least 10 g below the initial mass
            draw_pairs(1, initial_g=self.initial_g, target_g=self.target_g, seed=self.seed)
        if self.bags is not None and not Path(self.bags).is_dir():
            raise ConfigError(f"demo: --bags {self.bags} is not a folder of episodes")

    @property
    def random_architecture(self) -> EncoderConfig:
        return load_preset(self.preset)

    @property
    def pretrained_architecture(self) -> EncoderConfig:
        if self.encoder is None:
            return self.random_architecture
        return EncoderConfig.from_dict(read_bundle_config(self.encoder)["architecture"],
                                       where=f"{self.encoder}/config.json field 'architecture'")

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
    def quick(cls, out: Path, **overrides: object) -> DemoConfig:
        """A small end-to-end run for tests (a minute or two on 2 cores). Its episodes are whole pours (the expert
        needs 75-120 ticks; cutting them short would leave every row at the same timeout error), and the 8
        demonstrations with 40 head epochs on cached embeddings are the least that lets a frozen policy finish pours
        of its own, so the smoke test tells a working pipeline from one that learns nothing."""
        base = {"episodes": 8, "eval_episodes": 3, "preset": "anytouch-tiny", "finetune_epochs": 3,
                "frozen_epochs": 40}
        base.update(overrides)
        return cls(out=out, **base)
