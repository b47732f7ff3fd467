"""How a simulated sensor looks at rest, from its model's optics and markers: LED illumination over the gel's own
tint, vignetting, and the printed marker dots.

Each LED also shades slopes of the pressed gel in its own colour (a slope facing the LED brightens in that colour),
which is what makes contact edges colourful in real visuo-tactile images (the renderer uses `led_directions`).
"""

from __future__ import annotations

import cv2
import numpy as np

from anytouch_policy.sim.params import stream_rng
from anytouch_policy.sim.sensor_model import Markers, Optics

#: Brightness of an LED at its own position, relative to its `rgb`.
LED_PEAK = 1.6
#: Blur of the printed dots' edges (Gaussian sigma, px).
MARKER_EDGE_PX = 0.6


def led_directions(optics: Optics, height: int, width: int) -> np.ndarray:
    """Unit vectors (x, y) from each LED toward the image centre, one row per LED."""
    dirs = np.array([[0.5 - led.x, (0.5 - led.y) * height / width] for led in optics.leds], dtype=np.float64)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def background(optics: Optics, height: int, width: int, led_gain: tuple[float, ...]) -> np.ndarray:
    """The gel at rest, float32 H x W x 3 in grey levels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    diag = float(np.hypot(height, width))
    img = np.empty((height, width, 3), np.float32)
    img[:] = np.array(optics.ambient, np.float32)
    for led, gain in zip(optics.leds, led_gain, strict=True):
        d = np.hypot(xs - led.x * width, ys - led.y * height) / (led.reach * diag)
        img += gain * np.array(led.rgb, np.float32) * (1.0 / (1.0 + d * d))[..., None] * LED_PEAK
    r = np.hypot((xs - width / 2) / (width / 2), (ys - height / 2) / (height / 2)) / np.sqrt(2.0)
    img *= (1.0 - optics.vignette * r**2)[..., None]
    return img


def marker_alpha(markers: Markers | None, height: int, width: int, *, unit_seed: int) -> np.ndarray | None:
    """Anti-aliased coverage (0..1) of the printed marker dots, H x W float32; None for a model without markers.
    The grid's irregularity (`markers.jitter_px`) follows the unit seed."""
    if markers is None:
        return None
    rng = stream_rng(unit_seed, 7)
    rows, cols, jitter = markers.rows, markers.cols, markers.jitter_px
    sx, sy = width / cols, height / rows
    alpha = np.zeros((height, width), np.float32)
    r = markers.radius_px
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centres = [((c + 0.5) * sx + jitter * rng.standard_normal(), (k + 0.5) * sy + jitter * rng.standard_normal())
               for k in range(rows) for c in range(cols)]
    for cx, cy in centres:
        x0, x1 = max(int(cx - r - 2), 0), min(int(cx + r + 3), width)
        y0, y1 = max(int(cy - r - 2), 0), min(int(cy + r + 3), height)
        dist = np.hypot(xs[y0:y1, x0:x1] - cx, ys[y0:y1, x0:x1] - cy)
        np.maximum(alpha[y0:y1, x0:x1], np.clip(r + 0.5 - dist, 0.0, 1.0), out=alpha[y0:y1, x0:x1])
    return cv2.GaussianBlur(alpha, (0, 0), MARKER_EDGE_PX)
