"""Demonstrations of the scripted expert on the simulated rig, recorded exactly as the recorder node records them
(`anytouch sim record`, and the demo's recording step).

The messages go, serialised to CDR, through `data.recording.EpisodeRecorder` (the recorder node's core: writer
thread, bounded queue, `<prefix>_<YYYYmmdd-HHMMSS>_<k>` folders, `.incomplete` until finished) into rosbag2 MCAP
bags, with the topics and stamps a live recording has:

    tick k decided at t_k = base + (k - 1) * 0.2 s       pour/action (String), pour/cartesian_step (PoseStamped)
    frames rendered during the tick, (t_k, t_k + 0.2 s]    tactile/<sensor>/image_raw, logged at their grab stamp
    end of the tick, t_k + 0.2 s                            arm/tilt (from upright), scale/mass, sim/state

- The action of tick k is what the expert chose at t_k, having seen the frames up to t_k: exactly what training
  cuts ("latest frame at or before the action").
- Metadata: source "expert", the rig seed, final_g = the last scale reading and extra.end_reason, as the recorder
  node stores them. Seeds come from the TRAIN range, disjoint from the evaluation seeds.
- A dropped message (writer queue full) fails the recording rather than leaving a gap.

(initial, target) pairs are drawn per episode from ranges (`draw_pairs`):
- the initial mass uniformly from [max(A, C + 10), B], then the target uniformly from [C, min(D, initial - 10)],
  so every target lies at least MIN_POUR_G below its initial mass; ranges that allow no such pair are refused;
- two uniforms per episode from the run seed, so the first k pairs of a run of N are the pairs of a run of k, and
  a single pair (A = B, C = D) is exact.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anytouch_policy.actions import Action
from anytouch_policy.data import EpisodeMeta, topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.messages import RosbagsMessage, image_msg, joint_state_msg, pose_step_msg
from anytouch_policy.data.recording import EpisodeRecorder
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.eval.rollout import EpisodeReport, run_episode
from anytouch_policy.outputs import OutputKind, writing_dir
from anytouch_policy.progress import bar_disabled
from anytouch_policy.schema import dump
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import EPISODES_PER_SEED, RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.rig import TickResult
from anytouch_policy.sim.sensor_params import SensorSpec

#: Writer queue of the demo's recorder: the sim renders faster than real time, so allow a whole episode in flight.
QUEUE_BYTES = 1 << 30
#: The least a drawn target lies below its initial mass (g).
MIN_POUR_G = 10.0
#: Random stream of the (initial, target) draw, apart from every episode's own streams.
PAIR_STREAM = 7001
#: What `record_demonstrations` writes next to the episode folders: the settings, the models and the drawn pairs.
RECORD_FILE = "sim_record.json"
#: A folder of `anytouch sim record`, for the output-folder rule (anytouch_policy.outputs).
DEMONSTRATIONS = OutputKind("simulated demonstrations folder", markers=(RECORD_FILE,),
                            contents=(RECORD_FILE, "expert_*"))

Span = tuple[float, float]


def _span(value: float | Span) -> Span:
    lo, hi = (value, value) if isinstance(value, int | float) else value
    return float(lo), float(hi)


def draw_pairs(episodes: int, *, initial_g: float | Span, target_g: float | Span, seed: int,
               min_pour_g: float = MIN_POUR_G) -> list[Span]:
    """(initial g, target g) of each of `episodes` episodes of run `seed` (the rule is in the module docstring)."""
    (a, b), (c, d) = _span(initial_g), _span(target_g)
    for name, lo, hi in (("initial_g", a, b), ("target_g", c, d)):
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
            raise ConfigError(f"{name} range [{lo:g}, {hi:g}] g: need finite 0 < low <= high")
    low_initial = max(a, c + min_pour_g)
    if low_initial > b:
        raise ConfigError(f"no target in [{c:g}, {d:g}] g lies {min_pour_g:g} g below an initial mass in [{a:g}, "
                          f"{b:g}] g: the lowest target must be at most the highest initial mass - {min_pour_g:g} g")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), PAIR_STREAM]))
    pairs = []
    for _ in range(episodes):
        u, v = rng.random(2)
        initial = low_initial + (b - low_initial) * float(u)
        target = c + (min(d, initial - min_pour_g) - c) * float(v)
        pairs.append((initial, target))
    return pairs


def _submit(recorder: EpisodeRecorder, name: str, t_ns: int, msg: RosbagsMessage) -> None:
    msgtype = msg.__msgtype__
    if not recorder.submit(name, msgtype, t_ns, TYPESTORE.serialize_cdr(msg, msgtype)):
        raise EpisodeError(f"{recorder.root}: the recorder dropped a message on {name} (queue full or not recording)")


def record_expert_episode(recorder: EpisodeRecorder, *, index: int, seed: int, config: RigConfig,
                          sensors: Sequence[SensorSpec], target_g: float) -> tuple[Path, EpisodeReport]:
    """Run the expert on the rig of episode seed `seed`, streaming every frame, action and state to `recorder`."""
    tick_ns = round(config.tick_s * 1e9)
    base = time.time_ns()
    meta = EpisodeMeta(initial_g=config.initial_g, target_g=target_g,
                       sensors={s.name: s.sensor_type.label for s in sensors}, rig="sim", source="expert",
                       delta_phi_deg=config.delta_phi_deg, control_rate_hz=1.0 / config.tick_s, seed=seed)
    path = recorder.start(meta)
    last_mass = 0.0
    string, float64 = TYPESTORE.types["std_msgs/msg/String"], TYPESTORE.types["std_msgs/msg/Float64"]

    def on_tick(result: TickResult) -> None:
        nonlocal last_mass
        t_decided = base + (result.tick - 1) * tick_ns
        _submit(recorder, topics.ACTION, t_decided, string(data=Action(result.action).label))
        step = result.action.tilt_step_deg(config.delta_phi_deg)
        _submit(recorder, topics.CARTESIAN_STEP, t_decided,
                pose_step_msg(TYPESTORE, t_decided, step, frame_id="tool", axis="y"))
        for name, frames in result.frames.items():
            for frame in frames:
                stamp = base + frame.stamp_ns
                _submit(recorder, topics.tactile_topic(name), stamp,
                        image_msg(TYPESTORE, frame.image, stamp, frame_id=f"{name}_gel"))
        t_end = base + result.tick * tick_ns
        state = result.state
        _submit(recorder, topics.ARM_TILT, t_end, float64(data=state.tilt_deg))
        _submit(recorder, topics.SCALE_MASS, t_end, float64(data=state.mass_on_scale_g))
        _submit(recorder, topics.SIM_STATE, t_end, joint_state_msg(TYPESTORE, t_end, state.to_dict()))
        last_mass = state.mass_on_scale_g

    try:
        report = run_episode(ScriptedExpert(), config=config, sensors=sensors, seed=seed, target_g=target_g,
                             index=index, record_all_frames=True, on_tick=on_tick)
    except BaseException:
        recorder.finish(complete=False, extra={"end_reason": "abort"})
        raise
    recorder.finish(complete=True, final_g=last_mass, extra={"end_reason": "timeout" if report.timed_out else "end"})
    return path, report


def record_expert_episodes(root: Path | str, *, episodes: int, target_g: float | Span, sensors: Sequence[SensorSpec],
                           initial_g: float | Span | None = None, config: RigConfig | None = None, seed: int = 0,
                           prefix: str = "expert", storage: str = "mcap", bar: bool = False,
                           progress: Callable[[int, Path, EpisodeReport], None] | None = None) -> list[Path]:
    """Record `episodes` expert demonstrations (TRAIN seed range of run `seed`) into folders under `root`, as they
    go; the pairs are drawn from `initial_g` (default: config.initial_g) and `target_g` (`draw_pairs`)."""
    return _record(root, _plan(episodes, target_g=target_g, sensors=sensors, initial_g=initial_g, config=config,
                               seed=seed), prefix=prefix, storage=storage, bar=bar, progress=progress)


def record_demonstrations(out: Path | str, *, episodes: int, target_g: float | Span, sensors: Sequence[SensorSpec],
                          initial_g: float | Span | None = None, config: RigConfig | None = None, seed: int = 0,
                          overwrite: bool = False, bar: bool = False,
                          progress: Callable[[int, Path, EpisodeReport], None] | None = None) -> list[Path]:
    """`anytouch sim record`: the episodes of `record_expert_episodes` in a new folder `out` (the output-folder rule:
    new, empty, or with `overwrite` an earlier such folder; swapped in whole when every episode is recorded), with
    RECORD_FILE listing the settings, the sensor models and every episode's drawn pair.

    An interrupted or failed run keeps the episodes it finished (and the open one as `.incomplete`) with a
    RECORD_FILE marked `interrupted`: in `out` when it was new or empty, else beside it (the exception's note says
    where); an earlier recording there is never replaced by a partial one.
    """
    plan = _plan(episodes, target_g=target_g, sensors=sensors, initial_g=initial_g, config=config, seed=seed)
    with writing_dir(out, DEMONSTRATIONS, overwrite=overwrite, keep_on_error=True) as staged:
        paths: list[Path] = []
        reports: list[EpisodeReport] = []

        def keep(i: int, path: Path, report: EpisodeReport) -> None:
            paths.append(path)
            reports.append(report)
            if progress is not None:
                progress(i, path, report)

        try:
            _record(staged, plan, prefix="expert", storage="mcap", bar=bar, progress=keep)
        except BaseException:
            if not paths:  # nothing finished: nothing worth keeping
                for entry in staged.iterdir():
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            else:
                (staged / RECORD_FILE).write_text(
                    json.dumps(_summary(plan, paths, reports, interrupted=True), indent=2) + "\n")
            raise
        (staged / RECORD_FILE).write_text(json.dumps(_summary(plan, paths, reports), indent=2) + "\n")
    out = Path(out)
    return [out / p.name for p in paths]


@dataclass(frozen=True)
class _Plan:
    """What a recording will do, checked before anything is written."""

    config: RigConfig
    sensors: tuple[SensorSpec, ...]
    seed: int
    initial_g: Span
    target_g: Span
    pairs: tuple[Span, ...]

    @property
    def seeds(self) -> list[int]:
        return [episode_seed(SeedSplit.TRAIN, self.seed, i) for i in range(len(self.pairs))]


def _plan(episodes: int, *, target_g: float | Span, sensors: Sequence[SensorSpec], initial_g: float | Span | None,
          config: RigConfig | None, seed: int) -> _Plan:
    if not 1 <= episodes <= EPISODES_PER_SEED:
        raise ConfigError(f"episodes must be in [1, {EPISODES_PER_SEED}], got {episodes}")
    if not sensors:
        raise ConfigError("record at least one sensor")
    config = config or RigConfig()
    initial = _span(config.initial_g if initial_g is None else initial_g)
    pairs = draw_pairs(episodes, initial_g=initial, target_g=target_g, seed=seed)
    replace(config, initial_g=initial[1])  # RigConfig refuses an initial mass the cylinder cannot hold
    names = [s.name for s in sensors]
    if len(set(names)) != len(names):
        raise ConfigError(f"sensor names must be unique, got {names}")
    return _Plan(config=config, sensors=tuple(sensors), seed=seed, initial_g=initial, target_g=_span(target_g),
                 pairs=tuple(pairs))


def _record(root: Path | str, plan: _Plan, *, prefix: str, storage: str, bar: bool,
            progress: Callable[[int, Path, EpisodeReport], None] | None) -> list[Path]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    errors: list[str] = []
    recorder = EpisodeRecorder(root, prefix=prefix, storage=storage, max_queue_bytes=QUEUE_BYTES,
                               on_error=errors.append)
    episodes = tqdm(list(enumerate(zip(plan.pairs, plan.seeds, strict=True))), desc="recording demonstrations",
                    unit="episode", disable=bar_disabled(bar))
    try:
        for i, ((initial, target), seed) in episodes:
            path, report = record_expert_episode(recorder, index=i, seed=seed, sensors=plan.sensors, target_g=target,
                                                 config=replace(plan.config, initial_g=initial))
            if not recorder.wait_idle(timeout_s=120.0) or errors:
                raise EpisodeError(f"{path}: recording failed: {errors or 'writer did not catch up in 120 s'}")
            paths.append(path)
            episodes.set_postfix_str(f"{initial:.1f} -> {target:.1f} g, poured {report.poured_g:.1f} g")
            if progress is not None:
                progress(i, path, report)
    finally:
        episodes.close()
        recorder.close()
    return paths


def _summary(plan: _Plan, paths: Sequence[Path], reports: Sequence[EpisodeReport], *,
             interrupted: bool = False) -> dict:
    """The content of RECORD_FILE (`interrupted`: the run stopped after len(paths) of its planned episodes)."""
    return {
        "command": "anytouch sim record", "seed": plan.seed, "episodes": len(paths),
        "episodes_planned": len(plan.pairs), "interrupted": interrupted,
        "initial_g": list(plan.initial_g), "target_g": list(plan.target_g), "min_pour_g": MIN_POUR_G,
        "randomize": plan.config.randomize,
        "sensors": [{"name": s.name, "model": s.model.name, "slot": s.sensor_type.label,
                     "finger": s.finger.name.lower(), "fps": s.fps or s.model.format.fps, "unit_seed": s.unit_seed,
                     "randomize_unit": s.randomize_unit, "definition": dump(s.model)}
                    for s in plan.sensors],
        "episodes_recorded": [{"folder": p.name, "seed": r.seed, "initial_g": initial, "target_g": target,
                               "poured_g": r.poured_g, "steps": r.steps, "timed_out": r.timed_out}
                              for p, r, (initial, target) in zip(paths, reports, plan.pairs[:len(paths)],
                                                                 strict=True)],
    }
