"""Beads in a tilted cylinder: critical tilt, outflow, time of flight and the scale, in whole milligrams.

Model (a 2-D cross-section of the cylinder, documented in docs/sim.md):
- The fill height h follows from the mass, the bulk density and the cylinder's inner radius.
- Beads hold a surface up to the angle of repose; beyond it they avalanche, so relative to the cylinder the surface
  leans by phi = tilt - repose. It reaches the lip (height H) when tan(phi) = 2 (H - h) / W while the surface still
  spans the bottom (h >= H/2), else when tan(phi) = H^2 / (2 W h) (the beads form a wedge in the lip-side corner);
  W = 2 R. The critical tilt is repose + phi at that point: it rises as the cylinder empties.
- The stream does not answer the tilt at once: its driving excess e follows (tilt - critical) with a first-order lag
  (stream_lag_s, the avalanche layer's inertia), so the outflow depends on the recent history of the tilt, not on
  the tilt alone. The outflow is k * max(e, 0)^p g/s, times a log-normal fluctuation with a short correlation time
  (granular flow is intermittent); it is exactly zero once e falls below zero after a retract. Beads leaving the
  lip land on the scale fall_time_s later.
Masses are kept as integers in milligrams with the fractional outflow carried over, so
left + in flight + on scale equals the initial mass exactly at every step.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from anytouch_policy.sim.params import PhysicsParams
from anytouch_policy.sim.state import GRAVITY_M_S2


def fill_height_mm(mass_g: float, physics: PhysicsParams) -> float:
    """Height of the bead column in the upright cylinder."""
    return mass_g * 1000.0 / (physics.bulk_density_g_cm3 * math.pi * physics.cylinder_radius_mm**2)


def critical_tilt_deg(mass_g: float, physics: PhysicsParams) -> float:
    """Tilt from upright at which beads start to run over the lip, for `mass_g` beads in the cylinder."""
    h = fill_height_mm(mass_g, physics)
    height, width = physics.cylinder_height_mm, 2.0 * physics.cylinder_radius_mm
    if h >= height:
        phi = 0.0
    elif h <= 0.0:
        phi = 90.0
    elif h >= height / 2:
        phi = math.degrees(math.atan(2.0 * (height - h) / width))
    else:
        phi = math.degrees(math.atan(height * height / (2.0 * width * h)))
    return physics.repose_angle_deg + phi


def bead_centroid_mm(mass_g: float, tilt_deg: float, physics: PhysicsParams) -> tuple[float, float]:
    """Centroid of the beads in the cylinder frame: (along the axis from the bottom, across it toward the lip side)."""
    h = fill_height_mm(mass_g, physics)
    if h <= 0.0:
        return 0.0, 0.0
    width = 2.0 * physics.cylinder_radius_mm
    phi = math.radians(min(max(tilt_deg - physics.repose_angle_deg, 0.0), 89.0))
    t = math.tan(phi)
    low, high = h - 0.5 * width * t, h + 0.5 * width * t
    if low >= 0.0:  # trapezoid spanning the bottom
        along = (low * low + low * high + high * high) / (3.0 * (low + high))
        across = width * width * t / (12.0 * h)  # shift of the centroid toward the lower (lip-side) wall
        return along, across
    leg = math.sqrt(2.0 * width * h / t)  # wedge in the corner: legs `leg` on the bottom, leg * t on the wall
    return leg * t / 3.0, 0.5 * width - leg / 3.0


def load_and_torque(mass_g: float, tilt_deg: float, *, tare_g: float, grasp_height_mm: float,
                    physics: PhysicsParams) -> tuple[float, float]:
    """Weight carried by the grasp (N) and its gravity torque about the grasp point (N mm, about the tilt axis)."""
    along, across = bead_centroid_mm(mass_g, tilt_deg, physics)
    tare_along = 0.45 * physics.cylinder_height_mm  # open tube: centroid a little below mid-height
    s, c = math.sin(math.radians(tilt_deg)), math.cos(math.radians(tilt_deg))
    g = GRAVITY_M_S2 / 1000.0  # N per g
    moment = mass_g * ((along - grasp_height_mm) * s + across * c) + tare_g * (tare_along - grasp_height_mm) * s
    return (mass_g + tare_g) * g, moment * g


class BeadFlow:
    """Integer-milligram bookkeeping of the beads: in the cylinder, in flight, on the scale."""

    def __init__(self, initial_g: float, physics: PhysicsParams, rng: np.random.Generator) -> None:
        self.physics = physics
        self.initial_mg = round(initial_g * 1000)
        self.left_mg = self.initial_mg
        self.on_scale_mg = 0
        self.in_flight_mg = 0
        self._flight: deque[tuple[int, int]] = deque()  # (landing time ns, mg), in landing order
        self._carry_mg = 0.0
        self._rng = rng
        self._z = float(rng.standard_normal())  # fluctuation state, stationary N(0, 1)
        self._decay = math.exp(-physics.dt_s / physics.flow_noise_tau_s)
        self._kick = math.sqrt(1.0 - self._decay**2)
        self._fall_ns = round(physics.fall_time_s * 1e9)
        self._lag = 1.0 - math.exp(-physics.dt_s / physics.stream_lag_s) if physics.stream_lag_s > 0 else 1.0
        self.excess_deg: float | None = None  # the stream's lagged excess; set on the first step
        self.last_out_mg = 0

    @property
    def left_g(self) -> float:
        return self.left_mg / 1000.0

    def critical_tilt_deg(self) -> float:
        return critical_tilt_deg(self.left_g, self.physics)

    def rate_g_s(self) -> float:
        """Mean outflow for the stream's current excess (without the fluctuation)."""
        excess = self.excess_deg
        if excess is None or excess <= 0.0 or self.left_mg == 0:
            return 0.0
        return self.physics.flow_coeff_g_s * excess**self.physics.flow_exponent

    def step(self, t_ns: int, tilt_deg: float) -> int:
        """Advance one physics step ending at `t_ns` with the cylinder at `tilt_deg`; returns the mg that left."""
        p = self.physics
        self._z = self._decay * self._z + self._kick * float(self._rng.standard_normal())
        drive = tilt_deg - self.critical_tilt_deg()
        if self.excess_deg is None:
            self.excess_deg = drive  # the episode starts at rest at this tilt
        self.excess_deg += self._lag * (drive - self.excess_deg)
        rate = self.rate_g_s()
        out = 0
        if rate > 0.0:
            rate *= math.exp(p.flow_noise * self._z - 0.5 * p.flow_noise**2)
            amount = self._carry_mg + rate * p.dt_s * 1000.0
            out = min(int(amount), self.left_mg)
            self._carry_mg = amount - int(amount) if out < self.left_mg else 0.0
        else:
            self._carry_mg = 0.0
        if out:
            self.left_mg -= out
            self.in_flight_mg += out
            self._flight.append((t_ns + self._fall_ns, out))
        while self._flight and self._flight[0][0] <= t_ns:
            _, mg = self._flight.popleft()
            self.in_flight_mg -= mg
            self.on_scale_mg += mg
        self.last_out_mg = out
        return out
