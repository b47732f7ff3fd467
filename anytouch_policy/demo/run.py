"""`anytouch demo`: the main job on the simulated rig, end to end, in one command.

    1. record N expert demonstrations (100 g -> 60 g, TRAIN seeds) into bags   OUT/bags/   (as `sim record`)
    2. train four policies from those bags                                     OUT/models/<variant>/
         finetune-dynamic, finetune-static, frozen-dynamic, frozen-static
    3. evaluate each in closed loop through PolicyRuntime (EVAL seeds)          OUT/eval/<variant>.json
    4. table 4: mean error (g) +/- std, fine-tune vs freeze, dynamic vs static  OUT/table.{md,json}, OUT/*.png

The encoder starts from `DemoConfig.encoder` (a bundle) when given, else from `preset` randomly initialised from
the seed. The command line's default is the shipped sim-pretrained models/anytouch-small (the released AnyTouch
weights cannot be downloaded on a fresh machine, docs/training.md); `--preset anytouch-small` is the random-init
baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from anytouch_policy.bounds import AT_LEAST_1, MASS_G, NONNEGATIVE
from anytouch_policy.demo.record import draw_pairs, record_demonstrations
from anytouch_policy.demo.table import Cell, plot_errors, render_markdown, render_text
from anytouch_policy.eval.policy import PolicyEval, evaluate_policy, plot_pours
from anytouch_policy.eval.rollout import EpisodePool, evaluate
from anytouch_policy.model.bundle import read_bundle_config
from anytouch_policy.model.config import load_preset
from anytouch_policy.model.encoder import Finetune, FinetuneMode
from anytouch_policy.outputs import check_output_dir
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.schema import config
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.threads import WORKERS_HELP, set_torch_threads
from anytouch_policy.train import TrainConfig, TrainMode, train
from anytouch_policy.train.metrics import Selection
from anytouch_policy.train.trainers import bfloat16_is_native


@dataclass(frozen=True)
class Variant:
    mode: TrainMode
    frames: Literal[3, 1]  # a dynamic or a static window

    @property
    def dynamic(self) -> bool:
        return self.frames > 1

    @property
    def name(self) -> str:
        return f"{self.mode.value}-{'dynamic' if self.dynamic else 'static'}"


Count = Annotated[int, AT_LEAST_1]
Grams = Annotated[float, MASS_G]

VARIANTS = (Variant(TrainMode.FINETUNE, 3), Variant(TrainMode.FINETUNE, 1), Variant(TrainMode.FROZEN, 3),
            Variant(TrainMode.FROZEN, 1))


@config(frozen=False)
class DemoConfig:
    """Everything the demo does, checked when built: a typo must not cost a recording."""

    out: Path = Field(description="output folder (default runs/demo-<YYYYmmdd-HHMMSS>)")
    episodes: Count = Field(default=40, description="expert demonstrations to record")
    eval_episodes: Count = Field(default=20, description="closed-loop episodes per policy")
    initial_g: Grams = Field(default=100.0, description="beads in the cylinder at the start (g)")
    target_g: Grams = Field(default=60.0, description="mass to pour (g)")
    sensors: list[str] = Field(default_factory=lambda: ["gelsight_mini"],
                               description="simulated sensor: a shipped model name or a model file (.yaml), "
                                           "repeatable")
    seed: Annotated[int, NONNEGATIVE] = 0
    encoder: Path | None = Field(default=None, description="encoder bundle to start from")
    preset: str = Field(default="anytouch-small", description="random-init preset")
    finetune: str = Field(default="all", description="which encoder part the fine-tuned variants train (all or last:N)")
    finetune_epochs: Count = 16  # 16 x ~27 s per variant on 2 cores: what brings fine-tuned dynamic under 2 g
    frozen_epochs: Count = 40
    stride: Count = 1
    bags: Path | None = Field(default=None, description="use these demonstrations instead of recording")
    max_ticks: Count | None = None  # cut episodes (demonstrations and evaluation) after this many ticks
    threads: Count | None = Field(default=2, description="CPU threads (torch) of training")
    workers: Count | None = Field(default=None, description=WORKERS_HELP)
    amp: bool | None = Field(
        default=None, description="fine-tune in bfloat16 autocast (default: where the CPU/GPU runs bfloat16 natively)")
    select: Selection = Selection.LAST  # 8 validation episodes pick epochs by noise; the schedule's end is stabler
    progress: bool = Field(default=True, description="progress bars")

    @model_validator(mode="after")
    def _runnable(self) -> DemoConfig:
        if not self.target_g < self.initial_g:
            raise ValueError(f"need 0 < target_g < initial_g, got initial_g={self.initial_g}, "
                             f"target_g={self.target_g}")
        arch = load_preset(self.preset) if self.encoder is None else read_bundle_config(self.encoder).architecture
        finetune = Finetune.parse(self.finetune)
        if finetune.mode is FinetuneMode.FROZEN:
            raise ValueError("finetune must be 'all' or 'last:N' (the frozen variants are trained anyway)")
        if finetune.last_n > arch.layers:
            raise ValueError(f"finetune last:{finetune.last_n} exceeds the encoder's {arch.layers} blocks")
        for spec in self.sensors:
            SensorSpec.parse(spec)
        if self.bags is None:  # the recording's rule: the target at least 10 g below the initial mass
            draw_pairs(1, initial_g=self.initial_g, target_g=self.target_g, seed=self.seed)
        elif not self.bags.is_dir():
            raise ValueError(f"--bags {self.bags} is not a folder of episodes")
        return self

    @classmethod
    def quick(cls, **fields: Any) -> DemoConfig:
        """A small end-to-end run for tests (about a minute on 2 cores). Its episodes are whole pours (the expert
        needs 75-120 ticks; cutting them short would leave every row at the same timeout error), and the 8
        demonstrations with 40 head epochs on cached embeddings are the least that lets a frozen policy finish pours
        of its own, so the smoke test tells a working pipeline from one that learns nothing."""
        base: dict[str, Any] = {"episodes": 8, "eval_episodes": 2, "preset": "anytouch-tiny", "finetune_epochs": 3,
                "frozen_epochs": 40}
        return cls(**(base | fields))


@dataclass
class DemoResult:
    out: Path
    table_text: str
    table: dict
    seconds: float


def _cell(ev: PolicyEval) -> Cell:
    s = ev.report.summary()
    return Cell(mean_g=s["mean_abs_error_g"], std_g=s["std_abs_error_g"], episodes=len(ev.report.episodes),
                timeouts=int(s["timeouts"]))


def run_demo(config: DemoConfig, *, log: Callable[[str], None] = print) -> DemoResult:
    """Record, train, evaluate and tabulate; every stage logs its progress and duration."""
    start = time.perf_counter()
    set_torch_threads(config.threads)
    out = check_output_dir(config.out, None)  # the demo writes as it goes: only a new or empty folder
    out.mkdir(parents=True, exist_ok=True)
    specs = [SensorSpec.parse(s) for s in config.sensors]
    rig = RigConfig(initial_g=config.initial_g)
    if config.max_ticks is not None:
        rig = replace(rig, max_ticks=config.max_ticks)
    timing: dict[str, float] = {}
    amp = bfloat16_is_native() if config.amp is None else config.amp

    def stage(name: str, t0: float) -> None:
        timing[name] = round(time.perf_counter() - t0, 1)
        log(f"[{time.perf_counter() - start:6.0f} s] {name} done in {timing[name]:.0f} s")

    t0 = time.perf_counter()
    if config.bags is None:
        bags = out / "bags"
        log(f"recording {config.episodes} expert demonstrations ({config.initial_g:g} g -> {config.target_g:g} g, "
            f"{', '.join(config.sensors)}) into {bags}")
        record_demonstrations(bags, episodes=config.episodes, initial_g=config.initial_g, target_g=config.target_g,
                              sensors=specs, config=rig, seed=config.seed, progress=lambda i, path, rep: log(
                                  f"  demo {i + 1}/{config.episodes}: poured {rep.poured_g:.2f} g in {rep.steps} "
                                  f"ticks -> {path.name}"))
    else:
        bags = Path(config.bags)
        log(f"using the demonstrations in {bags}")
    stage("record", t0)

    models = out / "models"
    source = (f"encoder bundle {config.encoder}" if config.encoder else
              f"{config.preset} preset, random init (seed {config.seed})")
    for variant in VARIANTS:
        t0 = time.perf_counter()
        log(f"training {variant.name} ({source})")
        train(TrainConfig(
            bags=[bags], out=models / variant.name, mode=variant.mode, encoder=config.encoder,
            preset=None if config.encoder else config.preset, finetune=config.finetune, frames=variant.frames,
            stride=config.stride, seed=config.seed, cache_dir=out / "cache", progress=config.progress, amp=amp,
            select=config.select,
            epochs=config.finetune_epochs if variant.mode is TrainMode.FINETUNE else config.frozen_epochs),
            log=lambda text: log("  " + text.replace("\n", "\n  ")))
        stage(f"train {variant.name}", t0)

    evals: dict[str, PolicyEval] = {}
    cells: dict[tuple[str, bool], Cell] = {}
    (out / "eval").mkdir(exist_ok=True)
    with EpisodePool(config.workers) as pool:  # episodes on every core; the same results as one by one
        log(f"evaluating on {pool.workers} worker process{'es' if pool.workers > 1 else ''}")
        t0 = time.perf_counter()
        expert = evaluate(ScriptedExpert(), episodes=config.eval_episodes, initial_g=config.initial_g,
                          target_g=config.target_g, sensors=specs, seed=config.seed, config=rig, pool=pool)
        es = expert.summary()
        expert_cell = Cell(mean_g=es["mean_abs_error_g"], std_g=es["std_abs_error_g"], episodes=config.eval_episodes,
                           timeouts=int(es["timeouts"]))
        log(f"scripted expert on the evaluation seeds: mean error {expert_cell.text()} g")
        stage("expert reference", t0)
        for variant in VARIANTS:
            t0 = time.perf_counter()
            runtime = PolicyRuntime.from_bundle(models / variant.name)
            log(f"evaluating {variant.name}: {config.eval_episodes} closed-loop episodes")
            ev = evaluate_policy(runtime, episodes=config.eval_episodes, initial_g=config.initial_g,
                                 target_g=config.target_g, seed=config.seed, config=rig, pool=pool,
                                 progress=lambda ep: log(
                                     f"  episode {ep.index + 1}/{config.eval_episodes}: poured {ep.poured_g:.2f} g "
                                     f"(error {ep.error_g:+.2f} g, {ep.steps} ticks"
                                     f"{', timeout' if ep.timed_out else ''})"))
            evals[variant.name] = ev
            cells[(variant.mode.value, variant.dynamic)] = _cell(ev)
            (out / "eval" / f"{variant.name}.json").write_text(json.dumps(
                {"policy": str(models / variant.name), "variant": runtime.variant, **ev.to_dict()}, indent=2))
            log(f"  {variant.name}: mean error {cells[(variant.mode.value, variant.dynamic)].text()} g")
            stage(f"evaluate {variant.name}", t0)

    method = f"AnyTouch ({config.encoder.name if config.encoder else config.preset}, sim)"
    title = (f"Simulated pouring, {config.initial_g:g} g -> {config.target_g:g} g, {config.eval_episodes} evaluation "
             f"episodes, {config.episodes} demonstrations ({', '.join(config.sensors)})")
    text = render_text(cells, method=method, expert=expert_cell, title=title)
    notes = [f"encoder: {source}; fine-tune = {config.finetune} for {config.finetune_epochs} epochs, freeze = head "
             f"only for {config.frozen_epochs} epochs on cached embeddings",
             "dynamic = 3 consecutive frames per window; static = the newest frame repeated 3x",
             "mean ± std of |poured - target| over the evaluation episodes (EVAL seeds, disjoint from the demos)",
             f"total time {time.perf_counter() - start:.0f} s; per stage (s): {timing}"]
    (out / "table.md").write_text(render_markdown(cells, method=method, expert=expert_cell, title=title,
                                                  notes=notes))
    plot_pours(evals, out / "pours.png")
    plot_errors({name: [e.abs_error_g for e in ev.report.episodes] for name, ev in evals.items()},
                out / "errors.png", title=title)
    seconds = time.perf_counter() - start
    table = {
        "title": title, "method": method, "initial_g": config.initial_g, "target_g": config.target_g,
        "demonstrations": config.episodes, "eval_episodes": config.eval_episodes, "seed": config.seed,
        "encoder_source": source,
        "results": {name: {"mode": v.mode.value, "dynamic": v.dynamic, **evals[name].report.summary()}
                    for v in VARIANTS for name in [v.name]},
        "expert": es, "timing_s": timing, "seconds": round(seconds, 1),
        "files": {"table_md": "table.md", "pours_png": "pours.png", "errors_png": "errors.png",
                  "models": "models/", "eval": "eval/", "bags": str(bags)},
    }
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    log(text)
    log(f"demo finished in {seconds:.0f} s; results in {out}")
    return DemoResult(out=out, table_text=text, table=table, seconds=seconds)
