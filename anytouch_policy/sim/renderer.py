"""Tactile image of one simulated sensor from a rig state: `TactileRenderer(params).render(state, frame_index)`.

What the image shows (docs/sim.md has the details):
- contact pressure: the cylinder presses a band across the gel whose width and depth grow with the grip force; the
  band's slopes are shaded in the LED colours, its flat middle tinted;
- shear: the gel (markers, contact band, texture) is displaced along the weight's direction in the gel plane, which
  turns with the tilt, by an amount proportional to the load, and twisted by the gravity torque about the grasp;
  the torque also shifts contact pressure toward one end of the band;
- flow: beads leaving the cylinder shake the grasp (a random micro-displacement per frame with an rms proportional to
  the outflow) and make the contact's micro-texture slip (its pattern advances with the mass poured). Each frame is a
  random draw of the same pattern, so only the change between consecutive frames reveals the flow.
The render is a pure function of (params, frame index, state): per-frame randomness comes from a generator seeded
with (params.seed, frame index), everything else is precomputed once per renderer. Cost per frame: one remap and a
few array blends. Every number that tells one sensor from another comes from its model file (sim/sensor_model.py):
optics and markers through sim/appearance.py, the gel's shear, twist, contact and texture here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from anytouch_policy.sim.appearance import background, led_directions, marker_alpha
from anytouch_policy.sim.params import stream_rng
from anytouch_policy.sim.sensor_params import Finger, SensorParams
from anytouch_policy.sim.state import RigState

#: Grip force at which the contact band has its nominal width and depth (Robotiq 2F-140, force register 128).
NOMINAL_GRIP_N = 67.7
#: Textures in the micro-slip cycle, and the extra border of the camera-noise tile (random crop per frame).
TEXTURE_BANK = 12
NOISE_PAD = 48
#: Relative steepening of the contact band's leading edge per pixel of shear across the band.
SKEW_PER_PX = 0.04
#: Contact pressure shifted toward one end of the band per N mm of gravity torque (relative, at the band's ends).
PRESS_SHIFT_PER_NMM = 0.004


class _Contact(NamedTuple):
    """Precomputed contact layers for one grip force: per colour plane, plus the contact mask (0..1)."""

    shade: list[np.ndarray]  # slope shading and pressed tint
    ramp: list[np.ndarray]  # shade weighted by position along the band (torque shifts pressure to one end)
    skew: list[np.ndarray]  # shade made odd across the band (shear steepens the leading edge)
    mask: np.ndarray


class TactileRenderer:
    """Renders frames of one sensor; build one per sensor per episode (the constructor precomputes the layers)."""

    def __init__(self, params: SensorParams) -> None:
        self.params = params
        model = params.model
        optics, self.gel = model.optics, model.gel
        h, w = params.height, params.width
        bg = background(optics, h, w, params.unit.led_gain) * np.float32(params.illum_gain)
        self._bg_planes = [np.ascontiguousarray(bg[..., c]) for c in range(3)]
        alpha = marker_alpha(model.markers, h, w, unit_seed=params.unit_seed)
        self._alpha_plane = np.zeros((h, w), np.float32) if alpha is None else alpha
        self._marker_darkness = 0.0 if model.markers is None else model.markers.darkness

        a = math.radians(params.mount_angle_deg)
        self._band_dir = np.array([math.sin(a), math.cos(a)])  # along the cylinder axis, image (x, y), y down
        self._band_normal = np.array([math.cos(a), -math.sin(a)])
        mirror = -1.0 if params.finger == Finger.RIGHT else 1.0
        self._mirror = mirror
        self._cx = w / 2 + mirror * params.contact_offset_px
        self._cy = h / 2
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self._xs, self._ys = xs, ys
        dx, dy = xs - np.float32(self._cx), ys - np.float32(self._cy)
        self._v = (dx * np.float32(self._band_normal[0]) + dy * np.float32(self._band_normal[1])).astype(np.float32)
        self._u = (dx * np.float32(self._band_dir[0]) + dy * np.float32(self._band_dir[1])).astype(np.float32)
        self._half_width0 = self.gel.contact_half_width * min(h, w) * params.press_scale
        # Shear falls off away from the contact: the whole gel moves a little (shear_far), the contact band most.
        far = self.gel.shear_far
        g = far + (1.0 - far) * np.exp(-(self._v / np.float32(2.0 * self._half_width0)) ** 2)
        self._g = g.astype(np.float32)
        self._gx = (self._g * dx).astype(np.float32)
        self._gy = (self._g * dy).astype(np.float32)

        dirs = led_directions(optics, h, w)
        gains = np.array(params.unit.led_gain)
        rgb = np.array([led.rgb for led in optics.leds])
        rgb = rgb / np.linalg.norm(rgb, axis=1, keepdims=True)
        # Colour of a unit slope across the band: each LED adds its colour in proportion to how the slope faces it.
        self._slope_rgb = (optics.slope_gain * (gains[:, None] * rgb * (dirs @ self._band_normal)[:, None]).sum(0))
        self._press_rgb = np.array(optics.press_tint, np.float64)

        unit_rng = stream_rng(params.unit_seed, 11)
        noise = params.unit.noise_sigma * unit_rng.standard_normal((3, h + NOISE_PAD, w + NOISE_PAD))
        self._noise_planes = [plane.astype(np.float32) for plane in noise]
        bank = unit_rng.standard_normal((TEXTURE_BANK, h, w)).astype(np.float32)
        for k in range(TEXTURE_BANK):
            bank[k] = cv2.GaussianBlur(bank[k], (0, 0), self.gel.texture_grain_px)
            bank[k] /= bank[k].std()
        self._textures = bank
        self._tint = self.gel.texture_tint  # light scattered in the gel colours the texture
        self._contact_cache: dict[int, _Contact] = {}

    def _contact(self, grip_force_n: float) -> _Contact:
        """The contact layers for this grip force (cached)."""
        key = round(grip_force_n * 10)  # cache per 0.1 N
        cached = self._contact_cache.get(key)
        if cached is not None:
            return cached
        f = max(key / 10.0, 0.0) / NOMINAL_GRIP_N
        h, w = self.params.height, self.params.width
        if f <= 0.0:
            zero = np.zeros((h, w), np.float32)
            out = _Contact([zero] * 3, [zero] * 3, [zero] * 3, zero)
        else:
            half = self._half_width0 * math.sqrt(f)
            depth = self.gel.contact_depth * self._half_width0 * f  # px of indentation
            s = np.clip(self._v / np.float32(half), -1.0, 1.0)
            bump = ((1.0 - s * s) ** 2).astype(np.float32)
            slope = depth * 2.0 * (1.0 - s * s) * (-2.0 * s) / half  # d(depth * bump)/dv
            ramp = np.clip(self._u / np.float32(0.5 * max(h, w)), -1.0, 1.0)
            press = min(f, 1.5)
            shade = [(slope * self._slope_rgb[c] + bump * press * self._press_rgb[c]).astype(np.float32)
                     for c in range(3)]
            skew = slope * np.sign(s)
            out = _Contact(shade, [(plane * ramp).astype(np.float32) for plane in shade],
                           [(skew * self._slope_rgb[c]).astype(np.float32) for c in range(3)], bump)
        if len(self._contact_cache) > 64:
            self._contact_cache.clear()
        self._contact_cache[key] = out
        return out

    def render(self, state: RigState, frame_index: int) -> np.ndarray:
        """The frame `frame_index` of this sensor showing `state`: H x W x 3 uint8 RGB."""
        p, unit, gel = self.params, self.params.unit, self.gel
        rng = np.random.default_rng([p.seed, int(frame_index)])
        jitter = rng.standard_normal(3)
        ox, oy = (int(v) for v in rng.integers(0, NOISE_PAD, 2))
        contact = self._contact(state.grip_force_n)
        held = state.grip_force_n > 0.0

        # Shear: the weight per finger along gravity's direction in the gel plane, and the torque's twist.
        load = 0.5 * state.load_n if held else 0.0
        ang = math.radians(state.tilt_deg + p.mount_angle_deg)
        gain = unit.shear_px_per_n * p.shear_gain
        tx = self._mirror * gain * load * math.sin(ang)
        ty = gain * load * math.cos(ang)
        torque_nm = 0.5 * state.torque_nmm / 1000.0 if held else 0.0
        rot = self._mirror * math.radians(unit.twist_deg_per_nm * p.shear_gain * torque_nm)
        # Flow: bead impacts shake the grasp (rms proportional to the outflow).
        shake = gel.impact_jitter_px_per_g_s * max(state.flow_g_s, 0.0) if held else 0.0
        tx += shake * jitter[0]
        ty += shake * jitter[1]
        rot += shake * jitter[2] / (0.5 * min(p.height, p.width))

        # Gel layer: contact shading, its pressure shifted along the band by the torque and its leading edge
        # steepened by the shear across the band, plus the micro-slip texture.
        tilt_press = PRESS_SHIFT_PER_NMM * state.torque_nmm if held else 0.0
        shear_across = SKEW_PER_PX * (tx * self._band_normal[0] + ty * self._band_normal[1])
        planes = [cv2.scaleAdd(contact.ramp[c], tilt_press, contact.shade[c]) for c in range(3)]
        planes = [cv2.scaleAdd(contact.skew[c], shear_across, planes[c]) for c in range(3)]
        if held:
            phase = gel.texture_per_g * max(state.mass_out_g, 0.0)
            k = math.floor(phase)
            frac = phase - k
            quarter = 0.5 * math.pi * frac  # cos/sin weights keep the texture's variance constant
            w0, w1 = gel.texture_amp * math.cos(quarter), gel.texture_amp * math.sin(quarter)
            tex = cv2.addWeighted(self._textures[k % TEXTURE_BANK], w0, self._textures[(k + 1) % TEXTURE_BANK], w1, 0.0)
            tex = cv2.multiply(tex, contact.mask)
            planes = [cv2.scaleAdd(tex, self._tint[c], planes[c]) for c in range(3)]
        layer = cv2.merge([*planes, self._alpha_plane])

        map_x = cv2.scaleAdd(self._g, -tx, self._xs)
        map_x = cv2.scaleAdd(self._gy, rot, map_x)
        map_y = cv2.scaleAdd(self._g, -ty, self._ys)
        map_y = cv2.scaleAdd(self._gx, -rot, map_y)
        warped = cv2.split(cv2.remap(layer, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))

        dark = cv2.addWeighted(warped[3], -self._marker_darkness, warped[3], 0.0, 1.0)
        out = []
        for c in range(3):
            plane = cv2.multiply(cv2.add(self._bg_planes[c], warped[c]), dark)
            out.append(cv2.add(plane, self._noise_planes[c][oy:oy + p.height, ox:ox + p.width]))
        image = cv2.merge(out)
        np.clip(image, 0.0, 255.0, out=image)
        return image.astype(np.uint8)
