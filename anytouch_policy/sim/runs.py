"""What an `anytouch sim` command asks for: one config per command, whose fields are its flags (cli/sim.py).

    SimEval(policy="expert", episodes=20)               # anytouch sim eval
    SimRender(out="sim_preview", sensors=["digit"])     # anytouch sim render
    SimRecord(out="demos", initial_g=(80.0, 120.0))     # anytouch sim record: masses drawn per episode
    SimDataset(out="data/sim_tacquad", hours=1.0)       # anytouch sim dataset: aligned multi-sensor touch data
    SimSensors(out="rig/random", count=16)              # anytouch sim sensors: random sensor model files

Each rig command builds the RigConfig of its run (`rig()`) and its sensor specs (`sensor_specs()`). The dataset's
ranges are shared with sim.dataset.write_dataset, which checks a caller's values against the same intervals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from anytouch_policy.bounds import AT_LEAST_1, MASS_G, NONNEGATIVE, TILT_DEG, Interval
from anytouch_policy.schema import config
from anytouch_policy.sim.params import INITIAL_G, MAX_TICKS, TARGET_G, RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.threads import WORKERS_HELP

Grams = Annotated[float, MASS_G]
Count = Annotated[int, AT_LEAST_1]
SENSOR_HELP = "simulated sensor: a shipped model name or a model file (.yaml), repeatable"

#: `sim dataset`'s default sensors: the pretraining sensors (duragel stays out for the transfer experiment).
DATASET_SENSORS = ("gelsight_mini", "digit", "gelslim", "gelsight")
DATASET_HOURS = Interval.parse("(0, 1000]")  # simulated contact time, h
SAMPLE_EVERY_S = Interval.parse("[0.05, 60]")  # sim time between samples of a scenario, s
FRAME_PX = Interval.parse("[16, 1024]")  # side of a stored (resized) frame, px
HELDOUT_SHARE = Interval.parse("[0, 0.5]")  # share of scenarios held out for probing
DATASET_WORKERS = Interval.parse("[1, 64]")
RANDOM_SENSORS = Interval.parse("[1, 1000]")  # models drawn by `sim sensors`


@config(kw_only=True)
class SimRun:
    """What every sim command shares: the sensors, the run seed and the rig's nuisances."""

    sensors: list[str] = Field(default_factory=lambda: ["gelsight_mini"], description=SENSOR_HELP)
    seed: Annotated[int, NONNEGATIVE] = Field(default=0, description="run seed")
    randomize: bool = Field(default=True, description="physics and sensor nuisances drawn per episode")
    initial_tilt_deg: Annotated[float, TILT_DEG] | None = Field(
        default=None, description="start tilt (default: a little below the critical tilt of the initial fill)")

    def sensor_specs(self) -> list[SensorSpec]:
        return [SensorSpec.parse(s) for s in self.sensors]

    def rig(self, initial_g: float, **fields: Any) -> RigConfig:
        return RigConfig(initial_g=initial_g, randomize=self.randomize, initial_tilt_deg=self.initial_tilt_deg,
                         **fields)


@config(kw_only=True)
class SimEval(SimRun):
    """`anytouch sim eval`: K closed-loop episodes of a scripted policy (table 4's expert rows)."""

    policy: Literal["expert", "expert-static"] = Field(
        default="expert", description="expert: scripted expert; expert-static: the expert without the stream state "
                                      "(1-frame bound)")
    episodes: Count = Field(default=20, description="episodes (evaluation seed range)")
    initial_g: Grams = Field(default=INITIAL_G, description="beads in the cylinder at the start (g)")
    target_g: Grams = Field(default=TARGET_G, description="mass to pour (g)")
    max_ticks: Count = Field(default=MAX_TICKS, description="give up an episode after this many 5 Hz ticks")
    workers: Count | None = Field(default=None, description=WORKERS_HELP)


