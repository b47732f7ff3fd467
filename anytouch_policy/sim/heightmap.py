"""Objects pressed into the gel, as heightmaps: the indentation an object makes, in mm on the gel and in pixels of a
sensor's image, and the normal force that takes.

Each shape gives its surface's `gap_mm(x, y)` above its lowest point, in the object's own frame (mm; x along its
axis or grooves). Pressed `depth_mm` into the gel, the gel is indented by max(depth - gap, 0) wherever the object
reaches; the gel's skin rounds that off over GEL_SMOOTH_MM. `indentation_px` draws it into one sensor's image
(`TactileRenderer.render_heightmap` shades it); `ForceTable` turns a depth into the normal force of a Winkler gel
(pressure proportional to the local indentation), computed once per shape on a fixed grid, so every sensor's frame of
a state shows the same physical contact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np

#: Rounding of the indentation by the gel's skin (Gaussian sigma, mm).
GEL_SMOOTH_MM = 0.12
#: Winkler stiffness of the reference gel: contact pressure per mm of indentation (N/mm^3; E ~ 0.5 MPa over ~2 mm).
WINKLER_N_MM3 = 0.25
#: Grid of the force table (mm).
FORCE_GRID_MM = 0.05
#: "Out of reach": the gap where an object has no surface.
FAR_MM = 1.0e3
#: Rounded rim of the flat pads (radius, mm).
RIM_MM = 0.5


class Shape(Protocol):
    """An object's surface seen from the gel; a dataclass (scenarios.jsonl stores its fields)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def name(self) -> str:
        """Id of the object (kind and size), e.g. sphere_r6.0."""

    @property
    def kind(self) -> str:
        """sphere, cylinder, ridge, grating, knurl or corner."""

    def gap_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the surface above its lowest point at (x, y) of the object's frame, mm."""

    def reach_mm(self, depth_mm: float) -> float:
        """Radius around the object's origin outside which pressing `depth_mm` touches nothing."""


def _far(inside: np.ndarray, gap: np.ndarray) -> np.ndarray:
    return np.where(inside, gap, FAR_MM)


def _rim(t: np.ndarray, half: float) -> np.ndarray:
    """A flat pad's edge rounded over RIM_MM: zero inside, rising toward the edge at |t| = half."""
    over = np.maximum(np.abs(t) - (half - RIM_MM), 0.0)
    return over * over / (2.0 * RIM_MM)


@dataclass(frozen=True)
class Sphere:
    radius_mm: float
    kind = "sphere"

    @property
    def name(self) -> str:
        return f"sphere_r{self.radius_mm:.1f}"

    def gap_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r2 = x * x + y * y
        big = self.radius_mm**2
        return _far(r2 < big, self.radius_mm - np.sqrt(np.maximum(big - r2, 0.0)))

    def reach_mm(self, depth_mm: float) -> float:
        d = min(depth_mm, self.radius_mm)
        return math.sqrt(max(2.0 * self.radius_mm * d - d * d, 0.0))


@dataclass(frozen=True)
class Cylinder:
    """A cylinder lying on its side (the pressed side), axis along x, flat ends."""

    radius_mm: float
    length_mm: float
    kind = "cylinder"

    @property
    def name(self) -> str:
        return f"cylinder_r{self.radius_mm:.1f}_l{self.length_mm:.0f}"

    def gap_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        big = self.radius_mm**2
        inside = (np.abs(x) <= 0.5 * self.length_mm) & (y * y < big)
        return _far(inside, self.radius_mm - np.sqrt(np.maximum(big - y * y, 0.0)))

    def reach_mm(self, depth_mm: float) -> float:
        d = min(depth_mm, self.radius_mm)
        return math.hypot(0.5 * self.length_mm, math.sqrt(max(2.0 * self.radius_mm * d - d * d, 0.0)))


@dataclass(frozen=True)
class Ridge:
    """An edge: two flanks meeting at `angle_deg` along x, its crest rounded to `tip_mm`."""

    angle_deg: float
    tip_mm: float
    length_mm: float
    kind = "ridge"

    @property
    def name(self) -> str:
        return f"ridge_a{self.angle_deg:.0f}_t{self.tip_mm:.2f}"

    @property
    def _slope(self) -> float:
        return 1.0 / math.tan(math.radians(0.5 * self.angle_deg))

    def gap_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        s = self._slope
        c = self.tip_mm * s  # a hyperbola: flanks of slope s, crest curvature radius tip_mm
        return _far(np.abs(x) <= 0.5 * self.length_mm, s * (np.sqrt(y * y + c * c) - c))

    def reach_mm(self, depth_mm: float) -> float:
        s = self._slope
        c = self.tip_mm * s
        half_width = math.sqrt(max((depth_mm / s + c) ** 2 - c * c, 0.0))
        return math.hypot(0.5 * self.length_mm, half_width)


@dataclass(frozen=True)
class _TexturedPad:
    """A flat square pad of side `side_mm` with a periodic relief (period, depth) and rounded rims; subclasses give
    the relief."""

    period_mm: float
    amplitude_mm: float
    side_mm: float
    kind = "pad"

    @property
    def name(self) -> str:
        return f"{self.kind}_p{self.period_mm:.2f}_s{self.side_mm:.0f}"

    def relief_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gap_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        half = 0.5 * self.side_mm
        inside = (np.abs(x) <= half) & (np.abs(y) <= half)
        return _far(inside, self.relief_mm(x, y) + _rim(x, half) + _rim(y, half))

    def reach_mm(self, depth_mm: float) -> float:
        return math.sqrt(0.5) * self.side_mm


