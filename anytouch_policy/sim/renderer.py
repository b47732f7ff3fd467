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
- slip (`render(..., slip_mm=...)`): a cylinder sliding in a weak grasp drags its micro-texture along; the state's
  load is then what the slipping grasp still carries.
Any other contact goes through `render_heightmap(depth_px, ...)`: an indentation map in pixels (sim/heightmap.py
draws objects into one), its slopes shaded per LED and its pressed part tinted exactly as the band's, the gel layer
(shading, markers, micro-texture) displaced by a shear and turned by a twist that are full at the contact and fall
off over the gel. `band_depth_px` gives the band itself as such a map; through render_heightmap it renders as
`render` draws it (tests/sim/test_heightmap.py).
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

from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.appearance import background, led_directions, marker_alpha
from anytouch_policy.sim.params import stream_rng
from anytouch_policy.sim.sensor_params import Finger, SensorParams
from anytouch_policy.sim.state import RigState

#: Grip force at which the contact band has its nominal width and depth (Robotiq 2F-140, force register 128).
NOMINAL_GRIP_N = 67.7
#: Contact layers kept per renderer (one per 0.1 N of grip; a few MB each): a constant grip needs one, a grip ramp more.
CONTACT_CACHE = 16
#: Textures in the micro-slip cycle, and the extra border of the camera-noise tile (random crop per frame).
TEXTURE_BANK = 12
NOISE_PAD = 48
#: Relative steepening of the contact band's leading edge per pixel of shear across the band.
SKEW_PER_PX = 0.04
#: Contact pressure shifted toward one end of the band per N mm of gravity torque (relative, at the band's ends).
PRESS_SHIFT_PER_NMM = 0.004
#: Largest pressed tint, in units of `optics.press_tint` (the band's at 1.5 x the nominal grip).
PRESS_CAP = 1.5
#: Heightmap path: the contact's shear spreads over a Gaussian of SPREAD_SIGMA nominal band half-widths (the band's
#: own falloff, exp(-(v / 2 half-width)^2), for the band's depth profile), computed at 1/SPREAD_SCALE resolution.
SPREAD_SIGMA = 1.32
SPREAD_SCALE = 4


class _Contact(NamedTuple):
    """Precomputed contact layers for one grip force: per colour plane, plus the contact mask (0..1)."""

    shade: list[np.ndarray]  # slope shading and pressed tint
    ramp: list[np.ndarray]  # shade weighted by position along the band (torque shifts pressure to one end)
    skew: list[np.ndarray]  # shade made odd across the band (shear steepens the leading edge)
    mask: np.ndarray


