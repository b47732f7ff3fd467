"""Touches that are not the pour: an object (sim/heightmap.py shapes) pressed into the gel, held, slid, turned,
pressed harder or softer and let go, on the sim clock; rendered by any sensor model through its heightmap path.

A `TouchPlan` is drawn from a seed (`draw_touch`): the object, where and how it lands, and a few key poses (time,
position on the gel, in-plane angle, depth, and what the segment up to it is: rest, press, hold, slide, rotate,
repress, release), eased between keys. `simulate` runs it at the physics step and gives the state at the steps asked:
- the normal force follows the depth through a Winkler gel (`heightmap.ForceTable`);
- the gel sticks to the object: its displacement follows the object's motion up to the friction limit
  mu * normal / TANGENTIAL_N_PER_MM, beyond which the object slides over it (the surplus adds to `slip_mm`); the same
  for turning, up to TWIST_SLIP_DEG * mu of stuck rotation. The tangential force is the stuck displacement times
  TANGENTIAL_N_PER_MM; the torque is the friction torque times the stuck fraction of the rotation.
`render_touch` draws that state in one sensor: the object where it is on the gel (mm -> px by the model's
`camera.px_per_mm`, turned by the gel's mount angle), the gel layer displaced by the tangential force times the
sensor's own shear compliance (`gel.shear_px_per_n`, its unit and episode draws) and turned by the stuck rotation,
the micro-texture sliding with the slip.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from anytouch_policy.sim.heightmap import (
    Corner,
    Cylinder,
    ForceTable,
    Grating,
    Knurl,
    Ridge,
    Shape,
    Sphere,
    indentation_px,
)
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_params import Finger

#: Physics step of the touch scenarios (the rig's), ns.
STEP_NS = 5_000_000
#: Tangential stiffness of the reference gel (N per mm of stuck displacement; about the GelSight Mini's gel).
TANGENTIAL_N_PER_MM = 1.2
#: Stuck rotation at the friction limit, per unit friction coefficient (deg).
TWIST_SLIP_DEG = 6.0
#: How far from the gel's centre an object may be (mm): every shipped model sees it.
FIELD_MM = 4.0

#: Shapes a touch draws (equally often), and the depth range each is pressed to (mm).
TOUCH_KINDS = ("sphere", "cylinder", "ridge", "grating", "knurl", "corner")
DEPTH_MM = {"sphere": (0.1, 0.6), "cylinder": (0.08, 0.45), "ridge": (0.08, 0.45), "grating": (0.05, 0.3),
            "knurl": (0.05, 0.3), "corner": (0.3, 1.2)}


@dataclass(frozen=True)
class Key:
    """A key pose; the segment from the previous key to this one is `motion`."""

    t_s: float
    x_mm: float
    y_mm: float
    angle_deg: float
    depth_mm: float
    motion: str


@dataclass(frozen=True)
class TouchPlan:
    shape: Shape
    keys: tuple[Key, ...]
    friction: float

    @property
    def duration_s(self) -> float:
        return self.keys[-1].t_s

    def describe(self) -> dict:
        """The plan as JSON-ready values (scenarios.jsonl)."""
        return {"kind": "touch", "object": self.shape.name, "contact": self.shape.kind,
                "shape": dataclasses.asdict(self.shape), "friction": self.friction, "duration_s": self.duration_s,
                "keys": [[k.t_s, k.x_mm, k.y_mm, k.angle_deg, k.depth_mm, k.motion] for k in self.keys]}


@dataclass(frozen=True)
class TouchState:
    """The touch at one physics step."""

    t_ns: int
    x_mm: float  # the object's origin on the gel (mm from the gel's centre; x right, y down in the image)
    y_mm: float
    angle_deg: float  # the object's in-plane angle
    depth_mm: float  # indentation (0: not touching)
    normal_n: float
    shear_x_n: float  # tangential force the object puts on the gel
    shear_y_n: float
    twist_deg: float  # stuck rotation of the gel under the object
    torque_nmm: float
    slip_mm: float  # how far the object has slid over the gel since the start
    speed_mm_s: float
    motion: str
    slipping: bool  # the object slid or turned over the gel in the last step


def _shape(kind: str, rng: np.random.Generator) -> Shape:
    u = rng.uniform
    if kind == "sphere":
        return Sphere(radius_mm=float(u(2.0, 8.0)))
    if kind == "cylinder":
        return Cylinder(radius_mm=float(u(1.5, 8.0)), length_mm=float(u(6.0, 30.0)))
    if kind == "ridge":
        return Ridge(angle_deg=float(u(60.0, 150.0)), tip_mm=float(u(0.1, 0.8)), length_mm=float(u(6.0, 30.0)))
    if kind == "grating":
        return Grating(period_mm=float(u(0.4, 1.6)), amplitude_mm=float(u(0.03, 0.12)), side_mm=float(u(5.0, 14.0)))
    if kind == "knurl":
        return Knurl(period_mm=float(u(0.5, 1.6)), amplitude_mm=float(u(0.04, 0.12)), side_mm=float(u(5.0, 14.0)))
    return Corner(side_mm=float(u(3.0, 8.0)))


def _inside(x: float, y: float) -> tuple[float, float]:
    """Reflect a position back into the field."""
    def fold(v: float) -> float:
        while abs(v) > FIELD_MM:
            v = math.copysign(2.0 * FIELD_MM - abs(v), v)
        return v
    return fold(x), fold(y)


def draw_touch(rng: np.random.Generator) -> TouchPlan:
    """A touch: rest, press, hold, two to four of slide / rotate / repress (each maybe held), release, rest."""
    u = rng.uniform
    kind = TOUCH_KINDS[int(rng.integers(len(TOUCH_KINDS)))]
    shape = _shape(kind, rng)
    low, high = DEPTH_MM[kind]
    depth = float(u(low, high))
    x, y = (float(v) for v in u(-2.5, 2.5, 2))
    angle = float(u(0.0, 180.0))
    t = 0.0
    keys = [Key(t, x, y, angle, 0.0, "rest")]

    def add(dt: float, motion: str) -> None:
        nonlocal t
        t += max(dt, 0.05)
        keys.append(Key(round(t, 3), x, y, angle, depth, motion))

    t += float(u(0.0, 0.4))
    keys.append(Key(round(t, 3), x, y, angle, 0.0, "rest"))
    add(float(u(0.2, 1.0)), "press")
    add(float(u(0.2, 1.2)), "hold")
    for _ in range(int(rng.integers(2, 5))):
        action = ("slide", "slide", "rotate", "repress")[int(rng.integers(4))]
        if action == "slide":
            heading = float(u(0.0, 2.0 * math.pi))
            distance, speed = float(u(0.5, 5.0)), float(u(1.0, 20.0))
            x, y = _inside(x + distance * math.cos(heading), y + distance * math.sin(heading))
            add(distance / speed, "slide")
        elif action == "rotate":
            turn = float(u(5.0, 60.0)) * (1.0 if rng.random() < 0.5 else -1.0)
            angle += turn
            add(abs(turn) / float(u(15.0, 120.0)), "rotate")
        else:
            depth = float(np.clip(depth * u(0.4, 1.6), low, high))
            add(float(u(0.2, 1.0)), "repress")
        if rng.random() < 0.6:
            add(float(u(0.05, 0.8)), "hold")
    depth = 0.0
    add(float(u(0.15, 0.8)), "release")
    add(float(u(0.05, 0.5)), "rest")
    return TouchPlan(shape=shape, keys=tuple(keys), friction=float(u(0.3, 1.2)))


def _poses(plan: TouchPlan, times_s: np.ndarray) -> tuple[np.ndarray, ...]:
    """x, y, angle, depth, speed and the segment index at each time (smoothstep between keys)."""
    t_keys = np.array([k.t_s for k in plan.keys])
    values = np.array([[k.x_mm, k.y_mm, k.angle_deg, k.depth_mm] for k in plan.keys])
    seg = np.clip(np.searchsorted(t_keys, times_s, side="right"), 1, len(t_keys) - 1)
    t0, t1 = t_keys[seg - 1], t_keys[seg]
    span = np.maximum(t1 - t0, 1e-9)
    s = np.clip((times_s - t0) / span, 0.0, 1.0)
    ease, rate = s * s * (3.0 - 2.0 * s), 6.0 * s * (1.0 - s) / span
    v0, v1 = values[seg - 1], values[seg]
    pose = v0 + (v1 - v0) * ease[:, None]
    speed = np.hypot(v1[:, 0] - v0[:, 0], v1[:, 1] - v0[:, 1]) * rate
    return pose[:, 0], pose[:, 1], pose[:, 2], pose[:, 3], speed, seg


def simulate(plan: TouchPlan, steps: Iterable[int]) -> dict[int, TouchState]:
    """The states at the physics steps asked for (step k is at k * STEP_NS)."""
    wanted = sorted(set(int(k) for k in steps))
    if not wanted:
        return {}
    n = wanted[-1] + 1
    times = np.arange(n) * (STEP_NS * 1e-9)
    x, y, angle, depth, speed, seg = _poses(plan, times)
    table = ForceTable(plan.shape, max(k.depth_mm for k in plan.keys) + 1e-6)
    normal = np.asarray(table.force_n(depth))
    reach = 0.6 * np.sqrt(np.asarray(table.area_mm2(depth)) / math.pi)  # lever arm of the friction torque
    mu = plan.friction
    theta_max = TWIST_SLIP_DEG * mu
    stuck = np.zeros(2)
    twist = slip = 0.0
    out: dict[int, TouchState] = {}
    want = set(wanted)
    for k in range(n):
        slid = slip
        if k:
            move = np.array([x[k] - x[k - 1], y[k] - y[k - 1]])
            turn = angle[k] - angle[k - 1]
            stuck += move
            twist += turn
            limit = mu * normal[k] / TANGENTIAL_N_PER_MM
            length = math.hypot(stuck[0], stuck[1])
            if length > limit:
                if normal[k] > 0.0:
                    slip += min(length - limit, math.hypot(move[0], move[1]))
                stuck *= limit / length
            twist_limit = theta_max if normal[k] > 0.0 else 0.0
            if abs(twist) > twist_limit:
                if normal[k] > 0.0:
                    slip += math.radians(min(abs(twist) - twist_limit, abs(turn))) * reach[k]
                twist = math.copysign(twist_limit, twist)
        if k in want:
            friction_torque = mu * normal[k] * reach[k]
            out[k] = TouchState(
                t_ns=k * STEP_NS, x_mm=float(x[k]), y_mm=float(y[k]), angle_deg=float(angle[k]),
                depth_mm=float(depth[k]), normal_n=float(normal[k]),
                shear_x_n=float(stuck[0] * TANGENTIAL_N_PER_MM), shear_y_n=float(stuck[1] * TANGENTIAL_N_PER_MM),
                twist_deg=float(twist), torque_nmm=float(friction_torque * twist / theta_max),
                slip_mm=float(slip), speed_mm_s=float(speed[k]), motion=plan.keys[int(seg[k])].motion,
                slipping=slip > slid)
    return out


def touch_truth(plan: TouchPlan, state: TouchState) -> dict:
    """Ground truth of a touch state (the fields of docs/sim.md, "Aligned multi-sensor data")."""
    return {"kind": "touch", "contact": plan.shape.kind, "object": plan.shape.name, "motion": state.motion,
            "touching": state.depth_mm > 0.0, "slipping": state.slipping,
            "load_n": state.normal_n, "normal_n": state.normal_n, "shear_x_n": state.shear_x_n,
            "shear_y_n": state.shear_y_n, "shear_n": math.hypot(state.shear_x_n, state.shear_y_n),
            "torque_nmm": state.torque_nmm, "slip_mm": state.slip_mm, "depth_mm": state.depth_mm,
            "x_mm": state.x_mm, "y_mm": state.y_mm, "angle_deg": state.angle_deg, "speed_mm_s": state.speed_mm_s}


def render_touch(renderer: TactileRenderer, shape: Shape, state: TouchState, frame_index: int) -> np.ndarray:
    """One sensor's frame of a touch state (the module docstring says what it shows)."""
    p = renderer.params
    ppm = p.model.px_per_mm
    mirror = -1.0 if p.finger == Finger.RIGHT else 1.0  # the right pad sees the world mirrored
    a = math.radians(p.mount_angle_deg)  # the gel turned as the band's mount angle turns it
    c, s = math.cos(a), math.sin(a)

    def turned(vx: float, vy: float) -> tuple[float, float]:
        vx *= mirror
        return c * vx + s * vy, c * vy - s * vx

    gain = p.unit.shear_px_per_n * p.shear_gain
    sx, sy = turned(state.shear_x_n * gain, state.shear_y_n * gain)
    px, py = turned(state.x_mm * ppm, state.y_mm * ppm)
    twist = mirror * math.radians(state.twist_deg)
    angle = mirror * math.radians(state.angle_deg) - a - twist
    centre = (0.5 * p.width + px - sx, 0.5 * p.height + py - sy)  # in the gel's rest frame: the shear moves it back
    depth = indentation_px(shape, depth_mm=state.depth_mm, centre_px=centre, angle_rad=angle, px_per_mm=ppm,
                           height=p.height, width=p.width)
    return renderer.render_heightmap(depth, frame_index, shear_px=(sx, sy), twist_rad=twist,
                                     texture_phase=renderer.slip_cycles(state.slip_mm))
