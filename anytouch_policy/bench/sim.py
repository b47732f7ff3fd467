"""Figures of the simulated rig as JSON: expert errors, dynamics R^2, render speed, determinism.

    OMP_NUM_THREADS=1 anytouch bench sim --episodes 20 --probe-episodes 24 > sim_bench.json
    from anytouch_policy.bench.sim import sim_figures

Speeds are taken on one core (OpenCV limited to one thread; OMP_NUM_THREADS=1 keeps numpy's BLAS on one too, as
`make bench` runs it); on a shared machine they are disturbed by other load.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from anytouch_policy.cli.args import NONNEGATIVE_INT, POSITIVE_INT
from anytouch_policy.eval.rollout import run_episode
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.contacts import draw_touch, render_touch
from anytouch_policy.sim.contacts import simulate as simulate_touch
from anytouch_policy.sim.expert import ExpertParams, ScriptedExpert
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed, stream_rng
from anytouch_policy.sim.probe import collect, dynamics_r2
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.rig import SimRig, TickResult
from anytouch_policy.sim.sensor_model import list_sensor_models, load_sensor_model
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params

#: The (initial g, target g) pairs: the paper's task first, then MS-Bot-like variations.
PAIRS = ((100.0, 60.0), (90.0, 40.0), (120.0, 60.0), (100.0, 30.0))
#: Mean absolute error the expert is allowed per pair (g).
EXPERT_LIMIT_G = {(100.0, 60.0): 1.5}
OTHER_PAIRS_LIMIT_G = 3.0


def expert_errors(*, episodes: int = 20, seed: int = 0, knows_flow: bool = True,
                  pairs: tuple[tuple[float, float], ...] = PAIRS) -> dict:
    """Expert mean absolute error per pair, with milligram mass conservation checked at every tick."""
    out = {}
    for initial_g, target_g in pairs:
        violations: list[int] = []

        def check(result: TickResult, initial_mg: int = round(initial_g * 1000), bad: list[int] = violations) -> None:
            s = result.state
            total = round(s.mass_left_g * 1000) + round(s.mass_in_flight_g * 1000) + round(s.mass_on_scale_g * 1000)
            if total != initial_mg:
                bad.append(total - initial_mg)

        config = RigConfig(initial_g=initial_g)
        eps = [run_episode(ScriptedExpert(ExpertParams(knows_flow=knows_flow)), config=config, sensors=(),
                           seed=episode_seed(SeedSplit.EVAL, seed, i), target_g=target_g, index=i, on_tick=check)
               for i in range(episodes)]
        abs_err = np.array([e.abs_error_g for e in eps])
        limit = EXPERT_LIMIT_G.get((initial_g, target_g), OTHER_PAIRS_LIMIT_G)
        out[f"{initial_g:g}->{target_g:g}"] = {
            "mean_abs_error_g": round(float(abs_err.mean()), 3), "limit_g": limit,
            "within_limit": bool(abs_err.mean() <= limit), "std_abs_error_g": round(float(abs_err.std()), 3),
            "max_abs_error_g": round(float(abs_err.max()), 3),
            "mean_error_g": round(float(np.mean([e.error_g for e in eps])), 3),
            "mean_steps": round(float(np.mean([e.steps for e in eps])), 1),
            "max_steps": int(max(e.steps for e in eps)), "timeouts": int(sum(e.timed_out for e in eps)),
            "mass_conservation_violations": len(violations),
        }
    return out


def render_fps(model: str | SensorType, *, frames: int = 400, seed: int = 0) -> float:
    """Frames per second of one renderer of a sensor model on one thread, over the states of an expert pour."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        config = RigConfig()
        states = []
        run_episode(ScriptedExpert(), config=config, sensors=(), seed=episode_seed(SeedSplit.EVAL, seed, 0),
                    target_g=60.0, on_tick=lambda r: states.append(r.state))
        renderer = TactileRenderer(sample_sensor_params(SensorSpec(model), episode_seed=seed, index=0))
        renderer.render(states[0], 0)  # warm the contact cache
        start = time.perf_counter()
        for k in range(frames):
            renderer.render(states[k % len(states)], k)
        return frames / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(previous)


