"""Closed-loop evaluation on the simulated rig, reported like the paper's table 4 (mean error in grams).

The rollout drives a `Policy` (a Protocol): each 5 Hz tick it hands over every sensor's newest frames and applies
the action it returns. Only the frames a policy asks for are rendered, which keeps evaluation fast. The scripted
expert is a `PrivilegedPolicy`: it also sees the ground truth, which a learned policy must not.
`WindowPolicy` turns a function of one window into a Policy: how an encoder + head plugs in.

Evaluation episodes draw their seeds from the EVAL range (params.episode_seed), disjoint from training seeds. An
episode depends on its seed only, so `evaluate` can run episodes in worker processes (eval.pool.EpisodePool) and
get exactly the reports of a run in this process: `EpisodePool` below.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Protocol, runtime_checkable

import numpy as np

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.episode import EpisodeSetup
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.rig import SimRig, TickResult
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.sim.state import RigState
from anytouch_policy.tactile import WINDOW_FRAMES, StampedFrame, window_indices

#: Each sensor's newest frames, oldest first, consecutive at the sensor's rate.
Frames = Mapping[str, Sequence[StampedFrame]]
#: (time s, poured g) per tick, from (0, 0).
Trace = list[tuple[float, float]]


class Policy(Protocol):
    """What the rollout drives."""

    @property
    def history_frames(self) -> int:
        """Newest frames per sensor it reads (fewer until the episode made them); 0: none are rendered for it."""

    def reset(self) -> None:
        """Called before each episode: forget the last one (references, recurrent state)."""

    def __call__(self, frames: Frames) -> Action | int:
        """One decision per tick."""


@runtime_checkable
class PrivilegedPolicy(Policy, Protocol):
    """A policy that sees the ground truth (the scripted expert only): the episode's setup, then every state."""

    def begin_episode(self, setup: EpisodeSetup, *, target_g: float, config: RigConfig) -> None: ...

    def observe(self, state: RigState) -> None: ...


@dataclass(frozen=True)
class EpisodeReport:
    index: int
    seed: int
    poured_g: float
    error_g: float  # poured - target (signed)
    abs_error_g: float
    steps: int  # control ticks until done
    timed_out: bool
    actions: dict[str, int]  # count per action label


@dataclass(frozen=True)
class EvalReport:
    initial_g: float
    target_g: float
    sensors: list[str]
    seed: int
    episodes: list[EpisodeReport] = field(default_factory=list)

    @property
    def abs_errors(self) -> np.ndarray:
        return np.array([e.abs_error_g for e in self.episodes], dtype=np.float64)

    def summary(self) -> dict[str, float]:
        abs_err = self.abs_errors
        signed = np.array([e.error_g for e in self.episodes])
        poured = np.array([e.poured_g for e in self.episodes])
        return {
            "mean_abs_error_g": float(abs_err.mean()), "std_abs_error_g": float(abs_err.std()),
            "mean_error_g": float(signed.mean()), "mean_poured_g": float(poured.mean()),
            "std_poured_g": float(poured.std()), "mean_steps": float(np.mean([e.steps for e in self.episodes])),
            "timeouts": int(sum(e.timed_out for e in self.episodes)),
        }

    def to_dict(self) -> dict:
        return {"initial_g": self.initial_g, "target_g": self.target_g, "sensors": self.sensors, "seed": self.seed,
                **self.summary(), "episodes": [asdict(e) for e in self.episodes]}

    def table(self) -> str:
        """Per-episode rows and the table-4 line (mean error +/- std, g)."""
        lines = [f"{'ep':>3} {'seed':>12} {'poured g':>9} {'error g':>8} {'steps':>6}"]
        lines += [f"{e.index:>3} {e.seed:>12} {e.poured_g:9.2f} {e.error_g:+8.2f} {e.steps:>6}"
                  + (" timeout" if e.timed_out else "") for e in self.episodes]
        s = self.summary()
        lines.append(f"{self.initial_g:g} g -> {self.target_g:g} g: mean error {s['mean_abs_error_g']:.2f} "
                     f"+/- {s['std_abs_error_g']:.2f} g over {len(self.episodes)} episodes")
        return "\n".join(lines)