class TactileRenderer:
    """Renders frames of one sensor; build one per sensor per episode (the constructor precomputes the layers)."""

    def __init__(self, params: SensorParams, *, cylinder_scale: float = 1.0) -> None:
        """`cylinder_scale`: the grasped cylinder's radius relative to the rig's (the band's width grows with the
        square root of force x radius, as a Hertzian line contact's)."""
        if not (math.isfinite(cylinder_scale) and cylinder_scale > 0):
            raise ConfigError(f"cylinder_scale must be a finite number > 0, got {cylinder_scale}")
        self.params = params
        self.cylinder_scale = float(cylinder_scale)
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
        # The same for any slope (heightmap path): colour per unit slope along image x and y, shape (2, 3).
        self._slope_xy = optics.slope_gain * (gains[:, None, None] * dirs[:, :, None] * rgb[:, None, :]).sum(0)
        self._depth0 = self.gel.contact_depth * self._half_width0  # px of indentation of the nominal grip

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
            half, depth, s = self._band(f)
            bump = ((1.0 - s * s) ** 2).astype(np.float32)
            slope = depth * 2.0 * (1.0 - s * s) * (-2.0 * s) / half  # d(depth * bump)/dv
            ramp = np.clip(self._u / np.float32(0.5 * max(h, w)), -1.0, 1.0)
            press = min(f, 1.5)
            shade = [(slope * self._slope_rgb[c] + bump * press * self._press_rgb[c]).astype(np.float32)
                     for c in range(3)]
            skew = slope * np.sign(s)
            out = _Contact(shade, [(plane * ramp).astype(np.float32) for plane in shade],
                           [(skew * self._slope_rgb[c]).astype(np.float32) for c in range(3)], bump)
        if len(self._contact_cache) > CONTACT_CACHE:
            self._contact_cache.clear()
        self._contact_cache[key] = out
        return out

    def _band(self, f: float) -> tuple[float, float, np.ndarray]:
        """Half-width (px), depth (px) and the across-band coordinate s in [-1, 1] of the band at f x the nominal
        grip: the indentation is depth * (1 - s^2)^2."""
        half = self._half_width0 * math.sqrt(f * self.cylinder_scale)
        depth = self.gel.contact_depth * self._half_width0 * f  # px of indentation
        return half, depth, np.clip(self._v / np.float32(half), -1.0, 1.0)

    def band_depth_px(self, grip_force_n: float) -> np.ndarray:
        """The cylinder's band at this grip force as an indentation map (px), for `render_heightmap`."""
        f = max(grip_force_n, 0.0) / NOMINAL_GRIP_N
        if f <= 0.0:
            return np.zeros((self.params.height, self.params.width), np.float32)
        _, depth, s = self._band(f)
        return (depth * (1.0 - s * s) ** 2).astype(np.float32)

    def render(self, state: RigState, frame_index: int, *, slip_mm: float = 0.0) -> np.ndarray:
        """The frame `frame_index` of this sensor showing `state`: H x W x 3 uint8 RGB. `slip_mm`: how far the
        cylinder has slid in the grasp (its contact texture slides along; `state.load_n` is then the load the
        slipping grasp still carries)."""
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
            phase = gel.texture_per_g * max(state.mass_out_g, 0.0) + self.slip_cycles(slip_mm)
            tex = cv2.multiply(self._texture(phase), contact.mask)
            planes = [cv2.scaleAdd(tex, self._tint[c], planes[c]) for c in range(3)]

        map_x = cv2.scaleAdd(self._g, -tx, self._xs)
        map_x = cv2.scaleAdd(self._gy, rot, map_x)
        map_y = cv2.scaleAdd(self._g, -ty, self._ys)
        map_y = cv2.scaleAdd(self._gx, -rot, map_y)
        return self._compose(planes, map_x, map_y, ox, oy)

    def render_heightmap(self, depth_px: np.ndarray, frame_index: int, *, shear_px: tuple[float, float] = (0.0, 0.0),
                         twist_rad: float = 0.0, texture_phase: float = 0.0) -> np.ndarray:
        """The frame `frame_index` of this sensor with any contact: `depth_px` is the gel's indentation (H x W, px,
        >= 0, in the gel's undeformed coordinates). Its slopes are shaded per LED and its pressed part tinted as the
        band's are; the gel layer (shading, markers, micro-texture) is displaced by `shear_px` (x, y) and turned by
        `twist_rad` about the contact, fully at the contact and by `gel.shear_far` far from it; the micro-texture
        follows `texture_phase` (cycles, e.g. `slip_cycles(mm slid)`). Same background, markers and noise as
        `render` for the same frame index."""
        p = self.params
        depth = np.asarray(depth_px, np.float32)
        if depth.shape != (p.height, p.width) or not np.isfinite(depth).all() or depth.min() < 0.0:
            raise ConfigError(f"{p.name}: depth map must be a finite, non-negative {p.height} x {p.width} array, got "
                              f"shape {depth.shape}")
        rng = np.random.default_rng([p.seed, int(frame_index)])
        rng.standard_normal(3)  # render()'s shake draw: both paths crop the same noise tile for a frame index
        ox, oy = (int(v) for v in rng.integers(0, NOISE_PAD, 2))
        gx = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        gy = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        press = np.minimum(depth * np.float32(1.0 / self._depth0), np.float32(PRESS_CAP))
        planes = []
        for c in range(3):
            plane = cv2.addWeighted(gx, float(self._slope_xy[0, c]), gy, float(self._slope_xy[1, c]), 0.0)
            planes.append(cv2.scaleAdd(press, float(self._press_rgb[c]), plane))
        peak = float(depth.max())
        far = self.gel.shear_far
        if peak > 0.0:
            tex = cv2.multiply(self._texture(texture_phase), depth * np.float32(1.0 / peak))
            planes = [cv2.scaleAdd(tex, self._tint[c], planes[c]) for c in range(3)]
            g = far + (1.0 - far) * self._spread(depth)
            m = cv2.moments(depth)
            cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
        else:
            g = np.full(depth.shape, far, np.float32)
            cx, cy = 0.5 * p.width, 0.5 * p.height
        tx, ty = (float(v) for v in shear_px)
        map_x = cv2.scaleAdd(g, -tx, self._xs)
        map_x = cv2.scaleAdd(cv2.multiply(g, self._ys - np.float32(cy)), twist_rad, map_x)
        map_y = cv2.scaleAdd(g, -ty, self._ys)
        map_y = cv2.scaleAdd(cv2.multiply(g, self._xs - np.float32(cx)), -twist_rad, map_y)
        return self._compose(planes, map_x, map_y, ox, oy)

    def slip_cycles(self, slip_mm: float) -> float:
        """Micro-texture cycles for a slide of `slip_mm` over the gel: one per two grains of the texture."""
        if slip_mm == 0.0:
            return 0.0
        return slip_mm * self.params.model.px_per_mm / (2.0 * self.gel.texture_grain_px)

    def _spread(self, depth: np.ndarray) -> np.ndarray:
        """Where the contact's shear reaches (1 at the contact, falling off over the gel): the contact blurred over
        SPREAD_SIGMA nominal band half-widths, at 1/SPREAD_SCALE resolution (it is smooth), peak 1."""
        h, w = depth.shape
        small = cv2.resize(depth, (max(w // SPREAD_SCALE, 1), max(h // SPREAD_SCALE, 1)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), SPREAD_SIGMA * self._half_width0 / SPREAD_SCALE)
        small *= np.float32(1.0 / max(float(small.max()), 1e-12))
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    def _texture(self, phase: float) -> np.ndarray:
        """The micro-texture at a phase of the slip cycle (cos/sin weights keep its variance constant)."""
        gel = self.gel
        k = math.floor(phase)
        quarter = 0.5 * math.pi * (phase - k)
        w0, w1 = gel.texture_amp * math.cos(quarter), gel.texture_amp * math.sin(quarter)
        return cv2.addWeighted(self._textures[k % TEXTURE_BANK], w0, self._textures[(k + 1) % TEXTURE_BANK], w1, 0.0)

    def _compose(self, planes: list[np.ndarray], map_x: np.ndarray, map_y: np.ndarray, ox: int, oy: int) -> np.ndarray:
        """Warp the gel layer (shading planes + marker coverage) by the maps, light it and add the camera noise."""
        p = self.params
        layer = cv2.merge([*planes, self._alpha_plane])
        warped = cv2.split(cv2.remap(layer, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        dark = cv2.addWeighted(warped[3], -self._marker_darkness, warped[3], 0.0, 1.0)
        out = []
        for c in range(3):
            plane = cv2.multiply(cv2.add(self._bg_planes[c], warped[c]), dark)
            out.append(cv2.add(plane, self._noise_planes[c][oy:oy + p.height, ox:ox + p.width]))
        image = cv2.merge(out)
        np.clip(image, 0.0, 255.0, out=image)
        return image.astype(np.uint8)