def touch_render_fps(model: str | SensorType, *, frames: int = 400, seed: int = 0) -> float:
    """Frames per second of the heightmap path (sim/contacts.py touches of every shape, pressed) of one renderer of a
    sensor model on one thread, the object drawn into an indentation map for every frame."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        touches = {}
        for k in range(200):
            plan = draw_touch(stream_rng(seed, 7000 + k))
            touches.setdefault(plan.shape.kind, plan)
        samples = []
        for plan in touches.values():
            steps = range(0, round(plan.duration_s / 0.005), 7)
            samples += [(plan.shape, s) for s in simulate_touch(plan, steps).values() if s.depth_mm > 0.0]
        renderer = TactileRenderer(sample_sensor_params(SensorSpec(model), episode_seed=seed, index=0))
        start = time.perf_counter()
        for k in range(frames):
            shape, state = samples[(k * 37) % len(samples)]
            render_touch(renderer, shape, state, k)
        return frames / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(previous)


def frames_digest(*, seed: int, ticks: int = 15, sensors: tuple[SensorSpec, ...] | None = None) -> str:
    """SHA-256 over every frame and stamp the rig renders in the first `ticks` ticks of an expert pour."""
    sensors = sensors or (SensorSpec(SensorType.GELSIGHT_MINI), SensorSpec.parse("digit:right"))
    digest = hashlib.sha256()
    config = RigConfig()
    expert = ScriptedExpert()
    with SimRig(config, sensors, seed=seed) as rig:
        expert.begin_episode(rig.setup, target_g=60.0, config=config)
        expert.observe(rig.state())
        for _ in range(ticks):
            result = rig.step(expert())
            expert.observe(result.state)
            for name in sorted(result.frames):
                for frame in result.frames[name]:
                    digest.update(frame.stamp_ns.to_bytes(8, "little"))
                    digest.update(frame.image.tobytes())
    return digest.hexdigest()


def sim_figures(*, episodes: int = 20, probe_episodes: int = 24, fps_frames: int = 400, seed: int = 0,
                log: Callable[[str], None] | None = None) -> dict:
    """Every figure of the rig: expert errors (4 pairs) with mass conservation, the static-only expert ablation,
    R^2 of flow from 1 vs 3 frames, render speed on one core (pour and touch, both per shipped sensor model),
    determinism."""
    say = log or (lambda _msg: None)
    figures: dict = {"episodes_per_pair": episodes}
    start = time.perf_counter()
    say("expert errors")
    figures["expert"] = expert_errors(episodes=episodes, seed=seed)
    figures["expert_static_only"] = expert_errors(episodes=episodes, seed=seed, knows_flow=False, pairs=PAIRS[:1])
    figures["mass_conserved"] = all(v["mass_conservation_violations"] == 0 for v in figures["expert"].values())
    figures["dynamics"] = {}
    models = [load_sensor_model(name) for name in list_sensor_models()]
    for model in models:
        say(f"dynamics probe {model.name}")
        data = collect(episodes=probe_episodes, sensor=SensorSpec(model), seed=seed)
        r2 = dynamics_r2(data)
        figures["dynamics"][model.name] = {"samples": len(data.flow_g_s), **{k: round(v, 3) for k, v in r2.items()}}
    say("render speed")
    figures["render_fps_one_core"] = {
        m.name: {"fps": round(render_fps(m.name, frames=fps_frames, seed=seed), 1),
                 "touch_fps": round(touch_render_fps(m.name, frames=fps_frames, seed=seed), 1),
                 "native_fps": m.format.fps, "shape": [m.format.height, m.format.width, 3]}
        for m in models
    }
    say("determinism")
    first, again, other = frames_digest(seed=seed), frames_digest(seed=seed), frames_digest(seed=seed + 1)
    figures["determinism"] = {"same_seed_identical": first == again, "other_seed_differs": first != other,
                              "sha256": first}
    figures["bench_seconds"] = round(time.perf_counter() - start, 1)
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=POSITIVE_INT, default=20, help="expert episodes per (initial, target) pair")
    parser.add_argument("--probe-episodes", type=POSITIVE_INT, default=24,
                        help="expert episodes for the dynamics probe")
    parser.add_argument("--fps-frames", type=POSITIVE_INT, default=400,
                        help="frames rendered per sensor for the speed")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0)


def run(args: argparse.Namespace) -> dict:
    return sim_figures(episodes=args.episodes, probe_episodes=args.probe_episodes, fps_frames=args.fps_frames,
                       seed=args.seed, log=lambda msg: print(f"[bench sim] {msg}", file=sys.stderr))
