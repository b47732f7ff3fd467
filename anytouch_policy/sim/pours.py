"""Pours drawn widely, for aligned multi-sensor data: other cylinders, fills, tilt speeds, grip forces and
controllers than the demo's, bead flow with its stops, and slips of a grasp too weak for its load.

A `PourPlan` is drawn from a seed (`draw_pour`): the cylinder (radius, height, tare), the beads (density, repose,
flow law and its noise), the fill, where it is grasped, the start tilt, the tilt speed, a grip-force profile and the
friction of the grasp, and a controller:
- `expert`: the scripted expert (sim/expert.py) pouring to a drawn target at the drawn tilt speed;
- `script`: random pour / wait / retract runs (1-15 ticks each) that retract whenever the stream is driven harder
  than a drawn cap, and retract for the last seconds so the stream stops;
- `carry`: the cylinder held below its critical tilt, turned back and forth (no flow; slips are likely).
`simulate` runs it on the rig's physics (sim/physics.py: BeadFlow, load_and_torque) at the physics step and gives
the state at the steps asked. Slip: the grasp holds while the weight is at most 2 mu grip (static friction, two
fingers); beyond, the cylinder slides down at SLIP_MM_S_PER_N per newton of weight above the kinetic friction
(SLIP_KINETIC mu; at most SLIP_MAX_MM_S) and the fingers then carry only that friction, until the weight no longer
exceeds it. The renderer draws the band of the drawn radius (`TactileRenderer(cylinder_scale=...)`), the load the
grasp carries as shear and the slide as sliding micro-texture (`render(..., slip_mm=...)`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from anytouch_policy.actions import Action
from anytouch_policy.sim.episode import EpisodeSetup
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import PhysicsParams, RigConfig, Stream, stream_rng
from anytouch_policy.sim.physics import BeadFlow, critical_tilt_deg, load_and_torque
from anytouch_policy.sim.state import GRAVITY_M_S2, RigState

#: Physics steps per control tick (0.2 s of 5 ms steps, as the rig's).
STEPS_PER_TICK = 40
#: Outer radius of the rig's cylinder (mm): the band's width in the sensor models is for this one.
RIG_CYLINDER_RADIUS_MM = 43.0
WALL_MM = 3.0
#: Largest tilt a pour plan reaches (deg).
MAX_TILT_DEG = 135.0
#: Kinetic / static friction of the grasp, the slide speed per newton of weight above the kinetic friction, and the
#: fastest slide (mm/s).
SLIP_KINETIC = 0.8
SLIP_MM_S_PER_N = 20.0
SLIP_MAX_MM_S = 20.0
#: The expert's retract ends this far below the critical tilt (it then waits).
RETRACT_MARGIN_DEG = 5.0
#: Mean outflow reported as the flow rate: over the last tick (what a person watching the stream judges).
FLOW_WINDOW_STEPS = STEPS_PER_TICK

CONTROLLERS = ("expert", "script", "carry")


@dataclass(frozen=True)
class PourPlan:
    seed: int  # the flow fluctuation, the expert and the script draw from it
    controller: str
    physics: PhysicsParams
    initial_g: float
    tare_g: float
    grasp_height_mm: float
    start_tilt_deg: float
    rate_deg_s: float  # tilt speed of pour and retract
    target_g: float  # the expert's target (g poured)
    excess_cap_deg: float  # the script retracts when the stream is driven harder
    grip: tuple[tuple[float, float], ...]  # (t s, N per finger), linear in between, constant after the last
    friction: float  # static friction of the grasp
    duration_s: float

    @property
    def cylinder_scale(self) -> float:
        """Outer radius relative to the rig's cylinder (what the band's width scales with)."""
        return (self.physics.cylinder_radius_mm + WALL_MM) / RIG_CYLINDER_RADIUS_MM

    @property
    def name(self) -> str:
        return f"cylinder_r{self.physics.cylinder_radius_mm + WALL_MM:.0f}_h{self.physics.cylinder_height_mm:.0f}"

    def grip_n(self, t_s: float) -> float:
        times = [k[0] for k in self.grip]
        return float(np.interp(t_s, times, [k[1] for k in self.grip]))

    def describe(self) -> dict:
        """The plan as JSON-ready values (scenarios.jsonl)."""
        out = {"kind": "pour", "object": self.name, "contact": "cylinder", **asdict(self)}
        out["grip"] = [list(k) for k in self.grip]
        return out


@dataclass(frozen=True)
class PourState:
    """The pour at one physics step: what the renderer draws (`rig`, whose load_n is what the grasp carries) and
    what it does not show directly."""

    rig: RigState
    weight_n: float  # cylinder and beads
    slip_mm: float  # how far the cylinder has slid in the grasp since the start
    slipping: bool
    action: str
    flow_mean_g_s: float  # outflow over the last tick
    grasp_height_mm: float


def draw_pour(rng: np.random.Generator, seed: int) -> PourPlan:
    """One pour plan (the ranges are in the module's code, documented in docs/sim.md)."""
    u = rng.uniform
    controller = CONTROLLERS[int(rng.choice(3, p=[0.35, 0.45, 0.2]))]
    height = float(u(80.0, 150.0))
    physics = PhysicsParams(
        bulk_density_g_cm3=float(u(0.55, 0.9)), cylinder_radius_mm=float(u(25.0, 50.0)), cylinder_height_mm=height,
        repose_angle_deg=float(u(20.0, 32.0)), flow_coeff_g_s=float(u(0.8, 3.0)), flow_exponent=float(u(1.3, 1.8)),
        stream_lag_s=float(u(0.2, 0.8)), flow_noise=float(u(0.1, 0.3)), flow_noise_tau_s=float(u(0.08, 0.3)),
        fall_time_s=float(u(0.2, 0.4)))
    capacity = physics.capacity_g
    initial = float(u(max(15.0, 0.08 * capacity), 0.75 * capacity))
    tare = float(u(40.0, 250.0))
    critical = critical_tilt_deg(initial, physics)
    if controller == "carry":
        start = float(u(0.0, max(min(60.0, critical - 15.0), 1.0)))
        duration = float(u(4.0, 12.0))
    else:
        start = max(critical - float(u(0.5, 10.0)), 0.0)
        duration = float(u(12.0, 35.0) if controller == "expert" else u(8.0, 30.0))
    grip0 = float(u(15.0, 125.0))
    friction = float(u(0.5, 1.0))
    grip: list[tuple[float, float]] = [(0.0, grip0)]
    weight = (initial + tare) * GRAVITY_M_S2 / 1000.0
    draw = rng.random()
    if draw < (0.6 if controller == "carry" else 0.3):  # a weak phase: the grasp gives, the cylinder slides
        friction = float(u(0.1, 0.4))
        hold_n = weight / (2.0 * friction)
        grip0 = max(grip0, 1.3 * hold_n)
        t1 = float(u(0.5, max(duration - 3.0, 0.6)))
        down, weak, up = float(u(0.2, 1.0)), float(u(0.5, 3.0)), float(u(0.2, 1.0))
        low = hold_n * float(u(0.45, 0.9))
        grip = [(0.0, grip0), (t1, grip0), (t1 + down, low), (t1 + down + weak, low), (t1 + down + weak + up, grip0)]
    elif draw < 0.55:  # a regrip to another force
        t1 = float(u(0.5, duration))
        grip.extend([(t1, grip0), (t1 + float(u(0.3, 2.0)), float(u(15.0, 125.0)))])
    return PourPlan(
        seed=int(seed), controller=controller, physics=physics, initial_g=initial, tare_g=tare,
        grasp_height_mm=float(u(0.3, 0.7)) * height, start_tilt_deg=start, rate_deg_s=float(u(0.5, 5.0)),
        target_g=float(u(min(8.0, 0.5 * initial), 0.85 * initial)), excess_cap_deg=float(u(1.0, 8.0)),
        grip=tuple(grip), friction=friction, duration_s=duration)


class _Script:
    """Random runs of pour / wait / retract with a cap on the stream's drive, stopping at the end."""

    def __init__(self, plan: PourPlan) -> None:
        self.plan = plan
        self.rng = stream_rng(plan.seed, Stream.EXPERT)
        self.action, self.left = Action.POUR, 0
        self.stop_s = float(self.rng.uniform(1.5, 4.0))

    def __call__(self, state: RigState) -> Action:
        plan, rng = self.plan, self.rng
        if plan.controller == "script" and state.t_ns * 1e-9 >= plan.duration_s - self.stop_s:
            return Action.RETRACT if state.tilt_deg > state.critical_tilt_deg - RETRACT_MARGIN_DEG else Action.WAIT
        if self.left <= 0:
            self.action = (Action.POUR, Action.POUR, Action.WAIT, Action.RETRACT)[int(rng.integers(4))]
            self.left = int(rng.integers(1, 16))
        self.left -= 1
        action = self.action
        if plan.controller == "carry":
            if state.tilt_deg >= state.critical_tilt_deg - 8.0 and action == Action.POUR:
                action = Action.RETRACT
        elif state.stream_excess_deg > plan.excess_cap_deg and action == Action.POUR:
            action = Action.RETRACT if rng.random() < 0.5 else Action.WAIT
        elif state.tilt_deg < state.critical_tilt_deg - 12.0 and action == Action.RETRACT:
            action = Action.POUR
        return action


class _Expert:
    """The scripted expert at the plan's tilt speed; it waits once its retract is RETRACT_MARGIN_DEG below critical."""

    def __init__(self, plan: PourPlan) -> None:
        self.expert = ScriptedExpert()
        config = RigConfig(initial_g=plan.initial_g, physics=plan.physics, randomize=False,
                           delta_phi_deg=plan.rate_deg_s * STEPS_PER_TICK * plan.physics.dt_s)
        setup = EpisodeSetup(seed=plan.seed, initial_g=plan.initial_g, physics=plan.physics, tare_g=plan.tare_g,
                             grasp_height_mm=plan.grasp_height_mm, grip_scale=1.0,
                             initial_tilt_deg=plan.start_tilt_deg)
        self.expert.begin_episode(setup, target_g=plan.target_g, config=config)

    def __call__(self, state: RigState) -> Action:
        self.expert.observe(state)
        action = self.expert()
        if action == Action.RETRACT and state.tilt_deg < state.critical_tilt_deg - RETRACT_MARGIN_DEG:
            return Action.WAIT
        return action


def simulate(plan: PourPlan, steps: Iterable[int]) -> dict[int, PourState]:
    """The states at the physics steps asked for (step k is at k * dt); the controller acts every tick."""
    wanted = set(int(k) for k in steps)
    if not wanted:
        return {}
    physics = plan.physics
    dt = physics.dt_s
    dt_ns = round(dt * 1e9)
    controller = _Expert(plan) if plan.controller == "expert" else _Script(plan)
    flow = BeadFlow(plan.initial_g, physics, stream_rng(plan.seed, Stream.FLOW))
    left = deque([flow.left_mg], maxlen=FLOW_WINDOW_STEPS + 1)
    tilt, rate, slip, slipping, grasp = plan.start_tilt_deg, 0.0, 0.0, False, plan.grasp_height_mm
    action = Action.WAIT
    carried = 0.0
    out: dict[int, PourState] = {}
    for k in range(max(wanted) + 1):
        t_s = k * dt
        if k:
            step = {Action.POUR: 1.0, Action.RETRACT: -1.0}.get(action, 0.0) * plan.rate_deg_s * dt
            new = min(max(tilt + step, 0.0), MAX_TILT_DEG)
            rate, tilt = (new - tilt) / dt, new
            flow.step(k * dt_ns, tilt)
            left.append(flow.left_mg)
        grip = plan.grip_n(t_s)
        held = min(max(grasp, 5.0), physics.cylinder_height_mm - 5.0)
        weight, torque = load_and_torque(flow.left_g, tilt, tare_g=plan.tare_g, grasp_height_mm=held,
                                         physics=physics)
        if not slipping and weight > 2.0 * plan.friction * grip:
            slipping = True
        kinetic = 2.0 * SLIP_KINETIC * plan.friction * grip
        if slipping and weight <= kinetic:
            slipping = False
        if slipping and k:
            slide = min(SLIP_MM_S_PER_N * (weight - kinetic), SLIP_MAX_MM_S) * dt
            slip += slide
            grasp += slide * math.cos(math.radians(tilt))  # the cylinder slides down: the grasp moves up it
        carried = kinetic if slipping else weight
        critical = critical_tilt_deg(flow.left_g, physics)
        state = RigState(
            t_ns=float(k * dt_ns), tilt_deg=tilt, tilt_rate_deg_s=rate, mass_left_g=flow.left_g,
            mass_in_flight_g=flow.in_flight_mg / 1000.0, mass_on_scale_g=flow.on_scale_mg / 1000.0,
            flow_g_s=flow.last_out_mg / 1000.0 / dt, critical_tilt_deg=critical,
            stream_excess_deg=flow.excess_deg if flow.excess_deg is not None else tilt - critical,
            grip_force_n=grip, load_n=carried, torque_nmm=torque, tare_g=plan.tare_g)
        if k % STEPS_PER_TICK == 0:
            action = controller(state)
        if k in wanted:
            flow_mean = (left[0] - left[-1]) / 1000.0 / ((len(left) - 1) * dt) if len(left) > 1 else 0.0
            out[k] = PourState(rig=state, weight_n=weight, slip_mm=slip, slipping=slipping, action=action.label,
                               flow_mean_g_s=flow_mean, grasp_height_mm=held)
    return out


def pour_truth(plan: PourPlan, state: PourState) -> dict:
    """Ground truth of a pour state (the fields of docs/sim.md, "Aligned multi-sensor data")."""
    rig = state.rig
    a = math.radians(rig.tilt_deg)
    per_finger = 0.5 * rig.load_n
    return {"kind": "pour", "contact": "cylinder", "object": plan.name, "motion": state.action,
            "touching": rig.grip_force_n > 0.0, "slipping": state.slipping, "load_n": state.weight_n,
            "normal_n": rig.grip_force_n, "shear_x_n": per_finger * math.sin(a), "shear_y_n": per_finger * math.cos(a),
            "shear_n": per_finger, "torque_nmm": rig.torque_nmm, "slip_mm": state.slip_mm,
            "grip_force_n": rig.grip_force_n, "tilt_deg": rig.tilt_deg, "tilt_rate_deg_s": rig.tilt_rate_deg_s,
            "flow_g_s": state.flow_mean_g_s, "flow_now_g_s": rig.flow_g_s, "poured_g": rig.mass_out_g,
            "mass_left_g": rig.mass_left_g, "fill_g": plan.initial_g, "critical_tilt_deg": rig.critical_tilt_deg,
            "stream_excess_deg": rig.stream_excess_deg, "tare_g": plan.tare_g,
            "cylinder_radius_mm": plan.physics.cylinder_radius_mm + WALL_MM, "grasp_height_mm": state.grasp_height_mm}
