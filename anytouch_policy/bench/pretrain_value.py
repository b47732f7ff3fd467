"""Does stage-1 adaptation pay? Frozen policies on an adapted vs a random-initialised encoder, closed-loop sim error.

    anytouch bench pretrain-value --out runs/pretrain-value > pretrain_value.json

1. record expert demonstrations on the simulated rig (TRAIN seeds; or reuse --bags)
2. the same random init of the preset, saved once; stage-1 masked modelling on the demonstrations' frames from it
3. a frozen-encoder policy (dynamic, 3-frame windows) trained on each encoder with the same head, data and seed
4. both evaluated in closed loop on the EVAL seeds (100 g -> 60 g); prints JSON with both errors and the timings
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated

from pydantic import Field

from anytouch_policy.bounds import AT_LEAST_1, NONNEGATIVE
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.outputs import make_dir
from anytouch_policy.schema import config
from anytouch_policy.threads import WORKERS_HELP

Count = Annotated[int, AT_LEAST_1]


def log(msg: str) -> None:
    print(f"[pretrain value] {msg}", file=sys.stderr, flush=True)


@config
class PretrainValueBench:
    """What `anytouch bench pretrain-value` compares."""

    out: Path = Field(description="work folder (bags, encoders, policies)")
    bags: Path | None = Field(default=None, description="reuse these demonstrations instead of recording")
    episodes: Count = Field(default=40, description="demonstrations to record")
    eval_episodes: Count = 40
    preset: str = "anytouch-small"
    pretrain_epochs: Count = 6
    pretrain_args: list[str] = Field(default_factory=list,
                                     description="extra `anytouch pretrain` argument, repeatable (e.g. "
                                                 "--pretrain-arg=--norm-pix-loss)")
    frozen_epochs: Count = 40
    threads: Count = 2
    workers: Count | None = Field(default=None, description=WORKERS_HELP)
    seed: Annotated[int, NONNEGATIVE] = 0


FLAGS = Flags(PretrainValueBench, "out", "bags", "episodes", "eval_episodes", "preset", "pretrain_epochs",
              Flag("pretrain_args", "--pretrain-arg", metavar="ARG"), "frozen_epochs", "threads", "workers", "seed")


def run(bench: PretrainValueBench) -> dict:
    from anytouch_policy.cli.main import main as anytouch
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.eval.policy import evaluate_policy
    from anytouch_policy.eval.rollout import EpisodePool
    from anytouch_policy.policy.runtime import PolicyRuntime
    from anytouch_policy.sim.sensor_params import SensorSpec
    from anytouch_policy.threads import set_torch_threads
    from anytouch_policy.train import TrainConfig, TrainMode, train
    from anytouch_policy.train.run import init_encoder_bundle

    set_torch_threads(bench.threads)
    out: Path = bench.out
    make_dir(out)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()

    bags = bench.bags
    if bags is None:
        bags = out / "bags"
        log(f"recording {bench.episodes} expert demonstrations into {bags}")
        record_expert_episodes(bags, episodes=bench.episodes, target_g=60.0,
                               sensors=[SensorSpec.parse("gelsight_mini")], seed=bench.seed)
    timing["record_s"] = round(time.perf_counter() - t0, 1)

    random_enc = init_encoder_bundle(bench.preset, out / "encoder-random", seed=bench.seed)
    t = time.perf_counter()
    log(f"stage 1 masked modelling on the demonstrations' frames for {bench.pretrain_epochs} epochs")
    with contextlib.redirect_stdout(sys.stderr):  # its own JSON summary is not this bench's output
        code = anytouch(["pretrain", "--stage", "1", "--bags", str(bags), "--init", str(random_enc),
                         "--out", str(out / "adapt"), "--epochs", str(bench.pretrain_epochs), "--batch-size", "32",
                         "--hop", "2", "--decoder-width", "128", "--decoder-layers", "2", "--decoder-heads", "4",
                         "--threads", str(bench.threads), "--seed", str(bench.seed), "--no-progress", "--overwrite",
                         *bench.pretrain_args])
    if code != 0:
        raise SystemExit(f"pretraining failed with exit code {code}")
    timing["pretrain_s"] = round(time.perf_counter() - t, 1)
    encoders = {"random_init": random_enc, "stage1_adapted": out / "adapt" / "encoder"}

    results: dict[str, dict] = {}
    for name, encoder in encoders.items():
        t = time.perf_counter()
        log(f"frozen policy on the {name} encoder")
        train(TrainConfig(bags=[bags], out=out / f"policy-{name}", mode=TrainMode.FROZEN, encoder=encoder,
                          epochs=bench.frozen_epochs, seed=bench.seed, cache_dir=out / "cache", progress=False,
                          overwrite=True), log=lambda text: None)
        runtime = PolicyRuntime.from_bundle(out / f"policy-{name}")
        with EpisodePool(bench.workers) as pool:
            ev = evaluate_policy(runtime, episodes=bench.eval_episodes, seed=bench.seed, pool=pool)
        results[name] = ev.report.summary()
        timing[f"{name}_train_eval_s"] = round(time.perf_counter() - t, 1)
        log(f"{name}: mean error {results[name]['mean_abs_error_g']:.2f} g")

    return {
        "task": "sim, 100 g -> 60 g, frozen encoder, dynamic 3-frame windows",
        "preset": bench.preset, "demonstrations": str(bags), "pretrain_epochs": bench.pretrain_epochs,
        "eval_episodes": bench.eval_episodes, "results": results,
        "adapted_beats_random": results["stage1_adapted"]["mean_abs_error_g"]
        < results["random_init"]["mean_abs_error_g"],
        "timing": timing, "seconds": round(time.perf_counter() - t0, 1),
    }
