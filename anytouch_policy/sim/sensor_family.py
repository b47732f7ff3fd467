"""Random sensor models: a family of made-up visuo-tactile sensors, drawn by seed, for training the universal sensor
token on looks no real sensor model fixes (domain randomisation of the sensor, not of the physics).

    models = random_sensor_models(count=16, seed=0)          # SensorModels named random_000 ... random_015
    paths = write_random_sensor_models("rig/random", count=16, seed=0)   # one YAML file each, `--sensor` reads them

Every drawn model sits in the `universal` token slot (no sensor-specific token learns it) and is checked by the same
schema as a hand-written model file. The ranges (FAMILY) span the shipped models and go beyond them on every axis
that changes a frame's look: gel colour, number, place and colour of the LEDs, vignetting, shading gain, pressed-patch
tint, image aspect and orientation, markers (none, or grids from sparse and large to dense and small), texture,
noise and rate. They are broad on purpose and not fitted to any one sensor; docs/pretrain.md says how a held-out
sensor model is kept out of the family's training data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from anytouch_policy.outputs import check_output_dir, make_dir
from anytouch_policy.sim.sensor_model import SensorModel, sensor_model_from_dict

#: Name of the n-th drawn model (its file is NAME.yaml; the sensor it renders is NAME_<finger>).
NAME = "random_{:03d}"
#: Ranges of every drawn field: (low, high), uniform unless the draw says otherwise.
FAMILY = {
    "width_px": (160, 480),  # captured landscape width
    "aspect": (1.0, 1.7),  # width / height
    "fps": (20.0, 60.0),
    "noise_sigma": (0.5, 3.0),
    "px_per_mm": (8.0, 18.0),
    "ambient": (10.0, 120.0),  # per channel
    "leds": (1, 4),  # count, inclusive
    "led_place": (-0.3, 1.3),  # x and y, fractions of the frame
    "led_peak": (20.0, 110.0),  # the brightest channel of an LED's colour
    "led_reach": (0.15, 0.75),
    "vignette": (0.0, 0.65),
    "slope_gain": (300.0, 1400.0),  # log-uniform
    "press_tint": (-20.0, 20.0),  # per channel
    "shear_px_per_n": (8.0, 22.0),
    "shear_far": (0.2, 0.5),
    "twist_deg_per_nm": (15.0, 36.0),
    "contact_half_width": (0.15, 0.25),
    "contact_depth": (0.03, 0.35),  # log-uniform
    "texture_amp": (3.0, 10.0),
    "texture_grain_px": (1.2, 3.6),
    "texture_per_g": (1.0, 2.4),
    "texture_tint": (0.8, 1.2),  # per channel
    "impact_jitter": (0.1, 0.25),
    "marker_grid": (4, 16),  # rows and cols, inclusive
    "marker_radius_px": (1.5, 5.0),
    "marker_darkness": (0.5, 0.95),
    "marker_jitter_px": (0.2, 1.0),
}
#: Chance that a drawn model has a marker grid.
MARKER_SHARE = 0.5
#: Per-unit and per-episode variation of every drawn model (the shipped models' usual ranges).
VARIATION = {
    "unit": {"led_gain": [0.9, 1.1], "shear": [0.85, 1.15], "twist": [0.85, 1.15], "noise": [0.8, 1.2]},
    "episode": {"contact_offset_px": 6.0, "mount_angle_deg": 1.0, "exposure": 0.03, "stiffness": 0.02,
                "contact_width": 0.05},
}


class _Draw:
    """Uniform draws from FAMILY, rounded so the written files read cleanly."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, key: str, digits: int = 3) -> float:
        low, high = FAMILY[key]
        return round(float(self.rng.uniform(low, high)), digits)

    def log(self, key: str, digits: int = 3) -> float:
        low, high = FAMILY[key]
        return round(float(np.exp(self.rng.uniform(np.log(low), np.log(high)))), digits)

    def integer(self, key: str) -> int:
        low, high = FAMILY[key]
        return int(self.rng.integers(int(low), int(high) + 1))

    def rgb(self, key: str, digits: int = 1) -> list[float]:
        return [self(key, digits) for _ in range(3)]


