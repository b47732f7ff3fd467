"""How each simulated sensor looks at rest: LED illumination, gel tint, vignetting, printed markers.

GelSight Mini: a bright, slightly blue-grey gel lit by red, green and blue LEDs from three sides, with a grid of black
dot markers printed on the gel (they follow the gel under shear). DIGIT: a darker gel with the characteristic strong
RGB tint of its three side LEDs (red and green from the lower sides, blue from the bottom), portrait, no markers.
Each LED also shades slopes of the pressed gel in its own colour (a slope facing the LED brightens in that colour),
which is what makes contact edges colourful in real visuo-tactile images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.params import stream_rng


@dataclass(frozen=True)
class Led:
    """One LED: where it sits (fractions of width, height; may lie outside the image), its colour, its reach."""

    x: float
    y: float
    rgb: tuple[float, float, float]
    reach: float  # falloff length as a fraction of the image diagonal


@dataclass(frozen=True)
class Look:
    ambient: tuple[float, float, float]
    leds: tuple[Led, ...]
    vignette: float  # darkening at the corners, 0..1
    markers: tuple[int, int] | None  # rows, cols of printed dots
    marker_radius_px: float
    marker_darkness: float
    slope_gain: float  # shading per unit slope of the pressed gel
    press_tint: tuple[float, float, float]  # colour change where the gel is pressed flat on the object


LOOKS: dict[SensorType, Look] = {
    SensorType.GELSIGHT_MINI: Look(
        ambient=(118.0, 128.0, 138.0),
        leds=(Led(0.5, -0.2, (62.0, 18.0, 16.0), 0.5), Led(-0.15, 1.1, (14.0, 55.0, 20.0), 0.55),
              Led(1.15, 1.1, (10.0, 20.0, 60.0), 0.55)),
        vignette=0.22, markers=(7, 9), marker_radius_px=3.2, marker_darkness=0.82,
        slope_gain=900.0, press_tint=(-10.0, -6.0, -2.0),
    ),
    SensorType.DIGIT: Look(
        ambient=(30.0, 28.0, 40.0),
        leds=(Led(-0.15, 0.8, (130.0, 30.0, 30.0), 0.42), Led(1.15, 0.8, (22.0, 120.0, 35.0), 0.42),
              Led(0.5, 1.15, (25.0, 40.0, 140.0), 0.38)),
        vignette=0.45, markers=None, marker_radius_px=0.0, marker_darkness=0.0,
        slope_gain=900.0, press_tint=(12.0, 10.0, 16.0),
    ),
}


def led_directions(look: Look, height: int, width: int) -> np.ndarray:
    """Unit vectors (x, y) from each LED toward the image centre, one row per LED."""
    dirs = np.array([[0.5 - led.x, (0.5 - led.y) * height / width] for led in look.leds], dtype=np.float64)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def background(look: Look, height: int, width: int, led_gain: tuple[float, float, float]) -> np.ndarray:
    """The gel at rest, float32 H x W x 3 in grey levels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    diag = float(np.hypot(height, width))
    img = np.empty((height, width, 3), np.float32)
    img[:] = np.array(look.ambient, np.float32)
    for led, gain in zip(look.leds, led_gain, strict=True):
        d = np.hypot(xs - led.x * width, ys - led.y * height) / (led.reach * diag)
        img += gain * np.array(led.rgb, np.float32) * (1.0 / (1.0 + d * d))[..., None] * 1.6
    r = np.hypot((xs - width / 2) / (width / 2), (ys - height / 2) / (height / 2)) / np.sqrt(2.0)
    img *= (1.0 - look.vignette * r**2)[..., None]
    return img


def marker_alpha(look: Look, height: int, width: int, *, jitter_px: float, unit_seed: int) -> np.ndarray | None:
    """Anti-aliased coverage (0..1) of the printed marker dots, H x W float32; None for sensors without markers."""
    if look.markers is None:
        return None
    rows, cols = look.markers
    rng = stream_rng(unit_seed, 7)
    sx, sy = width / cols, height / rows
    alpha = np.zeros((height, width), np.float32)
    r = look.marker_radius_px
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centres = [((c + 0.5) * sx + jitter_px * rng.standard_normal(), (k + 0.5) * sy + jitter_px * rng.standard_normal())
               for k in range(rows) for c in range(cols)]
    for cx, cy in centres:
        x0, x1 = max(int(cx - r - 2), 0), min(int(cx + r + 3), width)
        y0, y1 = max(int(cy - r - 2), 0), min(int(cy + r + 3), height)
        dist = np.hypot(xs[y0:y1, x0:x1] - cx, ys[y0:y1, x0:x1] - cy)
        np.maximum(alpha[y0:y1, x0:x1], np.clip(r + 0.5 - dist, 0.0, 1.0), out=alpha[y0:y1, x0:x1])
    return cv2.GaussianBlur(alpha, (0, 0), 0.6)
