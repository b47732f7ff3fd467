"""Does stage-1 adaptation pay? Frozen policies on an adapted vs a random-initialised encoder, closed-loop sim error.

    anytouch bench pretrain-value --out runs/pretrain-value > pretrain_value.json

1. record expert demonstrations on the simulated rig (TRAIN seeds; or reuse --bags)
2. the same random init of the preset, saved once; stage-1 masked modelling on the demonstrations' frames from it
3. a frozen-encoder policy (dynamic, 3-frame windows) trained on each encoder with the same head, data and seed
4. both evaluated in closed loop on the EVAL seeds (100 g -> 60 g); prints JSON with both errors and the timings
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from anytouch_policy.cli.args import NONNEGATIVE_INT, POSITIVE_INT, add_workers_argument


def log(msg: str) -> None:
    print(f"[pretrain value] {msg}", file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="work folder (bags, encoders, policies)")
    parser.add_argument("--bags", type=Path, default=None, help="reuse these demonstrations instead of recording")
    parser.add_argument("--episodes", type=POSITIVE_INT, default=40, help="demonstrations to record")
    parser.add_argument("--eval-episodes", type=POSITIVE_INT, default=40)
    parser.add_argument("--preset", default="anytouch-small")
    parser.add_argument("--pretrain-epochs", type=POSITIVE_INT, default=6)
    parser.add_argument("--pretrain-arg", action="append", default=[], metavar="ARG",
                        help="extra `anytouch pretrain` argument, repeatable (e.g. --pretrain-arg=--norm-pix-loss)")
    parser.add_argument("--frozen-epochs", type=POSITIVE_INT, default=40)
    parser.add_argument("--threads", type=POSITIVE_INT, default=2)
    add_workers_argument(parser)
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0)


def run(args: argparse.Namespace) -> dict:

    from anytouch_policy.cli.main import main as anytouch
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.eval.policy import evaluate_policy
    from anytouch_policy.eval.rollout import EpisodePool
    from anytouch_policy.policy.runtime import PolicyRuntime
    from anytouch_policy.sim.sensor_params import SensorSpec
    from anytouch_policy.threads import set_torch_threads
    from anytouch_policy.train import TrainConfig, TrainMode, train
    from anytouch_policy.train.run import init_encoder_bundle

    set_torch_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()

    bags = args.bags
    if bags is None:
        bags = out / "bags"
        log(f"recording {args.episodes} expert demonstrations into {bags}")
        record_expert_episodes(bags, episodes=args.episodes, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                               seed=args.seed)
    timing["record_s"] = round(time.perf_counter() - t0, 1)

    random_enc = init_encoder_bundle(args.preset, out / "encoder-random", seed=args.seed)
    t = time.perf_counter()
    log(f"stage 1 masked modelling on the demonstrations' frames for {args.pretrain_epochs} epochs")
    with contextlib.redirect_stdout(sys.stderr):  # its own JSON summary is not this bench's output
        code = anytouch(["pretrain", "--stage", "1", "--bags", str(bags), "--init", str(random_enc),
                         "--out", str(out / "adapt"), "--epochs", str(args.pretrain_epochs), "--batch-size", "32",
                         "--hop", "2", "--decoder-width", "128", "--decoder-layers", "2", "--decoder-heads", "4",
                         "--threads", str(args.threads), "--seed", str(args.seed), "--no-progress", "--overwrite",
                         *args.pretrain_arg])
    if code != 0:
        raise SystemExit(f"pretraining failed with exit code {code}")
    timing["pretrain_s"] = round(time.perf_counter() - t, 1)
    encoders = {"random_init": random_enc, "stage1_adapted": out / "adapt" / "encoder"}

    results: dict[str, dict] = {}
    for name, encoder in encoders.items():
        t = time.perf_counter()
        log(f"frozen policy on the {name} encoder")
        train(TrainConfig(bags=[bags], out=out / f"policy-{name}", mode=TrainMode.FROZEN, encoder=encoder,
                          epochs=args.frozen_epochs, seed=args.seed, cache_dir=out / "cache", progress=False,
                          overwrite=True), log=lambda text: None)
        runtime = PolicyRuntime.from_bundle(out / f"policy-{name}")
        with EpisodePool(args.workers) as pool:
            ev = evaluate_policy(runtime, episodes=args.eval_episodes, seed=args.seed, pool=pool)
        results[name] = ev.report.summary()
        timing[f"{name}_train_eval_s"] = round(time.perf_counter() - t, 1)
        log(f"{name}: mean error {results[name]['mean_abs_error_g']:.2f} g")

    return {
        "task": "sim, 100 g -> 60 g, frozen encoder, dynamic 3-frame windows",
        "preset": args.preset, "demonstrations": str(bags), "pretrain_epochs": args.pretrain_epochs,
        "eval_episodes": args.eval_episodes, "results": results,
        "adapted_beats_random": results["stage1_adapted"]["mean_abs_error_g"]
        < results["random_init"]["mean_abs_error_g"],
        "timing": timing, "seconds": round(time.perf_counter() - t0, 1),
    }