@config(kw_only=True)
class SimRender(SimRun):
    """`anytouch sim render`: a PNG strip and a GIF per sensor over one expert pour."""

    out: Path = Field(description="output directory (new or empty)")
    sensors: list[str] = Field(default_factory=lambda: ["gelsight_mini", "digit"], description=SENSOR_HELP)
    initial_g: Grams = Field(default=INITIAL_G, description="beads in the cylinder at the start (g)")
    target_g: Grams = Field(default=TARGET_G, description="mass to pour (g)")
    columns: Annotated[int, Interval.parse("[2, 64]")] = Field(default=8, description="moments shown in the strip")
    overwrite: bool = Field(default=False, description="replace an earlier preview in --out")


@config(kw_only=True)
class SimRecord(SimRun):
    """`anytouch sim record`: scripted-expert demonstrations, (initial, target) drawn per episode."""

    out: Path = Field(description="output directory (new or empty)")
    initial_g: tuple[Grams, Grams] = Field(
        default=(INITIAL_G, INITIAL_G), description="beads in the cylinder at the start (g), drawn per episode from "
                                                    "[A, B]")
    target_g: tuple[Grams, Grams] = Field(
        default=(TARGET_G, TARGET_G), description="mass to pour (g), drawn per episode from [C, D] and at least 10 g "
                                                  "below the initial mass")
    episodes: Count = Field(default=20, description="demonstrations (TRAIN seed range, <= 10000)")
    max_ticks: Count = Field(default=MAX_TICKS, description="give up an episode after this many 5 Hz ticks")
    overwrite: bool = Field(default=False, description="replace an earlier recording in --out")
    progress: bool = Field(default=True, description="progress bar")


@config(kw_only=True)
class SimDataset:
    """`anytouch sim dataset`: aligned multi-sensor touch data for pretraining (sim.dataset.write_dataset)."""

    out: Path = Field(description="output directory (new or empty)")
    overwrite: bool = Field(default=False, description="replace an earlier dataset in --out")
    hours: Annotated[float, DATASET_HOURS] = Field(
        description="simulated contact time: scenarios are drawn until their durations add up to this")
    sensors: list[str] = Field(default_factory=lambda: list(DATASET_SENSORS),
                               description="sensor rendering every state, repeatable (duragel stays out for the "
                                           "transfer experiment)")
    seed: Annotated[int, NONNEGATIVE] = Field(default=0, description="dataset seed (same seed, same bytes)")
    every_s: Annotated[float, SAMPLE_EVERY_S] = Field(
        default=1.0, description="seconds of sim time between samples of a scenario (+/- 25 %)")
    size: Annotated[int, Interval(0, FRAME_PX.high)] = Field(
        default=112, description="frames stored resized to PX x PX as the encoder reads them (112 is anytouch-small's "
                                 "input, 224 the large preset's); 0 keeps each sensor's native frames")
    heldout: Annotated[float, HELDOUT_SHARE] = Field(
        default=0.1, description="share of scenarios held out for probing (heldout.jsonl)")
    workers: Annotated[int, DATASET_WORKERS] = Field(
        default=1, description="processes rendering scenarios in parallel (the output does not depend on it)")
    progress: bool = Field(default=True, description="progress bar")

    @field_validator("size")
    @classmethod
    def _size(cls, value: int) -> int:
        if value and value not in FRAME_PX:
            raise ValueError(f"must be 0 (native frames) or in {FRAME_PX} px, got {value}")
        return value

    def sensor_specs(self) -> list[SensorSpec]:
        return [SensorSpec.parse(s) for s in self.sensors]


@config(kw_only=True)
class SimSensors:
    """`anytouch sim sensors`: random sensor model files (sim.sensor_family) for training the universal token."""

    out: Path = Field(description="output directory (new or empty): one random_NNN.yaml per model")
    count: Annotated[int, RANDOM_SENSORS] = Field(default=16, description="models to draw")
    seed: Annotated[int, NONNEGATIVE] = Field(default=0, description="family seed (model n is the same for any count)")
