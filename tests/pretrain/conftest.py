"""Tiny synthetic datasets for the pretraining tests: PNG files and a manifest.jsonl, or recorded episode bags."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from anytouch_policy.actions import Action
from anytouch_policy.data.episode import EpisodeMeta, EpisodeWriter
from anytouch_policy.pretrain.clip_towers import TINY_CLIP_CONFIG
from anytouch_policy.pretrain.config import DecoderConfig, LoraConfig, PretrainConfig, Stage

TINY_DECODER = DecoderConfig(width=32, layers=1, heads=2)
TINY_LORA = LoraConfig(rank=4, alpha=8.0)


def _png(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def pattern(seed: int, size: int = 56) -> np.ndarray:
    """A smooth random blob image: learnable structure, unlike white noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    cy, cx = rng.uniform(0.2, 0.8, 2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.05)
    base = rng.uniform(40, 120, 3)
    img = base + blob[..., None] * rng.uniform(60, 130, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_manifest(root: Path, *, objects: int = 3, positions: int = 2, sensors=("digit", "gelsight_mini"),
                   video: bool = True, extra_lines=()) -> Path:
    """One static and (optionally) one 4-frame sample per (object, position, sensor); vision/text on some."""
    lines = []

    def pair(rec: dict, seed: int) -> dict:
        """Per kind: vision on 2/3 of the samples, text on 1/2, both on 1/3, neither on 1/6."""
        k = len(lines) // 2
        if k % 3 != 2:
            rec["vision"] = f"vision/{seed}.png"
            _png(root / rec["vision"], pattern(seed + 7, 64))
        if k % 2 == 0:
            rec["text"] = f"object {rec['object']} at {rec['position']}, a {'rough' if seed % 2 else 'smooth'} surface"
        return rec

    for o in range(objects):
        for p in range(positions):
            for s, sensor in enumerate(sensors):
                seed = 1000 * o + 100 * p + s
                rec = {"touch": f"touch/o{o}/p{p}/{sensor}/still.png", "sensor": sensor, "object": f"o{o}",
                       "position": f"p{p}"}
                _png(root / rec["touch"], pattern(seed))
                lines.append(pair(rec, seed))
                if video:
                    frames = [f"touch/o{o}/p{p}/{sensor}/clip/{k}.png" for k in range(4)]
                    for k, f in enumerate(frames):
                        _png(root / f, np.roll(pattern(seed), 2 * k, axis=0))
                    rec = {"touch": frames, "sensor": sensor, "object": f"o{o}", "position": f"p{p}"}
                    lines.append(pair(rec, seed + 50))
    lines.extend(extra_lines)
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    return path


def write_sensor_looks(root: Path, *, states: int = 16, sensors=("gelsight_mini", "digit"), skip=(),
                       own_colours: bool = False) -> Path:
    """`states` states, each a 4-frame clip through every sensor: 40 % the state's blob, 60 % the sensor's own look
    (sensors differ more than states do, as real ones); (state, sensor) pairs in `skip` are left out.
    `own_colours`: each sensor also shows the blob in its own channel order (a contact changes other colours)."""
    lines = []
    for state in range(states):
        blob = pattern(state).astype(np.float32)
        for s, sensor in enumerate(sensors):
            if (state, sensor) in skip:
                continue
            content = np.roll(blob, s, axis=2) if own_colours else blob
            look = pattern(9000 + s).astype(np.float32)
            frames = [f"st{state}/{sensor}/{k}.png" for k in range(4)]
            for k, frame in enumerate(frames):
                _png(root / frame, np.clip(0.4 * np.roll(content, 2 * k, axis=0) + 0.6 * look, 0, 255).astype(np.uint8))
            lines.append({"touch": frames, "sensor": sensor, "object": f"sc{state // 4}", "position": f"t{state % 4}"})
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def write_episode(root: Path, name: str, *, frames: int = 12, sensors=None, seed: int = 0) -> Path:
    """A finished episode bag with `frames` tactile frames per sensor and a few actions."""
    sensors = sensors or {"left": "gelsight_mini"}
    meta = EpisodeMeta(initial_g=100.0, target_g=60.0, sensors=dict(sensors))
    with EpisodeWriter(root / name, meta=meta) as writer:
        for k in range(frames):
            t = 1_000_000_000 + k * 40_000_000
            for i, sensor in enumerate(sensors):
                writer.write_image(sensor, t, np.roll(pattern(seed + i, 64), k, axis=1))
            if k % 5 == 0:
                writer.write_action(t, Action.WAIT)
    return root / name


def tiny_config(stage: Stage, out: Path, **overrides) -> PretrainConfig:
    """A run of the tiny preset that takes a few seconds on a CPU."""
    base = dict(stage=stage, out=str(out), preset="anytouch-tiny", epochs=2, batch_size=4, decoder=TINY_DECODER,
                lora=TINY_LORA, clip_arch=str(TINY_CLIP_CONFIG), warmup_epochs=0.5, progress=False, save_every=0,
                device="cpu")
    base.update(overrides)
    return PretrainConfig(**base)


@pytest.fixture(scope="session")
def synth() -> SimpleNamespace:
    """The helpers above, for tests (conftest modules are not importable under --import-mode=importlib)."""
    return SimpleNamespace(pattern=pattern, write_manifest=write_manifest, write_episode=write_episode,
                           write_sensor_looks=write_sensor_looks, tiny_config=tiny_config, TINY_DECODER=TINY_DECODER,
                           TINY_LORA=TINY_LORA)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aligned")
    write_manifest(root)
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and on a CPU shared with other jobs torch's pool made these tests ~10x
    slower; the trainer's `threads` option does the same for real runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