def run_episode(policy: Policy, *, config: RigConfig, sensors: Sequence[SensorSpec], seed: int, target_g: float,
                index: int = 0, record_all_frames: bool = False,
                on_tick: Callable[[TickResult], None] | None = None) -> EpisodeReport:
    """One closed-loop episode of `policy` on the rig of episode seed `seed`.

    `on_tick` sees every TickResult (a demonstration recorder); with `record_all_frames` every frame of every sensor
    is rendered into it at the native rate, even for a policy that needs none (the scripted expert).
    """
    if not 0 < target_g < config.initial_g:
        raise ConfigError(f"target_g must be in (0, initial_g={config.initial_g}), got {target_g}")
    keep = policy.history_frames
    if keep < 0:
        raise ConfigError(f"the policy's history_frames must be >= 0, got {keep}")
    counts = dict.fromkeys((a.label for a in Action), 0)
    with SimRig(config, sensors, seed=seed, render_newest=None if record_all_frames else keep) as rig:
        policy.reset()
        privileged = isinstance(policy, PrivilegedPolicy)
        if privileged:
            policy.begin_episode(rig.setup, target_g=target_g, config=config)
            policy.observe(rig.state())
        rings: dict[str, deque[StampedFrame]] = {name: deque(maxlen=max(keep, 1)) for name in rig.sources}
        result: TickResult | None = None
        while result is None or not result.done:
            action = Action(policy({name: list(ring) for name, ring in rings.items()} if keep else {}))
            counts[action.label] += 1
            result = rig.step(action)
            for name, frames in result.frames.items():
                rings[name].extend(frames)
            if privileged:
                policy.observe(result.state)
            if on_tick is not None:
                on_tick(result)
        poured = rig.poured_g
    error = poured - target_g
    return EpisodeReport(index=index, seed=seed, poured_g=round(poured, 3), error_g=round(error, 3),
                         abs_error_g=round(abs(error), 3), steps=result.tick, timed_out=result.timed_out,
                         actions=counts)


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run, everything but the policy: what a worker process is sent."""

    index: int
    seed: int
    target_g: float
    config: RigConfig
    sensors: tuple[SensorSpec, ...]


def episode_specs(episodes: int, *, initial_g: float, target_g: float, sensors: Sequence[SensorSpec], seed: int,
                  config: RigConfig | None = None, split: SeedSplit = SeedSplit.EVAL) -> list[EpisodeSpec]:
    """The `episodes` episodes of run `seed` (episode seeds from `split`), starting from `initial_g`."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    config = replace(config or RigConfig(), initial_g=initial_g)
    return [EpisodeSpec(index=i, seed=episode_seed(split, seed, i), target_g=target_g, config=config,
                        sensors=tuple(sensors)) for i in range(episodes)]


def run_traced(policy: Policy, spec: EpisodeSpec) -> tuple[EpisodeReport, Trace]:
    """run_episode for `spec`, with the poured mass after every tick."""
    trace: Trace = [(0.0, 0.0)]

    def on_tick(result: TickResult) -> None:
        trace.append((result.tick * spec.config.tick_s, result.state.mass_out_g))

    report = run_episode(policy, config=spec.config, sensors=spec.sensors, seed=spec.seed, target_g=spec.target_g,
                         index=spec.index, on_tick=on_tick)
    return report, trace


def _same(policy: Policy) -> Policy:
    return policy


