"""The shipped checkpoint's recipe, end to end: `anytouch pretrain-recipe --out DIR`.

    OUT/data/      anytouch sim dataset (fixed seed; gelsight_mini, digit, gelslim, gelsight; DuraGel stays out)
    OUT/stage1/    masked modelling (static, dynamic, next frame; universal-token schedule)
    OUT/stage2/    touch-only stage 2 from stage 1's encoder and decoder: cross-sensor matching (+ the optional
                   cross-sensor InfoNCE and hard negatives the recipe names) + masked modelling
    OUT/<bundle>/  the exported encoder bundle, its config.json holding the recipe (every setting of both stages,
                   the dataset command and seed, the code version)

Every part is resumable: a finished part is kept, an interrupted stage continues from its checkpoint, so running
the same command again after a stop loses at most `save_every` steps.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from anytouch_policy.bounds import DROPOUT, FRACTION, LEARNING_RATE, NONNEGATIVE, POSITIVE, PROBABILITY, Interval
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import SourceInfo, load_encoder_bundle, save_encoder_bundle
from anytouch_policy.model.config import Count
from anytouch_policy.outputs import make_dir
from anytouch_policy.pretrain.config import (
    NO_CLIP,
    RESUMABLE_CHANGES,
    DecoderConfig,
    LossWeights,
    NonNegative,
    PretrainConfig,
    Stage,
)
from anytouch_policy.pretrain.trainer import CHECKPOINT, ENCODER_DIR, RUN_JSON, run_pretrain
from anytouch_policy.schema import config, dump

DATA_DIR = "data"
STAGE_DIRS = {Stage.MASKED: "stage1", Stage.ALIGN: "stage2"}
RECIPE_JSON = "recipe.json"
SIM_HOURS = Interval.parse("(0, 1000]")


@config
class Recipe:
    """Everything that decides the exported weights (the rest, threads, workers and progress, only decides speed)."""

    bundle: str  # name of the exported bundle folder
    preset: str  # encoder architecture, randomly initialised (seed)
    hours: Annotated[float, SIM_HOURS]  # simulated contact of the dataset
    data_seed: Annotated[int, NONNEGATIVE]
    every_s: Annotated[float, POSITIVE] = 1.0  # seconds between a scenario's samples
    heldout: Annotated[float, DROPOUT] = 0.1  # share of scenarios held out (never trained on; the probe reads them)
    seed: Annotated[int, NONNEGATIVE] = 0  # training seed (initialisation, order, masks, universal-token draws)
    batch_size: Count = 64
    stage1_epochs: Count = 2
    stage1_lr: Annotated[float, LEARNING_RATE] = 5e-4
    stage2_epochs: Annotated[int, NONNEGATIVE] = 1  # 0: no stage 2 (the bundle is stage 1's encoder)
    stage2_max_steps: Count | None = None  # end stage 2 inside its epoch (None: all its epochs)
    stage2_lr: Annotated[float, LEARNING_RATE] = 2e-4
    warmup_epochs: NonNegative = 0.2  # stage 1
    stage2_warmup_epochs: NonNegative = 0.05
    mask_ratio: Annotated[float, FRACTION] = 0.75
    universal_max: Annotated[float, PROBABILITY] = 0.75
    decoder: DecoderConfig = DecoderConfig(width=128, layers=2, heads=4)
    match_weight: NonNegative = 0.1
    cross_sensor_nce: NonNegative = 1.0  # optional term (not in the paper); 0 = the paper's stage 2
    hard_negatives: Annotated[float, PROBABILITY] = 0.5  # matching negatives from the anchor's scenario, later/earlier

    def to_dict(self) -> dict[str, Any]:
        return dict(dump(self))

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


STAGE2_STEPS = 400
#: The shipped `anytouch-small` recipe (sized by measurement for about an hour on 2 CPU cores; models/README.md),
#: and a seconds-long one with the same steps for tests and smoke runs.
RECIPES: dict[str, Recipe] = {
    "anytouch-small": Recipe(bundle="anytouch-small", preset="anytouch-small", hours=0.4, data_seed=0,
                             stage1_epochs=2, stage1_lr=3e-4, stage2_epochs=0),
    # stage 1 then touch-only stage 2 with aligned matching batches (one sensor pair per batch, shared flips, no
    # colour jitter; models/README.md, "What was tried")
    "anytouch-small-stage2": Recipe(bundle="anytouch-small", preset="anytouch-small", hours=0.4, data_seed=0,
                                    stage1_epochs=2, stage1_lr=3e-4, stage2_epochs=1, stage2_max_steps=STAGE2_STEPS,
                                    stage2_lr=1e-4),
    "tiny": Recipe(bundle="anytouch-tiny", preset="anytouch-tiny", hours=0.003, data_seed=1, batch_size=8,
                   stage1_epochs=1, stage2_epochs=1, stage2_max_steps=20,
                   decoder=DecoderConfig(width=32, layers=1, heads=2)),
}


@config
class RecipeRun:
    """`anytouch pretrain-recipe`: which recipe, where, overrides (they make a bundle other than the shipped one)
    and how fast (threads, workers, device: these never change the weights' recipe)."""

    out: Path = Field(description="run folder (data/, stage1/, stage2/, the bundle, recipe.json)")
    recipe: Literal["anytouch-small", "anytouch-small-stage2", "tiny"] = Field(
        default="anytouch-small", description="which recipe (default anytouch-small: the shipped bundle)")
    hours: Annotated[float, SIM_HOURS] | None = Field(
        default=None, description="override the dataset's simulated hours (the bundle then differs from the shipped "
                                  "one)")
    stage1_epochs: Count | None = Field(default=None, description="override stage 1's epochs")
    stage2_epochs: Annotated[int, NONNEGATIVE] | None = Field(
        default=None, description="override stage 2's epochs (0: no stage 2)")
    workers: Annotated[int, NONNEGATIVE] = Field(
        default=1, description="dataset render processes and data loader workers")
    threads: Count = Field(default=1, description="torch CPU threads")
    device: str = Field(default="auto", description="auto | cpu | cuda")
    progress: bool = Field(default=True, description="progress bars")

    @property
    def overrides(self) -> dict[str, float]:
        """The recipe settings this run changes (None: the recipe's own)."""
        wanted = {"hours": self.hours, "stage1_epochs": self.stage1_epochs, "stage2_epochs": self.stage2_epochs}
        return {k: v for k, v in wanted.items() if v is not None}

    @property
    def command(self) -> str:
        """The command line that reproduces the bundle (the output folder as DIR)."""
        flags = [f"--{name.replace('_', '-')} {value:g}" for name, value in self.overrides.items()]
        return " ".join(["anytouch pretrain-recipe --out DIR --recipe", self.recipe, *flags])


def stage_config(recipe: Recipe, stage: Stage, out: Path, *, threads: int | None, workers: int, progress: bool,
                 device: str = "auto") -> PretrainConfig:
    """The PretrainConfig of one stage of the recipe (resume when that stage left a checkpoint)."""
    run = out / STAGE_DIRS[stage]
    resume = (run / CHECKPOINT).is_file()  # without a checkpoint an earlier attempt left nothing to continue
    common: dict[str, Any] = dict(
        out=str(run), data=(str(out / DATA_DIR),), batch_size=recipe.batch_size, mask_ratio=recipe.mask_ratio,
        decoder=recipe.decoder, universal_max=recipe.universal_max, seed=recipe.seed, device=device, threads=threads,
        workers=workers, progress=progress, resume=resume, overwrite=not resume)
    if stage is Stage.MASKED:
        return PretrainConfig(stage=stage, preset=recipe.preset, epochs=recipe.stage1_epochs, lr=recipe.stage1_lr,
                              warmup_epochs=recipe.warmup_epochs, **common)
    first = out / STAGE_DIRS[Stage.MASKED]
    return PretrainConfig(stage=stage, init=str(first / ENCODER_DIR), init_decoder=str(first / "mae_decoder"),
                          clip_arch=NO_CLIP, epochs=recipe.stage2_epochs, max_steps=recipe.stage2_max_steps,
                          lr=recipe.stage2_lr, warmup_epochs=recipe.stage2_warmup_epochs,
                          weights=LossWeights(match=recipe.match_weight, cross_sensor_nce=recipe.cross_sensor_nce),
                          hard_negatives=recipe.hard_negatives, **common)


def dataset_command(recipe: Recipe, out: str = "DIR") -> str:
    return (f"anytouch sim dataset --out {out} --hours {recipe.hours:g} --seed {recipe.data_seed} "
            f"--every {recipe.every_s:g} --heldout {recipe.heldout:g}")


def code_version() -> str | None:
    """`git describe` of the checkout this code runs from (with -dirty), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _make_data(recipe: Recipe, out: Path, workers: int, progress: bool) -> dict:
    from anytouch_policy.sim.dataset import DATASET_FILE, write_dataset

    data = out / DATA_DIR
    if (data / DATASET_FILE).is_file():
        summary = json.loads((data / DATASET_FILE).read_text())
        wanted = {"seed": recipe.data_seed, "hours": recipe.hours, "every_s": recipe.every_s,
                  "heldout": recipe.heldout}
        differ = {k: (summary.get(k), v) for k, v in wanted.items() if summary.get(k) != v}
        if differ:
            raise ConfigError(f"{data}: an earlier dataset with other settings (found, wanted): {differ}; "
                              f"give another --out")
        return summary
    from anytouch_policy.model.config import load_preset

    return write_dataset(data, hours=recipe.hours, seed=recipe.data_seed, every_s=recipe.every_s,
                         heldout=recipe.heldout, size=load_preset(recipe.preset).image_size,
                         workers=max(1, workers), bar=progress)


def _stage(config: PretrainConfig) -> dict:
    """Run (or finish, or skip when finished) one stage; its run.json."""
    done = config.out_dir / RUN_JSON
    if not done.is_file():
        result = run_pretrain(config)
        if not result.finished:  # only with stop_after, which the recipe never sets
            raise ConfigError(f"{config.out_dir}: stage stopped before its end")
    return json.loads(done.read_text())


def _settings(config: PretrainConfig) -> dict:
    """A stage's settings without the ones that only decide where and how fast it runs."""
    return {k: v for k, v in dump(config).items() if k not in RESUMABLE_CHANGES}


def run_recipe(recipe: Recipe, out: Path | str, *, workers: int = 1, threads: int | None = 1,
               progress: bool = True, device: str = "auto", command: str | None = None) -> dict:
    """Dataset, stage 1, stage 2, export; returns the summary (also OUT/recipe.json)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; the recipe writes a folder")
    make_dir(out)
    started = time.monotonic()
    timings: dict[str, float] = {}
    data = _make_data(recipe, out, workers, progress)
    timings["dataset_s"] = round(time.monotonic() - started, 1)
    runs, configs = {}, {}
    stages = (Stage.MASKED, Stage.ALIGN) if recipe.stage2_epochs > 0 else (Stage.MASKED,)
    for stage in stages:
        mark = time.monotonic()
        configs[stage] = stage_config(recipe, stage, out, threads=threads, workers=workers, progress=progress,
                                      device=device)
        runs[stage] = _stage(configs[stage])
        timings[f"{STAGE_DIRS[stage]}_s"] = round(time.monotonic() - mark, 1)
    trained = load_encoder_bundle(out / STAGE_DIRS[stages[-1]] / ENCODER_DIR)
    record = {
        "name": recipe.bundle,
        "command": command or f"anytouch pretrain-recipe --out DIR --recipe {recipe.bundle}",
        "settings": recipe.to_dict(),
        "dataset": {"command": dataset_command(recipe), "seed": recipe.data_seed, "hours": recipe.hours,
                    "sensors": [s["name"] for s in data["sensors"]], "splits": data["splits"]},
        "stages": {STAGE_DIRS[s]: {"settings": _settings(c), "steps": runs[s]["steps"]} for s, c in configs.items()},
        "code_version": code_version(),
    }
    sha = save_encoder_bundle(out / recipe.bundle, trained.encoder,
                              source=SourceInfo(path=f"recipe:{recipe.bundle}", sha256=trained.weights_sha256,
                                                format="anytouch-pretrain-recipe"),
                              trained_slots=trained.trained_slots, overwrite=True, recipe=record)
    timings["total_s"] = round(time.monotonic() - started, 1)
    summary = {"bundle": str(out / recipe.bundle), "weights_sha256": sha, "timings": timings,
               "steps": {STAGE_DIRS[s]: r["steps"] for s, r in runs.items()}, "recipe": record}
    (out / RECIPE_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
