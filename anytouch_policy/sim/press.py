"""A ball pressed into a simulated sensor's gel, rendered through the sensor model's optics: what the model shows for
the real calibration presses it is compared with (`anytouch bench appearance`, taxim's ball presses).

The rig's renderer (sim/renderer.py) draws the cylinder's contact band; this draws an indentation heightmap with the
same optics: the rest image (sim/appearance.py), each LED brightening the slopes that face it in its own colour
(`optics.slope_gain`), the pressed patch tinted (`optics.press_tint`), markers darkening and camera noise added.
Slopes enter through the tilt of the surface normal, g / sqrt(1 + |g|^2): the renderer's linear slope shading for
the band's gentle slopes (under 0.1, within 0.5 %), bounded on a ball's steep rim. It is kept apart from the
renderer on purpose: `render_indentation` is the one function to swap for a general heightmap contact.
"""

from __future__ import annotations

import cv2
import numpy as np

from anytouch_policy.sim.appearance import background, led_directions, marker_alpha
from anytouch_policy.sim.sensor_params import SensorParams

#: Blur of the gel over an indenter's edge (Gaussian sigma, as a fraction of the contact radius): the elastomer
#: does not follow a sharp rim.
GEL_SMOOTHING = 0.35


def ball_indentation(height: int, width: int, *, centre_xy: tuple[float, float], contact_radius_px: float,
                     ball_radius_px: float) -> np.ndarray:
    """Indentation (px, into the gel) of a ball pressed until its contact circle has `contact_radius_px`."""
    if not 0 < contact_radius_px <= ball_radius_px:
        raise ValueError(f"a ball of radius {ball_radius_px} px cannot make a contact of radius {contact_radius_px} px")
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = (xs - np.float32(centre_xy[0])) ** 2 + (ys - np.float32(centre_xy[1])) ** 2
    rim = np.sqrt(ball_radius_px**2 - contact_radius_px**2)  # height of the contact circle above the ball's centre
    cap = np.sqrt(np.clip(ball_radius_px**2 - r2, 0.0, None)) - np.float32(rim)
    indentation = np.clip(cap, 0.0, None).astype(np.float32)
    return cv2.GaussianBlur(indentation, (0, 0), GEL_SMOOTHING * contact_radius_px)


def render_indentation(params: SensorParams, indentation: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """The frame (H x W x 3 uint8 RGB) of a sensor whose gel is indented by `indentation` (px, H x W), markers
    unmoved. Camera noise comes from `rng`: the same generator state gives the same noise, so a rest frame
    (`indentation` all zero) and a pressed one can differ by the press alone."""
    model, h, w = params.model, params.height, params.width
    optics = model.optics
    gains = np.array(params.unit.led_gain)[:, None]
    rgb = np.array([led.rgb for led in optics.leds], np.float64)
    rgb /= np.linalg.norm(rgb, axis=1, keepdims=True)
    # Colour of a unit normal tilt along x and y: each LED adds its colour as the slope faces it.
    tilt_rgb = optics.slope_gain * led_directions(optics, h, w).T @ (gains * rgb)  # 2 x 3
    gy, gx = np.gradient(indentation.astype(np.float64))
    norm = np.sqrt(1.0 + gx * gx + gy * gy)
    pressed = indentation / max(float(indentation.max()), 1e-6)
    layer = ((gx / norm)[..., None] * tilt_rgb[0] + (gy / norm)[..., None] * tilt_rgb[1]
             + pressed[..., None] * np.array(optics.press_tint))
    image = background(optics, h, w, params.unit.led_gain) * np.float32(params.illum_gain) + layer
    alpha = marker_alpha(model.markers, h, w, unit_seed=params.unit_seed)
    if alpha is not None:
        image *= (1.0 - model.markers.darkness * alpha)[..., None]
    image += params.unit.noise_sigma * rng.standard_normal((h, w, 3))
    return np.clip(image, 0.0, 255.0).astype(np.uint8)  # truncated, as the renderer's frames
