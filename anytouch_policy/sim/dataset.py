"""Aligned multi-sensor touch data from the simulated rig ("sim TacQuad"): `anytouch sim dataset`.

    write_dataset("data/sim_tacquad", hours=1.0, seed=0, workers=2)   # the default pretraining sensors

Scenarios (pours of sim/pours.py and touches of sim/contacts.py, TOUCH_SHARE of them touches) are drawn from the
seed until their durations add up to `hours`; each is sampled every `every_s` seconds (+/- 25 %). Every sample is
one physical state at instant T, rendered through every sensor: a 4-frame clip at the sensor's own rate whose last
frame is at T (frames at T - 3p, T - 2p, T - p, T; p = 1 / fps; each shows the latest physics state at or before its
stamp) and a static sample (the frame at T). The manifests (`manifest.jsonl` training, `heldout.jsonl` the held-out
scenarios) are the TacQuad-style format `anytouch pretrain --data` reads (pretrain/manifest.py): `object` is the
scenario id and `position` the sample's index in it, so the samples of one state from different sensors are
cross-sensor matching positives and every other state, other times of the same scenario included, is a negative.
`states.jsonl` holds the ground truth of each state (`state` = "<object>/<position>"), `scenarios.jsonl` each
scenario's drawn plan, `dataset.json` the settings. docs/sim.md ("Aligned multi-sensor data") has the layout and
every field.

Everything is a function of (seed, scenario index): the same seed gives byte-identical manifests, states and frames
for any number of worker processes, a sensor's frames of a state do not depend on which other sensors are rendered,
and the physical states do not depend on the sensors at all.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from tqdm import tqdm

from anytouch_policy.errors import ConfigError
from anytouch_policy.outputs import OutputKind, writing_dir
from anytouch_policy.progress import bar_disabled
from anytouch_policy.schema import dump
from anytouch_policy.sim import contacts, pours
from anytouch_policy.sim.contacts import TouchPlan, TouchState
from anytouch_policy.sim.params import stream_rng
from anytouch_policy.sim.pours import PourPlan, PourState
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.runs import (
    DATASET_HOURS,
    DATASET_SENSORS,
    DATASET_WORKERS,
    FRAME_PX,
    HELDOUT_SHARE,
    SAMPLE_EVERY_S,
)
from anytouch_policy.sim.sensor_params import SensorParams, SensorSpec, sample_sensor_params
from anytouch_policy.tactile import resize_rgb

#: The sensors pretraining sees; DuraGel stays out (the unseen sensor of the transfer experiment).
DEFAULT_SENSORS = DATASET_SENSORS
DATASET_FILE = "dataset.json"
MANIFEST_FILE = "manifest.jsonl"  # the training split: what `anytouch pretrain --data DIR` reads
HELDOUT_FILE = "heldout.jsonl"
STATES_FILE = "states.jsonl"
SCENARIOS_FILE = "scenarios.jsonl"
TOUCH_DIR = "touch"
SIM_DATASET = OutputKind("simulated touch dataset", markers=(DATASET_FILE, MANIFEST_FILE),
                         contents=(DATASET_FILE, MANIFEST_FILE, HELDOUT_FILE, STATES_FILE, SCENARIOS_FILE, TOUCH_DIR))
#: Share of touch scenarios by count (pours last about four times longer: touches get about 40 % of the states).
TOUCH_SHARE = 0.7
#: Frames of a clip: 3 encoder inputs and the next frame.
CLIP_FRAMES = 4
#: Physics step of every scenario (ns).
STEP_NS = contacts.STEP_NS
#: The first sample of a scenario lies this far after its start (s), plus a random phase of one sampling period.
FIRST_SAMPLE_S = 0.15
#: Random stream of a scenario's draw, and the one its seed comes from.
SCENARIO_STREAM = 9001
#: PNG compression level (fast; the frames are noisy, higher levels save little).
PNG_LEVEL = 1
#: Ground-truth fields of every state, in file order (null where a field does not apply to the scenario's kind).
TRUTH_FIELDS = ("kind", "contact", "object", "motion", "touching", "slipping", "load_n", "normal_n", "shear_n",
                "shear_x_n", "shear_y_n", "torque_nmm", "slip_mm", "grip_force_n", "tilt_deg", "tilt_rate_deg_s",
                "flow_g_s", "flow_now_g_s", "poured_g", "mass_left_g", "fill_g", "critical_tilt_deg",
                "stream_excess_deg", "tare_g", "cylinder_radius_mm", "grasp_height_mm", "depth_mm", "x_mm", "y_mm",
                "angle_deg", "speed_mm_s")

Plan = PourPlan | TouchPlan
State = PourState | TouchState


@dataclass(frozen=True)
class Scenario:
    """One scenario of the dataset: its plan, the physics steps of its samples and its split."""

    index: int
    seed: int
    plan: Plan
    samples: tuple[int, ...]
    heldout: bool

    @property
    def id(self) -> str:
        return f"sc{self.index:06d}"

    @property
    def split(self) -> str:
        return "heldout" if self.heldout else "train"


def scenario_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index), SCENARIO_STREAM]).generate_state(1)[0])


def _heldout(index: int, fraction: float) -> bool:
    """Evenly spread: scenario i is held out when floor((i + 1) f) > floor(i f)."""
    return int((index + 1) * fraction) > int(index * fraction)


def draw_scenario(seed: int, index: int, *, every_s: float, heldout: float) -> Scenario:
    """Scenario `index` of a dataset of seed `seed`."""
    s_seed = scenario_seed(seed, index)
    rng = stream_rng(s_seed, SCENARIO_STREAM)
    plan: Plan = contacts.draw_touch(rng) if rng.random() < TOUCH_SHARE else pours.draw_pour(rng, s_seed)
    samples = []
    t = FIRST_SAMPLE_S + float(rng.uniform(0.0, every_s))
    while t <= plan.duration_s:
        samples.append(round(t * 1e9 / STEP_NS))
        t += every_s * float(rng.uniform(0.75, 1.25))
    return Scenario(index=index, seed=s_seed, plan=plan, samples=tuple(samples), heldout=_heldout(index, heldout))


def plan_dataset(*, hours: float, seed: int, every_s: float, heldout: float) -> list[Scenario]:
    """Scenarios until their durations add up to `hours`."""
    out: list[Scenario] = []
    total = 0.0
    while total < hours * 3600.0:
        scenario = draw_scenario(seed, len(out), every_s=every_s, heldout=heldout)
        out.append(scenario)
        total += scenario.plan.duration_s
    return out


def sensor_index(spec: SensorSpec) -> int:
    """A sensor's stream index from its name alone: its look in a scenario does not depend on the other sensors."""
    return zlib.crc32(spec.name.encode()) % 997


