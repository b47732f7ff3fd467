"""anytouch bench probe --encoder models/anytouch-small

Representation quality apart from any policy, on simulated touch the encoder never saw (a fresh dataset seed,
rendered through the four pretraining sensors and DuraGel), from frozen embeddings of 3-frame windows ending at
each state's instant:

- ridge-regression R^2 (standardised features, alpha chosen on a validation part of the training scenarios; test
  on other scenarios) for poured mass since the start of the pour, flow rate and the grip load, per sensor, over the
  pour states; each sensor reads its own token, DuraGel (never trained) the universal one. Poured mass and flow
  rate read the window's embedding together with its difference to the embedding of the pour's first window (one
  window cannot tell how much has left when fills differ); the grip load reads the window alone (`FEATURES`);
- cross-sensor retrieval: a GelSight Mini window -> the DIGIT window of the same state among every state's DIGIT
  window (other scenarios and other times of the same scenario), top-1 accuracy, with the sensor-specific tokens and
  with the universal token; and Mini -> DuraGel with the universal token. Chance is 1/N.

The random-init baseline is the preset initialised with `--seed` (the demo's random init) and reads the same data.
Beside both, `reference` holds the same regressions from fixed features of the same windows at the encoder's
resolution (`sim.probe.window_features`: colour thumbnail, high-pass energy, pooled absolute frame differences; no
learning): what a representation should at least keep, the frame-to-frame change above all.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from anytouch_policy.bounds import AT_LEAST_1, NONNEGATIVE, Interval
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import config

#: Regression targets (fields of states.jsonl) over the pour states.
TARGETS = ("poured_g", "flow_g_s", "load_n")
#: Targets that need the start of the pour: one window cannot tell how much of a fill has left since the start when
#: fills differ across scenarios, so their features are the window's embedding and its difference to the embedding
#: of the same scenario's first pour window (what a pouring policy also has: it saw the start of its own pour).
FROM_START = ("poured_g", "flow_g_s")
FEATURES = {t: ("the window's embedding and (embedding - the embedding of its scenario's first pour window)"
                if t in FROM_START else "the window's embedding") for t in TARGETS}
#: What the reference row reads (the same targets, the same split; FEATURES says how each target uses them).
FIXED_FEATURES = ("sim.probe.window_features of the 3 frames at the encoder's resolution: colour thumbnail, "
                  "high-pass energy of the newest frame, pooled absolute differences of consecutive frames")
#: Share of pour scenarios whose states train the ridge probes (the rest test them).
TRAIN_SHARE = 0.7
QUERY, CANDIDATE, UNSEEN = "gelsight_mini", "digit", "duragel"


@config
class ProbeBench:
    """`anytouch bench probe`: frozen embeddings of a pretrained bundle beside a random init of its architecture."""

    encoder: Path = Field(default=Path("models/anytouch-small"),
                          description="the pretrained encoder bundle (default: the shipped models/anytouch-small)")
    random_preset: str | None = Field(
        default=None, description="preset of the random-init baseline (default: the bundle's own architecture)")
    data: Path | None = Field(
        default=None, description="an `anytouch sim dataset` folder rendered with duragel too (default: generate one)")
    hours: Annotated[float, Interval.parse("(0, 1000]")] = Field(
        default=0.15, description="simulated hours of the generated probe data")
    data_seed: Annotated[int, NONNEGATIVE] = Field(default=1000, description="seed of the generated probe data")
    seed: Annotated[int, NONNEGATIVE] = Field(default=0, description="seed of the random-init baseline")
    workers: Annotated[int, AT_LEAST_1] = Field(default=2, description="render processes for the probe data")
    threads: Annotated[int, AT_LEAST_1] = Field(default=1, description="torch CPU threads")


FLAGS = Flags(ProbeBench, Flag("encoder", metavar="BUNDLE"), "random_preset", Flag("data", metavar="DIR"), "hours",
              "data_seed", "seed", "workers", "threads")


@dataclass
class ProbeSet:
    """Frozen-embedding inputs: per sensor label the normalised (N, 3, 3, S, S) windows, in state order, and the
    fixed features (N, F) of the same windows (the reference row)."""

    states: list[dict]  # states.jsonl rows, one per state, in the windows' order
    windows: dict[str, torch.Tensor]
    fixed: dict[str, np.ndarray]


def load_probe_set(data: Path, image_size: int, sensors: Sequence[str]) -> ProbeSet:
    """Every state of `data` that every sensor in `sensors` saw: the window of its clip's last 3 frames."""
    import json

    from anytouch_policy.pretrain.augment import normalize_touch, touch_tensor
    from anytouch_policy.pretrain.manifest import read_manifest
    from anytouch_policy.sim.probe import window_features
    from anytouch_policy.tactile import read_rgb, resize_rgb

    clips: dict[tuple[str, str], tuple[Path, ...]] = {}
    for name in ("manifest.jsonl", "heldout.jsonl"):
        if (data / name).is_file() and (data / name).stat().st_size:
            for r in read_manifest(data / name):
                if len(r.touch) == 4:
                    clips[(f"{r.object}/{r.position}", r.sensor.label)] = r.touch
    rows = [json.loads(line) for line in (data / "states.jsonl").read_text().splitlines() if line.strip()]
    states = [row for row in rows if all((row["state"], s) in clips for s in sensors)]
    missing = [s for s in sensors if not any((row["state"], s) in clips for row in rows)]
    if missing:
        raise ConfigError(f"{data}: no clips of sensor(s) {missing}; generate it with --sensor for each of "
                          f"{list(sensors)}")
    windows, fixed = {}, {}
    for s in sensors:
        frames = [[resize_rgb(read_rgb(p), image_size) for p in clips[(row["state"], s)][1:]] for row in states]
        windows[s] = torch.stack([normalize_touch(touch_tensor(w, image_size)) for w in frames])
        fixed[s] = np.stack([window_features(w) for w in frames])
    return ProbeSet(states, windows, fixed)


