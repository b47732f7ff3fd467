"""Closed-loop evaluation of a policy bundle on the simulated rig, through PolicyRuntime.decide_windows
(`anytouch eval`, the demo and the pretraining bench run it).

Each 5 Hz tick the adapter cuts every sensor's window with `PolicyRuntime.window_indices` at the newest frame (the
frames rendered up to the decision), and asks `decide_windows` (EncoderRuntime + head: the inference code of the
policy and encoder nodes). `reset()` before each episode starts a new pour, so the first decision's embeddings become
the episode reference. Until every sensor has a full window the adapter waits. Episode seeds come from the EVAL
range, disjoint from every training seed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import Field

from anytouch_policy.actions import Action
from anytouch_policy.bounds import AT_LEAST_1, MASS_G, NONNEGATIVE
from anytouch_policy.errors import AnyTouchError, ConfigError
from anytouch_policy.eval.rollout import EpisodePool, EpisodeReport, EvalReport, Frames, episode_specs
from anytouch_policy.model.runtime import Precision, TokenMode
from anytouch_policy.outputs import PLOT_SUFFIXES, check_output_file
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.schema import config
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_model import load_sensor_model
from anytouch_policy.sim.sensor_params import Finger, SensorSpec
from anytouch_policy.threads import WORKERS_HELP


class SimPolicy:
    """A PolicyRuntime as a sim policy: `policy(frames) -> Action`."""

    def __init__(self, runtime: PolicyRuntime, *, initial_g: float, target_g: float) -> None:
        self.runtime = runtime
        self.initial_g, self.target_g = initial_g, target_g
        self.history_frames = (runtime.frames - 1) * runtime.stride + 1

    def reset(self) -> None:
        self.runtime.reset()

    def __call__(self, frames: Frames) -> Action:
        windows = {}
        for name in self.runtime.sensor_names:
            seq = frames.get(name, ())
            stamps = [f.stamp_ns for f in seq]
            idx = self.runtime.window_indices(stamps, stamps[-1]) if seq else None
            if idx is None:
                return Action.WAIT
            windows[name] = [seq[i].image for i in idx]
        return self.runtime.decide_windows(windows, initial_g=self.initial_g, target_g=self.target_g).action


def sim_sensors(runtime: PolicyRuntime) -> list[SensorSpec]:
    """Simulated sensors matching the policy's: same names, the shipped sensor model of each type, on the finger of
    the name (Finger.of_name)."""
    return [SensorSpec(load_sensor_model(kind), name=name, finger=Finger.of_name(name))
            for name, kind in runtime.sensors]


def eval_sensors(runtime: PolicyRuntime, specs: Sequence[SensorSpec]) -> list[SensorSpec]:
    """The simulated sensors to evaluate `runtime` with: `specs` as named, or, when they do not name the policy's
    sensors but are as many, each standing in for the policy's sensor in its place (renamed to it: a DIGIT model
    evaluating a GelSight-Mini-trained policy publishes as gelsight_mini_left).

    A sensor of another type than the one it stands in for needs a policy trained with the universal token (`anytouch
    train --token universal`): with specific tokens its windows would get the token of a sensor they do not come from.
    """
    specs = list(specs)
    names = [s.name for s in specs]
    if set(runtime.sensor_names) <= set(names):
        return specs
    if len(specs) != len(runtime.sensors):
        raise ConfigError(f"the policy needs sensors {runtime.sensor_names}; the simulated rig has {names}: give "
                          f"one --sensor per policy sensor (each stands in for the one in its place) or name them")
    mapped = []
    for spec, (name, kind) in zip(specs, runtime.sensors, strict=True):
        if spec.sensor_type != kind and runtime.token_mode is not TokenMode.UNIVERSAL:
            raise ConfigError(f"sensor model {spec.model.name!r} ({spec.sensor_type.label}) cannot stand in for the "
                              f"policy's {name!r} ({kind.label}): the policy uses sensor-specific tokens (token_mode "
                              f"{runtime.token_mode.value}); train it with `anytouch train --token universal`")
        mapped.append(replace(spec, name=name))
    return mapped


@dataclass
class PolicyEval:
    report: EvalReport
    traces: list[list[tuple[float, float]]] = field(default_factory=list)  # per episode: (time s, poured g)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "seconds": round(self.seconds, 1)}


def _sim_policy(load: Callable[[], PolicyRuntime], *, initial_g: float, target_g: float) -> SimPolicy:
    return SimPolicy(load(), initial_g=initial_g, target_g=target_g)


def evaluate_policy(runtime: PolicyRuntime, *, episodes: int, initial_g: float = 100.0, target_g: float = 60.0,
                    seed: int = 0, sensors: Sequence[SensorSpec] | None = None, config: RigConfig | None = None,
                    progress: Callable[[EpisodeReport], None] | None = None,
                    pool: EpisodePool | None = None) -> PolicyEval:
    """`episodes` closed-loop episodes (EVAL seeds of run `seed`), with the poured mass over time of each; in this
    process, or in the workers of `pool`, which load the bundle again (same results, see EpisodePool)."""
    sensors = list(sensors) if sensors is not None else sim_sensors(runtime)
    missing = [n for n in runtime.sensor_names if n not in {s.name for s in sensors}]
    if missing:
        raise ConfigError(f"the policy needs sensors {missing}, the simulated rig has {[s.name for s in sensors]}")
    specs = episode_specs(episodes, initial_g=initial_g, target_g=target_g, sensors=sensors, seed=seed, config=config)
    report = EvalReport(initial_g=initial_g, target_g=target_g, sensors=[s.name for s in sensors], seed=seed)
    start = time.perf_counter()
    results = (pool or EpisodePool(1)).run(
        SimPolicy(runtime, initial_g=initial_g, target_g=target_g), specs, progress=progress,
        make_policy=partial(_sim_policy, runtime.loader(), initial_g=initial_g, target_g=target_g))
    report.episodes.extend(ep for ep, _ in results)
    return PolicyEval(report=report, traces=[trace for _, trace in results], seconds=time.perf_counter() - start)


def plot_pours(evals: dict[str, PolicyEval], path: Path | str, *, episodes: int = 4) -> Path:
    """PNG: poured mass over time for the first `episodes` episodes of each policy, target dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(evals), figsize=(4.2 * len(evals), 3.6), sharey=True, squeeze=False)
    for ax, (name, ev) in zip(axes[0], evals.items(), strict=True):
        for trace, ep in list(zip(ev.traces, ev.report.episodes, strict=True))[:episodes]:
            ts, ms = zip(*trace, strict=True)
            ax.plot(ts, ms, label=f"seed {ep.seed}: {ep.poured_g:.1f} g")
        ax.axhline(ev.report.target_g, color="black", ls="--", lw=0.8)
        s = ev.report.summary()
        ax.set_title(f"{name}\nmean error {s['mean_abs_error_g']:.2f} g", fontsize=9)
        ax.set_xlabel("time (s)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("poured (g)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@config
class EvalConfig:
    """What `anytouch eval` runs: a policy bundle, closed loop on the simulated rig."""

    policy: Path = Field(description="policy bundle folder")
    episodes: Annotated[int, AT_LEAST_1] = Field(default=20, description="closed-loop episodes")
    initial_g: Annotated[float, MASS_G] = Field(default=100.0, description="beads in the cylinder at the start (g)")
    target_g: Annotated[float, MASS_G] = Field(default=60.0, description="mass to pour (g)")
    seed: Annotated[int, NONNEGATIVE] = Field(
        default=0, description="run seed (episode seeds from the evaluation range)")
    sensors: list[str] | None = Field(
        default=None, description="simulated sensors: shipped model names or model files (.yaml), repeatable "
                                  "(default: the policy's sensors, by name)")
    plot: Path | None = Field(default=None, description="poured mass over time (default: "
                                                        "<policy>/eval_<initial>-<target>_seed<seed>.png)")
    write_plot: bool = Field(default=True, description="write the plot")
    device: str = Field(default="auto", description="auto | cpu | cuda")
    precision: Precision = Field(default=Precision.FLOAT32, description="compute dtype of the encoder")
    threads: Annotated[int, AT_LEAST_1] | None = Field(default=None, description="CPU threads (torch) with --workers 1")
    workers: Annotated[int, AT_LEAST_1] | None = Field(default=None, description=WORKERS_HELP)
    token: TokenMode | None = Field(
        default=None, description="the token mode the evaluation relies on; must be the bundle's (default: the "
                                  "bundle's)")

    @property
    def plot_path(self) -> Path | None:
        """Where the plot goes: --plot, else inside the bundle (the bundle's output rule allows it); None: no plot."""
        if not self.write_plot:
            return None
        return self.plot or self.policy / f"eval_{self.initial_g:g}-{self.target_g:g}_seed{self.seed}.png"


def evaluate_bundle(config: EvalConfig, *, as_json: bool = False) -> None:
    """`anytouch eval`: load the bundle, evaluate, print the report (table or JSON), then write the plot.

    The plot path is checked before any work; the report is printed before the plot, so a failing plot (a full
    disk) never loses it. `config.token` states the token mode the run relies on: it must be the bundle's (which records
    it), so `--token universal` refuses a policy trained with specific tokens instead of evaluating something else.
    """
    policy, plot = config.policy, config.plot_path
    if plot is not None:
        check_output_file(plot, what="--plot", suffixes=PLOT_SUFFIXES)
    runtime = PolicyRuntime.from_bundle(policy, device=config.device, precision=config.precision,
                                        threads=config.threads)
    token = config.token
    if token is not None and token is not runtime.token_mode:
        raise ConfigError(f"--token {token.value}: policy bundle {policy} was trained with token mode "
                          f"{runtime.token_mode.value} (config.json field 'token_mode'); retrain it with `anytouch "
                          f"train --token {token.value}`")
    specs = eval_sensors(runtime, [SensorSpec.parse(s) for s in config.sensors]) if config.sensors else None
    progress = None if as_json else (lambda ep: print(f"episode {ep.index}: poured {ep.poured_g:.2f} g "
                                                      f"({ep.steps} ticks)", file=sys.stderr))
    with EpisodePool(config.workers) as pool:
        result = evaluate_policy(runtime, episodes=config.episodes, initial_g=config.initial_g,
                                 target_g=config.target_g, seed=config.seed, sensors=specs, progress=progress,
                                 pool=pool)
    if as_json:
        print(json.dumps({"policy": str(policy), "variant": runtime.variant, "token_mode": runtime.token_mode.value,
                          "sensor_models": {s.name: s.model.name for s in specs or sim_sensors(runtime)},
                          **result.to_dict(),
                          **({} if plot is None else {"plot": str(plot)})}, indent=2), flush=True)
    else:
        print(result.report.table(), flush=True)
    if plot is not None:
        try:
            plot_pours({Path(policy).name: result}, plot)
        except OSError as exc:
            raise AnyTouchError(f"--plot {plot}: cannot write the plot ({exc}); the report above is complete") from None
        if not as_json:
            print(f"plot: {plot}")
