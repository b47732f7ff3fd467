"""`anytouch demo`: the main job on the simulated rig, end to end, in one command.

    1. record N expert demonstrations (100 g -> 60 g, TRAIN seeds) into bags    OUT/bags/   (as `sim record`)
    2. train the table's six cells from those bags (demo.config: rows random     OUT/models/<cell>/
       init, pretrained static, pretrained dynamic; columns fine-tune, freeze)
    3. evaluate the expert and each cell in closed loop on the SAME EVAL seeds    OUT/eval/<cell>.json
    4. table 4: mean error (g) +/- 95 % CI per cell, the claimed orderings as     OUT/table.{md,json}, OUT/*.png
       paired differences, resolved or not (demo.table)

The pretrained rows start from `DemoConfig.encoder` (`anytouch demo`: the shipped sim-pretrained
models/anytouch-small, model.bundle.SHIPPED_ENCODER; the released AnyTouch weights cannot be downloaded on a fresh
machine, docs/training.md); the random row from the `preset` randomly initialised from the seed. Each stage logs its
duration (table.json timing_s), from which docs/training.md budgets the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from anytouch_policy.data.memo import BagMemo
from anytouch_policy.demo.config import COLUMNS, ROWS, VARIANTS, DemoConfig, Init, Variant
from anytouch_policy.demo.record import record_demonstrations
from anytouch_policy.demo.stages import Stages
from anytouch_policy.demo.table import Cell, RowLabel, orderings, plot_errors, render_markdown, render_text
from anytouch_policy.eval.policy import PolicyEval, evaluate_policy, plot_pours
from anytouch_policy.eval.rollout import EpisodePool, evaluate
from anytouch_policy.model.bundle import SHIPPED_ENCODER
from anytouch_policy.outputs import check_output_dir, make_dir
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.threads import set_torch_threads
from anytouch_policy.train import Augment, TrainConfig, TrainMode, train
from anytouch_policy.train.config import HEAD_DROPOUT


@dataclass
class DemoResult:
    out: Path
    table_text: str
    table: dict
    seconds: float


def header_lines(config: DemoConfig) -> list[str]:
    """What the table's numbers rest on, above the table: the encoders (never silently a random 'pretrained' row),
    the episodes and seeds."""
    lines = [f"Encoders: random init = {config.encoder_source(Init.RANDOM)}; "
             f"pretrained = {config.encoder_source(Init.PRETRAINED)}."]
    if not config.pretrained:
        lines.append(f"NO PRETRAINED ENCODER (--encoder none, --quick without --encoder, or no bundle at "
                     f"{SHIPPED_ENCODER}, which `anytouch pretrain-recipe` makes): the 'pretrained' rows use the "
                     f"random init of {config.preset} as well, and their dynamic cells are the random row's runs.")
    elif config.random_architecture != config.pretrained_architecture:
        lines.append(f"Note: the random init ({config.preset}) and the pretrained encoder differ in architecture.")
    lines.append(f"{config.eval_episodes} evaluation episodes per cell, the same EVAL seeds (run seed {config.seed}) "
                 f"in every cell; {config.episodes} demonstrations ({', '.join(config.sensors)}).")
    return lines


def row_labels(config: DemoConfig) -> list[RowLabel]:
    pretrained = (f"AnyTouch sim-pretrained ({config.encoder.name})" if config.encoder is not None else
                  f"AnyTouch, NOT pretrained ({config.preset}, random init)")
    return [RowLabel(f"random init ({config.preset}, no touch pretraining)", True), RowLabel(pretrained, False),
            RowLabel(pretrained, True)]


def run_demo(config: DemoConfig, *, log: Callable[[str], None] = print) -> DemoResult:
    """Record, train, evaluate and tabulate; every stage logs its progress and duration."""
    start = time.perf_counter()
    set_torch_threads(config.threads)
    out = check_output_dir(config.out, None)  # the demo writes as it goes: only a new or empty folder
    make_dir(out)
    specs = [SensorSpec.parse(s) for s in config.sensors]
    rig = RigConfig(initial_g=config.initial_g)
    if config.max_ticks is not None:
        rig = replace(rig, max_ticks=config.max_ticks)
    header = header_lines(config)
    for line in header:
        log(line)
    stage = Stages(log)

    with stage("record"):
        if config.bags is None:
            bags = out / "bags"
            log(f"recording {config.episodes} expert demonstrations ({config.initial_g:g} g -> "
                f"{config.target_g:g} g, {', '.join(config.sensors)}) into {bags}")
            record_demonstrations(bags, episodes=config.episodes, initial_g=config.initial_g,
                                  target_g=config.target_g, sensors=specs, config=rig, seed=config.seed,
                                  progress=lambda i, path, rep: log(
                                      f"  demo {i + 1}/{config.episodes}: poured {rep.poured_g:.2f} g in "
                                      f"{rep.steps} ticks -> {path.name}"))
        else:
            bags = Path(config.bags)
            log(f"using the demonstrations in {bags}")

    models = out / "models"
    runs = [v for v in VARIANTS if config.same_run(v) == v]  # the distinct experiments
    memo = BagMemo()  # every run reads the same bags: each bag and frame is read once
    for variant in runs:
        pretrained = variant.init is Init.PRETRAINED and config.pretrained
        log(f"training {variant.name} ({config.encoder_source(variant.init)})")
        with stage(f"train {variant.name}"):
            train(TrainConfig(
                bags=[bags], out=models / variant.name, mode=variant.mode,
                encoder=config.encoder if pretrained else None, preset=None if pretrained else config.preset,
                finetune=config.finetune, augment=Augment() if config.augment else None, frames=variant.frames,
                stride=config.stride, seed=config.seed,
                cache_dir=out / "cache", progress=config.progress, amp=config.amp, select=config.select,
                remaining_weight=config.remaining_weight,
                dropout=config.frozen_dropout if variant.mode is TrainMode.FROZEN else HEAD_DROPOUT,
                epochs=config.finetune_epochs if variant.mode is TrainMode.FINETUNE else config.frozen_epochs),
                log=lambda text: log("  " + text.replace("\n", "\n  ")), memo=memo)

    evals: dict[str, PolicyEval] = {}
    (out / "eval").mkdir(exist_ok=True)
    with EpisodePool(config.workers) as pool:  # episodes on every core; the same results as one by one
        log(f"evaluating on {pool.workers} worker process{'es' if pool.workers > 1 else ''}, "
            f"{config.eval_episodes} episodes per cell")
        with stage("expert reference"):
            expert_report = evaluate(ScriptedExpert(), episodes=config.eval_episodes, initial_g=config.initial_g,
                                     target_g=config.target_g, sensors=specs, seed=config.seed, config=rig,
                                     pool=pool)
        expert = Cell.from_report(expert_report)
        log(f"scripted expert on the evaluation seeds: mean error {expert.text()} g")
        for variant in runs:
            log(f"evaluating {variant.name}: {config.eval_episodes} closed-loop episodes")
            with stage(f"evaluate {variant.name}"):
                runtime = PolicyRuntime.from_bundle(models / variant.name)
                ev = evaluate_policy(runtime, episodes=config.eval_episodes, initial_g=config.initial_g,
                                     target_g=config.target_g, seed=config.seed, config=rig, pool=pool,
                                     progress=lambda ep: log(
                                         f"  episode {ep.index + 1}/{config.eval_episodes}: poured {ep.poured_g:.2f} "
                                         f"g (error {ep.error_g:+.2f} g, {ep.steps} ticks"
                                         f"{', timeout' if ep.timed_out else ''})"))
            evals[variant.name] = ev
            (out / "eval" / f"{variant.name}.json").write_text(json.dumps(
                {"policy": str(models / variant.name), "variant": runtime.variant, **ev.to_dict()}, indent=2))
            log(f"  {variant.name}: mean error {Cell.from_report(ev.report).text()} g")

    cells = {v.name: Cell.from_report(evals[config.same_run(v).name].report) for v in VARIANTS}
    ordered = orderings(cells)
    labels = row_labels(config)
    title = (f"Simulated pouring, {config.initial_g:g} g -> {config.target_g:g} g, {config.eval_episodes} evaluation "
             f"episodes per cell, {config.episodes} demonstrations")
    text = render_text(cells, labels, expert=expert, header=[title, *header], ordered=ordered)
    notes = [f"fine-tune = encoder ({config.finetune}) and head for {config.finetune_epochs} epochs "
             f"({'with' if config.augment else 'without'} colour jitter, "
             f"{'bfloat16 autocast' if config.amp else 'float32'}), freeze = head only for {config.frozen_epochs} "
             f"epochs on cached embeddings (head dropout {config.frozen_dropout:g}); the same for every row",
             (f"every head also learns the grams still to pour (--remaining-weight {config.remaining_weight:g}); the "
              "decision comes from its three logits" if config.remaining_weight else
              "the heads learn the decision alone (--remaining-weight 0)"),
             "dynamic = 3 consecutive frames per window; static = the newest frame repeated 3x",
             "cell: mean ± 95 % CI half-width (Student t) of |poured - target| over the evaluation episodes (EVAL "
             "seeds, disjoint from the demos); timeouts = episodes that hit the tick cap, counted as they stand",
             f"total time {time.perf_counter() - start:.0f} s; per stage (s): {stage.wall}; CPU s per stage (this "
             f"process and its workers): {stage.cpu}"]
    (out / "table.md").write_text(render_markdown(cells, labels, expert=expert, title=title, header=header,
                                                  ordered=ordered, notes=notes))
    plot_pours(evals, out / "pours.png")
    plot_errors({**cells, "expert": expert}, out / "errors.png", title=title)
    seconds = time.perf_counter() - start
    table = {
        "title": title, "header": header, "initial_g": config.initial_g, "target_g": config.target_g,
        "demonstrations": config.episodes, "eval_episodes": config.eval_episodes, "seed": config.seed,
        "pretrained": config.pretrained,
        "encoders": {init.value: config.encoder_source(init) for init in Init},
        "rows": [{"method": label.method, "dynamic": label.dynamic, "init": init.value, "frames": frames,
                  "cells": {mode.value: Variant(init, mode, frames).name for mode in COLUMNS}}
                 for (init, frames), label in zip(ROWS, labels, strict=True)],
        "cells": {v.name: {"init": v.init.value, "mode": v.mode.value, "frames": v.frames, "dynamic": v.dynamic,
                           "run": config.same_run(v).name, **cells[v.name].to_dict(),
                           "summary": evals[config.same_run(v).name].report.summary()} for v in VARIANTS},
        "orderings": [o.to_dict() for o in ordered],
        "expert": {**expert.to_dict(), "summary": expert_report.summary()},
        "settings": {"finetune": config.finetune, "augment": config.augment, "finetune_epochs": config.finetune_epochs,
                     "frozen_epochs": config.frozen_epochs, "frozen_dropout": config.frozen_dropout,
                     "remaining_weight": config.remaining_weight,
                     "sensors": list(config.sensors), "amp": config.amp},
        "timing_s": stage.wall, "cpu_s": stage.cpu, "seconds": round(seconds, 1),
        "files": {"table_md": "table.md", "pours_png": "pours.png", "errors_png": "errors.png",
                  "models": "models/", "eval": "eval/", "bags": str(bags)},
    }
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    log(text)
    log(f"demo finished in {seconds:.0f} s; results in {out}")
    return DemoResult(out=out, table_text=text, table=table, seconds=seconds)