def evaluate(policy: Policy, *, episodes: int, initial_g: float = 100.0, target_g: float = 60.0,
             sensors: Sequence[SensorSpec] = (), seed: int = 0, config: RigConfig | None = None,
             split: SeedSplit = SeedSplit.EVAL, progress: Callable[[EpisodeReport], None] | None = None,
             pool: EpisodePool | None = None) -> EvalReport:
    """Run `episodes` closed-loop episodes (episode seeds from `split`, run `seed`) and collect the errors; with a
    parallel `pool` each worker gets a copy of `policy`, which must then pickle (the scripted expert does)."""
    specs = episode_specs(episodes, initial_g=initial_g, target_g=target_g, sensors=sensors, seed=seed, config=config,
                          split=split)
    report = EvalReport(initial_g=initial_g, target_g=target_g, sensors=[s.name for s in sensors], seed=seed)
    for ep, _trace in (pool or EpisodePool(1)).run(policy, specs, progress=progress):
        report.episodes.append(ep)
    return report


class EpisodePool:
    """Runs episodes in `workers` processes, each with one torch and one OpenCV thread (None: one worker per CPU
    this process may use); with 1 worker they run in this process. Use it as a context manager.

    Episodes are independent and depend on their seed only, so the reports are those of a run in this process, in
    order. Workers start (spawn: a fresh interpreter, no forked OpenMP state) on the first parallel `run` and serve
    every later one; each keeps the policy of its last task, so a pool evaluating several policies in turn builds
    each once per worker.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> EpisodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def run(self, policy: Policy, specs: Sequence[EpisodeSpec], *, make_policy: Callable[[], Policy] | None = None,
            progress: Callable[[EpisodeReport], None] | None = None) -> list[tuple[EpisodeReport, Trace]]:
        """Each episode of `specs`: with `policy` in this process, or in the workers with a policy from
        `make_policy` (default: a copy of `policy`); what a worker is sent must pickle."""
        if self.workers == 1 or len(specs) == 1:
            results = (run_traced(policy, spec) for spec in specs)
        else:
            make_policy = make_policy or partial(_same, policy)
            try:
                pickle.dumps(make_policy)
            except (pickle.PicklingError, AttributeError, TypeError) as exc:
                raise ConfigError(f"the policy {policy!r} cannot be sent to worker processes ({exc}); evaluate it "
                                  "with --workers 1 (EpisodePool(1))") from None
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_init_worker)
            results = self._executor.map(partial(_run_in_worker, make_policy), specs)
        out = []
        for report, trace in results:  # in order, as they finish
            out.append((report, trace))
            if progress is not None:
                progress(report)
        return out


_worker_policy: tuple[bytes, Policy] | None = None  # a worker's policy and the pickled factory that made it


def _init_worker() -> None:
    """One thread per worker: the pool's processes share the cores between them."""
    import cv2

    from anytouch_policy.threads import set_torch_threads

    cv2.setNumThreads(1)
    set_torch_threads(1)


def _run_in_worker(make_policy: Callable[[], Policy], spec: EpisodeSpec) -> tuple[EpisodeReport, Trace]:
    global _worker_policy
    key = pickle.dumps(make_policy)
    if _worker_policy is None or _worker_policy[0] != key:
        _worker_policy = (key, make_policy())
    return run_traced(_worker_policy[1], spec)


@dataclass
class WindowPolicy:
    """A Policy from a function of one window (`frames` RGB frames of `sensor`, oldest first, `stride` apart),
    cut at the newest frame with tactile.window_indices; `idle` until enough frames arrived."""

    decide: Callable[[list[np.ndarray]], Action | int]
    sensor: str
    frames: int = WINDOW_FRAMES
    stride: int = 1
    idle: Action = Action.WAIT

    @property
    def history_frames(self) -> int:
        return (self.frames - 1) * self.stride + 1

    def reset(self) -> None:
        """Stateless: every window is cut afresh."""

    def __call__(self, observed: Frames) -> Action | int:
        if self.sensor not in observed:
            raise ConfigError(f"WindowPolicy: no frames from sensor {self.sensor!r}; have {sorted(observed)}")
        seq = observed[self.sensor]
        stamps = [f.stamp_ns for f in seq]
        idx = window_indices(stamps, stamps[-1], frames=self.frames, stride=self.stride) if seq else None
        if idx is None:
            return self.idle
        return self.decide([seq[i].image for i in idx])