@dataclass(frozen=True)
class Grating(_TexturedPad):
    """A pad with parallel grooves across x."""

    kind = "grating"

    def relief_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 0.5 * self.amplitude_mm * (1.0 - np.cos(2.0 * math.pi * x / self.period_mm))


@dataclass(frozen=True)
class Knurl(_TexturedPad):
    """A pad with a diamond knurl: a lattice of pyramids between two crossing sets of grooves."""

    kind = "knurl"

    def relief_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = (x + y) / self.period_mm, (x - y) / self.period_mm
        tri_u, tri_v = 2.0 * np.abs(u - np.round(u)), 2.0 * np.abs(v - np.round(v))
        return self.amplitude_mm * np.maximum(tri_u, tri_v)


@dataclass(frozen=True)
class Corner:
    """A small cube pressed corner first (body diagonal normal to the gel): three faces of slope sqrt(2) and the
    three edges between them."""

    side_mm: float
    kind = "corner"

    @property
    def name(self) -> str:
        return f"corner_s{self.side_mm:.1f}"

    def gap_mm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        faces = [x * math.cos(a) + y * math.sin(a) for a in (0.5 * math.pi, 7 / 6 * math.pi, 11 / 6 * math.pi)]
        gap = math.sqrt(2.0) * np.maximum(np.maximum(faces[0], faces[1]), faces[2])
        # the cube ends where its far edges leave the corner: sqrt(2/3) side from the vertex, seen from below
        return _far(x * x + y * y <= (2.0 / 3.0) * self.side_mm**2, gap)

    def reach_mm(self, depth_mm: float) -> float:
        return min(math.sqrt(2.0) * depth_mm, math.sqrt(2.0 / 3.0) * self.side_mm)


SHAPES: dict[str, type] = {cls.kind: cls for cls in (Sphere, Cylinder, Ridge, Grating, Knurl, Corner)}


def indentation_px(shape: Shape, *, depth_mm: float, centre_px: tuple[float, float], angle_rad: float,
                   px_per_mm: float, height: int, width: int) -> np.ndarray:
    """The gel's indentation (px, H x W float32) with `shape` pressed `depth_mm` deep, its origin at `centre_px`
    (x, y) of the image and its x axis turned by `angle_rad` from the image's x toward its y (down)."""
    out = np.zeros((height, width), np.float32)
    if depth_mm <= 0.0:
        return out
    smooth = GEL_SMOOTH_MM * px_per_mm
    reach = shape.reach_mm(depth_mm) * px_per_mm + 3.0 * smooth + 2.0
    cx, cy = centre_px
    x0, x1 = max(int(cx - reach), 0), min(int(math.ceil(cx + reach)) + 1, width)
    y0, y1 = max(int(cy - reach), 0), min(int(math.ceil(cy + reach)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return out
    ys, xs = np.mgrid[y0:y1, x0:x1]
    dx, dy = (xs - cx) / px_per_mm, (ys - cy) / px_per_mm
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    gap = shape.gap_mm(c * dx + s * dy, -s * dx + c * dy)
    box: np.ndarray = (np.maximum(depth_mm - gap, 0.0) * px_per_mm).astype(np.float32)
    if smooth > 0.0:
        box = cv2.GaussianBlur(box, (0, 0), smooth, borderType=cv2.BORDER_CONSTANT)
    out[y0:y1, x0:x1] = box
    return out


class ForceTable:
    """Normal force (Winkler gel) and contact area of `shape` for any depth up to `max_depth_mm`, from the sorted
    gaps of one fixed grid: pressed d deep, the gel is indented by d - gap wherever gap < d."""

    def __init__(self, shape: Shape, max_depth_mm: float) -> None:
        reach = shape.reach_mm(max_depth_mm) + FORCE_GRID_MM
        axis = np.arange(-reach, reach + FORCE_GRID_MM, FORCE_GRID_MM)
        xs, ys = np.meshgrid(axis, axis)
        gaps = shape.gap_mm(xs, ys).ravel()
        self._gaps = np.sort(gaps[gaps < max_depth_mm])
        self._sums = np.concatenate([[0.0], np.cumsum(self._gaps)])
        self.max_depth_mm = max_depth_mm

    def force_n(self, depth_mm: float | np.ndarray) -> float | np.ndarray:
        """Normal force (N) pressed `depth_mm` deep (a number or an array of depths)."""
        d = np.clip(np.asarray(depth_mm, np.float64), 0.0, self.max_depth_mm)
        n = np.searchsorted(self._gaps, d)
        force = WINKLER_N_MM3 * (n * d - self._sums[n]) * FORCE_GRID_MM**2
        return float(force) if force.ndim == 0 else force

    def area_mm2(self, depth_mm: float | np.ndarray) -> float | np.ndarray:
        """Contact area (mm^2) pressed `depth_mm` deep."""
        d = np.clip(np.asarray(depth_mm, np.float64), 0.0, self.max_depth_mm)
        area = np.where(d > 0.0, np.searchsorted(self._gaps, d) * FORCE_GRID_MM**2, 0.0)
        return float(area) if area.ndim == 0 else area