def sensor_params(spec: SensorSpec, scenario: Scenario) -> SensorParams:
    """The sensor's look in a scenario: a unit drawn per scenario, the episode nuisances of the model file."""
    spec = dataclasses.replace(spec, randomize_unit=True)
    return sample_sensor_params(spec, episode_seed=scenario.seed, index=sensor_index(spec), randomize=True)


def period_ns(params: SensorParams) -> int:
    return round(1e9 / params.fps)


def clip_frames(sample_step: int, params: SensorParams) -> list[tuple[int, int]]:
    """(physics step shown, frame index) of the clip ending at the sample, oldest first. Stamps before the
    scenario's start show its first state."""
    t = sample_step * STEP_NS
    p = period_ns(params)
    return [(max(t - j * p, 0) // STEP_NS, t // p + CLIP_FRAMES - 1 - j) for j in range(CLIP_FRAMES - 1, -1, -1)]


def simulate(scenario: Scenario, steps: Sequence[int]) -> dict[int, State]:
    """The scenario's states at the given physics steps."""
    plan = scenario.plan
    if isinstance(plan, TouchPlan):
        return dict(contacts.simulate(plan, steps))
    return dict(pours.simulate(plan, steps))


def make_renderer(scenario: Scenario, params: SensorParams) -> TactileRenderer:
    plan = scenario.plan
    return TactileRenderer(params, cylinder_scale=plan.cylinder_scale if isinstance(plan, PourPlan) else 1.0)


def render_state(scenario: Scenario, renderer: TactileRenderer, state: State, frame_index: int) -> np.ndarray:
    """One frame of a state: a pour through the band, a touch through the heightmap path."""
    plan = scenario.plan
    if isinstance(plan, TouchPlan):
        return contacts.render_touch(renderer, plan.shape, cast(TouchState, state), frame_index)
    pour = cast(PourState, state)  # a pour scenario's states are pour states
    return renderer.render(pour.rig, frame_index, slip_mm=pour.slip_mm)


def truth(scenario: Scenario, state: State) -> dict:
    """Ground truth of a state, every TRUTH_FIELDS key (None where it does not apply)."""
    plan = scenario.plan
    values = (contacts.touch_truth(plan, cast(TouchState, state)) if isinstance(plan, TouchPlan)
              else pours.pour_truth(plan, cast(PourState, state)))
    return {k: _plain(values.get(k)) for k in TRUTH_FIELDS}


def _plain(value: object) -> object:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return value


def state_id(scenario: Scenario, k: int) -> str:
    return f"{scenario.id}/{position(k)}"


def position(k: int) -> str:
    return f"t{k:04d}"


def frame_path(scenario: Scenario, spec: SensorSpec, k: int, j: int) -> str:
    return f"{TOUCH_DIR}/{scenario.id}/{spec.name}/{k:04d}_{j}.png"


@dataclass(frozen=True)
class ScenarioOutput:
    """What one scenario adds to the files (lines without newlines) and how much it wrote."""

    records: list[str]
    states: list[str]
    scenario: str
    frames: int
    bytes: int


def build_scenario(scenario: Scenario, sensors: Sequence[SensorSpec], root: Path, size: int | None) -> ScenarioOutput:
    """Simulate one scenario, write every sensor's frames under `root` and return its manifest and state lines."""
    looks = [sensor_params(spec, scenario) for spec in sensors]
    clips = {(i, k): clip_frames(step, params) for i, params in enumerate(looks)
             for k, step in enumerate(scenario.samples)}
    states = simulate(scenario, sorted({s for frames in clips.values() for s, _ in frames} | set(scenario.samples)))
    records, written, frames = [], 0, 0
    for i, (spec, params) in enumerate(zip(sensors, looks, strict=True)):
        renderer = make_renderer(scenario, params)
        (root / TOUCH_DIR / scenario.id / spec.name).mkdir(parents=True, exist_ok=True)
        for k in range(len(scenario.samples)):
            paths = []
            for j, (step, index) in enumerate(clips[(i, k)]):
                image = render_state(scenario, renderer, states[step], index)
                if size is not None:
                    image = resize_rgb(image, size)
                ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
                if not ok:
                    raise ConfigError(f"{scenario.id}: PNG encoding failed for {spec.name}")
                rel = frame_path(scenario, spec, k, j)
                (root / rel).write_bytes(data.tobytes())
                paths.append(rel)
                written += len(data)
                frames += 1
            common = {"sensor": spec.sensor_type.label, "unit": spec.name, "object": scenario.id,
                      "position": position(k)}
            records.append(json.dumps({"touch": paths, **common, "id": f"{state_id(scenario, k)}/{spec.name}/clip"}))
            records.append(json.dumps({"touch": paths[-1], **common,
                                       "id": f"{state_id(scenario, k)}/{spec.name}/static"}))
    state_lines = [json.dumps({"state": state_id(scenario, k), "scenario": scenario.id, "position": position(k),
                               "split": scenario.split, "t_s": step * STEP_NS / 1e9,
                               **truth(scenario, states[step])})
                   for k, step in enumerate(scenario.samples)]
    described = json.dumps({"scenario": scenario.id, "seed": scenario.seed, "split": scenario.split,
                            "samples": len(scenario.samples), **_jsonable(scenario.plan.describe())})
    return ScenarioOutput(records, state_lines, described, frames, written)


def _jsonable(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return _plain(value)


def _job(args: tuple[Scenario, Sequence[SensorSpec], str, int | None]) -> ScenarioOutput:
    scenario, sensors, root, size = args
    return build_scenario(scenario, sensors, Path(root), size)


def _one_opencv_thread() -> None:
    """Workers render on one thread each (the parallelism is over scenarios)."""
    cv2.setNumThreads(1)


def _outputs(jobs: list[tuple], workers: int) -> Iterator[ScenarioOutput]:
    if workers <= 1:
        previous = cv2.getNumThreads()
        _one_opencv_thread()
        try:
            yield from map(_job, jobs)
        finally:
            cv2.setNumThreads(previous)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_opencv_thread) as pool:
        yield from pool.imap(_job, jobs, chunksize=1)


def write_dataset(out: Path | str, *, hours: float, seed: int = 0, sensors: Sequence[SensorSpec] | None = None,
                  every_s: float = 1.0, size: int | None = 112, heldout: float = 0.1, workers: int = 1,
                  overwrite: bool = False, bar: bool = True) -> dict:
    """Generate the dataset into `out` (the output-folder rule: new, empty, or an earlier dataset with overwrite);
    returns the summary written to dataset.json."""
    sensors = list(sensors) if sensors else [SensorSpec.parse(name) for name in DEFAULT_SENSORS]
    _check(hours=hours, every_s=every_s, size=size, heldout=heldout, workers=workers, sensors=sensors)
    start = time.perf_counter()
    scenarios = plan_dataset(hours=hours, seed=seed, every_s=every_s, heldout=heldout)
    total = sum(len(s.samples) for s in scenarios)
    lines: dict[str, list[str]] = {MANIFEST_FILE: [], HELDOUT_FILE: [], STATES_FILE: [], SCENARIOS_FILE: []}
    frames = written = 0
    with writing_dir(out, SIM_DATASET, overwrite=overwrite) as staged:
        jobs = [(s, sensors, str(staged), size) for s in scenarios]
        with tqdm(total=total, unit="state", desc="sim dataset", disable=bar_disabled(bar)) as progress:
            for scenario, result in zip(scenarios, _outputs(jobs, workers), strict=True):
                lines[HELDOUT_FILE if scenario.heldout else MANIFEST_FILE].extend(result.records)
                lines[STATES_FILE].extend(result.states)
                lines[SCENARIOS_FILE].append(result.scenario)
                frames += result.frames
                written += result.bytes
                progress.set_postfix_str(f"{scenario.id} {_kind(scenario)}", refresh=False)
                progress.update(len(scenario.samples))
        for name, rows in lines.items():
            (staged / name).write_text("".join(row + "\n" for row in rows))
        summary = _summary(scenarios, sensors, hours=hours, seed=seed, every_s=every_s, size=size, heldout=heldout,
                           workers=workers, frames=frames, written=written, seconds=time.perf_counter() - start)
        (staged / DATASET_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _kind(scenario: Scenario) -> str:
    plan = scenario.plan
    return plan.shape.kind if isinstance(plan, TouchPlan) else f"pour:{plan.controller}"


def _check(*, hours: float, every_s: float, size: int | None, heldout: float, workers: int,
           sensors: Sequence[SensorSpec]) -> None:
    """The ranges of `anytouch sim dataset` (sim.runs.SimDataset), for a caller of write_dataset."""
    DATASET_HOURS.check("hours", hours)
    SAMPLE_EVERY_S.check("every_s (seconds between samples)", every_s)
    if size is not None and size not in FRAME_PX:
        raise ConfigError(f"size must be None (native frames) or in {FRAME_PX} px, got {size}")
    HELDOUT_SHARE.check("heldout (share of scenarios held out)", heldout)
    DATASET_WORKERS.check("workers", workers)
    names = [s.name for s in sensors]
    if len(set(names)) != len(names):
        raise ConfigError(f"sensor names must be unique, got {names}")


def _summary(scenarios: list[Scenario], sensors: Sequence[SensorSpec], *, hours: float, seed: int, every_s: float,
             size: int | None, heldout: float, workers: int, frames: int, written: int, seconds: float) -> dict:
    kinds: dict[str, int] = {}
    for s in scenarios:
        kinds[_kind(s)] = kinds.get(_kind(s), 0) + 1
    split: dict[str, dict[str, int | str]] = {name: {"scenarios": sum(1 for s in scenarios if s.split == name),
                    "states": sum(len(s.samples) for s in scenarios if s.split == name)}
             for name in ("train", "heldout")}
    split["train"]["manifest"], split["heldout"]["manifest"] = MANIFEST_FILE, HELDOUT_FILE
    return {
        "format": "anytouch-sim-dataset", "version": 1, "seed": seed, "hours": hours, "every_s": every_s,
        "size": size, "heldout": heldout, "png_level": PNG_LEVEL,
        "sim_seconds": round(sum(s.plan.duration_s for s in scenarios), 3),
        "scenarios": len(scenarios), "scenario_kinds": dict(sorted(kinds.items())), "splits": split,
        "sensors": [{"name": s.name, "model": s.model.name, "slot": s.sensor_type.label,
                     "finger": s.finger.name.lower(), "fps": s.fps or s.model.format.fps,
                     "px_per_mm": s.model.px_per_mm, "definition": dump(s.model)} for s in sensors],
        "frames": frames, "bytes": written, "workers": workers, "seconds": round(seconds, 1),
    }