def _camera(draw: _Draw) -> dict:
    width = 8 * round(draw("width_px") / 8)
    height = max(16, 8 * round(width / draw("aspect") / 8))
    return {"resolution": [width, min(width, height)],
            "orientation": "portrait" if draw.rng.random() < 0.5 else "landscape",
            "fps": draw("fps", 1), "noise_sigma": draw("noise_sigma", 2), "px_per_mm": draw("px_per_mm", 1)}


def _led(draw: _Draw) -> dict:
    colour = draw.rng.uniform(0.0, 1.0, size=3)
    colour = colour / colour.max() * draw("led_peak", 1)
    return {"x": draw("led_place"), "y": draw("led_place"), "rgb": [round(float(c), 1) for c in colour],
            "reach": draw("led_reach")}


def _markers(draw: _Draw, camera: dict) -> dict | bool:
    if draw.rng.random() >= MARKER_SHARE:
        return False
    rows, cols = draw.integer("marker_grid"), draw.integer("marker_grid")
    width, height = camera["resolution"]
    if camera["orientation"] == "portrait":
        width, height = height, width
    cell = min(height / rows, width / cols)
    radius = min(draw("marker_radius_px", 2), round((cell - 1) / 2 - 0.01, 2))  # dots may not overlap
    return {"rows": rows, "cols": cols, "radius_px": max(radius, 0.5), "darkness": draw("marker_darkness", 2),
            "jitter_px": draw("marker_jitter_px", 2)}


def random_sensor_fields(rng: np.random.Generator, index: int) -> dict:
    """The fields of one drawn model, as its YAML file holds them."""
    draw = _Draw(rng)
    camera = _camera(draw)
    leds = [_led(draw) for _ in range(draw.integer("leds"))]
    return {
        "name": NAME.format(index),
        "description": f"random sensor model {index} (anytouch_policy.sim.sensor_family)",
        "slot": "universal",
        "camera": camera,
        "optics": {"ambient": draw.rgb("ambient"), "leds": leds, "vignette": draw("vignette"),
                   "slope_gain": draw.log("slope_gain", 1), "press_tint": draw.rgb("press_tint")},
        "gel": {"shear_px_per_n": draw("shear_px_per_n", 2), "shear_far": draw("shear_far"),
                "twist_deg_per_nm": draw("twist_deg_per_nm", 2), "contact_half_width": draw("contact_half_width"),
                "contact_depth": draw.log("contact_depth"), "texture_amp": draw("texture_amp", 2),
                "texture_grain_px": draw("texture_grain_px", 2), "texture_per_g": draw("texture_per_g", 2),
                "texture_tint": draw.rgb("texture_tint", 2), "impact_jitter_px_per_g_s": draw("impact_jitter")},
        "markers": _markers(draw, camera),
        "variation": VARIATION,
    }


def _drawn(count: int, seed: int) -> list[tuple[dict, SensorModel]]:
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    children = np.random.SeedSequence(seed).spawn(count)  # model n has its own stream: the same for any count
    out = []
    for i, child in enumerate(children):
        fields = random_sensor_fields(np.random.default_rng(child), i)
        out.append((fields, sensor_model_from_dict(fields, name=fields["name"],
                                                   where=f"random sensor model {i} of seed {seed}")))
    return out


def random_sensor_models(count: int, seed: int) -> list[SensorModel]:
    """`count` models drawn from one seed; model n is the same for any count."""
    return [model for _, model in _drawn(count, seed)]


def write_random_sensor_models(out: Path | str, *, count: int, seed: int) -> list[Path]:
    """One model file per drawn model in `out` (new or empty), each readable by `--sensor out/random_000.yaml`."""
    out = check_output_dir(out, None)
    make_dir(out)
    paths = []
    for fields, model in _drawn(count, seed):
        path = out / f"{model.name}.yaml"
        path.write_text(f"# drawn by `anytouch sim sensors --count {count} --seed {seed}`\n"
                        + yaml.safe_dump(fields, sort_keys=False))
        paths.append(path)
    return paths