@torch.no_grad()
def embed(encoder: torch.nn.Module, windows: torch.Tensor, slot: int, *, batch: int = 64) -> np.ndarray:
    """L2-normalised embeddings of (N, 3, 3, S, S) windows, all with sensor token `slot`."""
    out = []
    for start in range(0, len(windows), batch):
        x = windows[start:start + batch]
        sensor = torch.full((len(x),), slot, dtype=torch.long)
        out.append(torch.nn.functional.normalize(encoder(x, sensor).float(), dim=-1))
    return torch.cat(out).numpy()


def top1_accuracy(queries: np.ndarray, candidates: np.ndarray) -> float:
    """Share of queries i whose most similar candidate (dot product) is candidate i."""
    if queries.shape != candidates.shape:
        raise ConfigError(f"retrieval needs one candidate per query, got {queries.shape} vs {candidates.shape}")
    return float(np.mean(np.argmax(queries @ candidates.T, axis=1) == np.arange(len(queries))))


def pour_split(states: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(indices of pour states, train mask over them): whole scenarios train or test, evenly spread."""
    pours = [i for i, s in enumerate(states) if s["kind"] == "pour" and s["poured_g"] is not None]
    scenarios = sorted({states[i]["scenario"] for i in pours})
    train_ids = {sc for k, sc in enumerate(scenarios) if int((k + 1) * TRAIN_SHARE) > int(k * TRAIN_SHARE)}
    return np.array(pours), np.array([states[i]["scenario"] in train_ids for i in pours])


def first_pour_window(states: list[dict], pours: np.ndarray) -> np.ndarray:
    """For each pour state (indices `pours` into `states`), the index of its scenario's earliest pour state."""
    first: dict[str, int] = {}
    for i in pours:
        scenario = states[i]["scenario"]
        if scenario not in first or states[i]["t_s"] < states[first[scenario]]["t_s"]:
            first[scenario] = int(i)
    return np.array([first[states[i]["scenario"]] for i in pours], dtype=int)


def target_features(x: np.ndarray, states: list[dict], pours: np.ndarray, target: str) -> np.ndarray:
    """Probe features of the pour states for one target (FEATURES says which)."""
    if target not in FROM_START:
        return x[pours]
    return np.concatenate([x[pours], x[pours] - x[first_pour_window(states, pours)]], axis=1)


def regression_figures(features: dict[str, np.ndarray], states: list[dict]) -> dict[str, dict[str, float]]:
    """Test R^2 per sensor and target of ridge probes on (N, F) features per sensor, in state order."""
    from anytouch_policy.sim.probe import ridge_r2

    pours, train = pour_split(states)
    return {sensor: {t: round(ridge_r2(target_features(x, states, pours, t),
                                       np.array([states[i][t] for i in pours], float), train), 4) for t in TARGETS}
            for sensor, x in features.items()}


def encoder_figures(encoder: torch.nn.Module, probe: ProbeSet) -> dict:
    """Regression R^2 per sensor and target, retrieval accuracies, for one frozen encoder."""
    from anytouch_policy.sensors import SensorType

    universal = int(SensorType.UNIVERSAL)
    own = {s: (universal if s == UNSEEN else int(SensorType.from_name(s))) for s in probe.windows}
    emb = {s: embed(encoder, w, own[s]) for s, w in probe.windows.items()}
    regression = regression_figures(emb, probe.states)
    uni = {s: embed(encoder, probe.windows[s], universal) for s in (QUERY, CANDIDATE)}
    retrieval = {
        f"{QUERY}_to_{CANDIDATE}_specific": top1_accuracy(emb[QUERY], emb[CANDIDATE]),
        f"{QUERY}_to_{CANDIDATE}_universal": top1_accuracy(uni[QUERY], uni[CANDIDATE]),
    }
    if UNSEEN in emb:
        retrieval[f"{QUERY}_to_{UNSEEN}_universal"] = top1_accuracy(uni[QUERY], emb[UNSEEN])
    return {"regression_r2": regression, "retrieval_top1": {k: round(v, 4) for k, v in retrieval.items()}}


def compare(encoders: dict[str, torch.nn.Module], probe: ProbeSet) -> dict:
    """Figures of every encoder on the same probe set, and whether the last beats the first everywhere."""
    pours, train = pour_split(probe.states)
    for target in TARGETS:
        for part, rows in (("training", pours[train]), ("test", pours[~train])):
            values = {probe.states[i][target] for i in rows}
            if len(values) < 2:
                raise ConfigError(f"probe data: {target} does not vary over the {part} pour scenarios "
                                  f"({len(rows)} states); use more --hours")
    figures = {name: encoder_figures(enc, probe) for name, enc in encoders.items()}
    names = list(figures)
    out = {"states": len(probe.states), "pour_states": {"train": int(train.sum()), "test": int((~train).sum())},
           "retrieval_candidates": len(probe.states), "retrieval_chance": round(1 / len(probe.states), 5),
           "targets": list(TARGETS), "features": FEATURES, "encoders": figures,
           "reference": {"fixed_features": {"regression_r2": regression_figures(probe.fixed, probe.states),
                                            "features": FIXED_FEATURES}}}
    if len(names) >= 2:
        base, best = figures[names[0]], figures[names[-1]]
        out["above_baseline"] = {
            "regression": {s: {t: best["regression_r2"][s][t] > base["regression_r2"][s][t] for t in TARGETS}
                           for s in base["regression_r2"]},
            "retrieval": {k: best["retrieval_top1"][k] > base["retrieval_top1"][k] for k in base["retrieval_top1"]},
        }
    return out


def probe_sensors() -> list[str]:
    from anytouch_policy.sim.dataset import DEFAULT_SENSORS

    return [*DEFAULT_SENSORS, UNSEEN]


def make_probe_data(out: Path, *, hours: float, seed: int, size: int, workers: int) -> Path:
    from anytouch_policy.sim.dataset import write_dataset
    from anytouch_policy.sim.sensor_params import SensorSpec

    write_dataset(out, hours=hours, seed=seed, sensors=[SensorSpec.parse(s) for s in probe_sensors()], size=size,
                  heldout=0.0, workers=workers, bar=False)
    return out


def run(args: ProbeBench) -> dict:
    from anytouch_policy.model.bundle import load_encoder_bundle
    from anytouch_policy.model.encoder import AnyTouchEncoder
    from anytouch_policy.threads import set_torch_threads

    set_torch_threads(args.threads)
    started = time.perf_counter()
    pretrained = load_encoder_bundle(args.encoder)
    torch.manual_seed(args.seed)
    random_init = (AnyTouchEncoder.from_preset(args.random_preset) if args.random_preset
                   else AnyTouchEncoder(pretrained.config)).eval()
    with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
        data = Path(args.data) if args.data else make_probe_data(
            Path(tmp) / "data", hours=args.hours, seed=args.data_seed, size=pretrained.image_size,
            workers=args.workers)
        probe = load_probe_set(data, pretrained.image_size, probe_sensors())
    if len(probe.states) < 100:
        raise ConfigError(f"retrieval needs at least 100 candidates, the probe data has {len(probe.states)} states; "
                          f"raise --hours")
    result = compare({"random_init": random_init, "pretrained": pretrained.encoder}, probe)
    result["setup"] = {"encoder": str(args.encoder), "weights_sha256": pretrained.weights_sha256,
                       "data": str(args.data) if args.data else f"generated: hours {args.hours}, seed {args.data_seed}",
                       "random_init_seed": args.seed, "sensors": probe_sensors(),
                       "seconds": round(time.perf_counter() - started, 1)}
    return result
