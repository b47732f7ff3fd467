"""Scripted pouring expert: reads the ground truth like a person watching the scale and the stream, with a
reaction delay and noise, and chooses pour / wait / retract.

Per episode it draws a temperament (preferred outflow early in the pour and near the end, its reaction delay).
Each tick it looks at the state from `reaction` ticks ago and
- pours until beads flow, then pours or waits to keep the outflow near its preferred rate, which eases off as the
  scale approaches the target;
- retracts (and keeps retracting) once what has left the cylinder plus what will still come out reaches the target.
  "What will still come out" is a noise-free rollout of the episode's physics from the perceived state: the steps it
  already commanded since that state, then tilting back until the stream stops. It depends on the stream's own
  state (how far it lags behind the tilt, this episode's flow law, the current granular fluctuation), i.e. on the
  current flow rate, which a tactile policy can only see in the change between frames.
The `knows_flow=False` ablation gets the tilt and the fill exactly but not the stream's state (it assumes the
nominal flow law at steady state): the best a single frame could do. Its error is the price of not seeing dynamics.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from anytouch_policy.actions import Action
from anytouch_policy.sim.episode import EpisodeSetup
from anytouch_policy.sim.params import PhysicsParams, RigConfig, Stream, stream_rng
from anytouch_policy.sim.physics import critical_tilt_deg
from anytouch_policy.sim.state import RigState
from anytouch_policy.tactile import StampedFrame


@dataclass(frozen=True)
class ExpertParams:
    """The expert's temperament ranges (drawn per episode) and perception noise."""

    reaction_ticks: tuple[int, int] = (1, 2)  # perceives the state this many ticks late (inclusive range)
    pour_rate_g_s: tuple[float, float] = (3.0, 8.0)  # preferred outflow early in the pour
    final_rate_g_s: tuple[float, float] = (1.0, 6.0)  # preferred outflow near the target
    ease_g: float = 15.0  # eases from the pour rate to the final rate over the last grams
    scale_noise_g: float = 0.15  # rms error reading the poured mass
    flow_noise_rel: float = 0.08  # relative rms error judging the outflow
    stream_noise_deg: float = 0.1  # rms error judging how hard the stream is driven (its excess tilt)
    hesitation: float = 0.03  # chance to wait when it meant to pour
    knows_flow: bool = True  # False: static-only ablation (exact tilt and fill, nominal physics, no stream state)


def predict_out_g(state: RigState, physics: PhysicsParams, steps_deg: Sequence[float], *, retract_deg: float,
                  tick_s: float, flow_scale: float = 1.0, dt_s: float = 0.01) -> float:
    """Grams that leave the lip from `state` on if the wrist makes `steps_deg` (one step per tick, each spread over
    its tick) and then tilts back `retract_deg` per tick until the stream stops; the model outflow is multiplied by
    `flow_scale` (the current granular fluctuation, which persists for a while)."""
    left, tilt, excess = state.mass_left_g, state.tilt_deg, state.stream_excess_deg
    lag = 1.0 - math.exp(-dt_s / physics.stream_lag_s) if physics.stream_lag_s > 0 else 1.0
    sub = max(1, round(tick_s / dt_s))
    rate = physics.flow_coeff_g_s * flow_scale
    out = 0.0
    for tick in range(len(steps_deg) + 200):
        step = steps_deg[tick] if tick < len(steps_deg) else -abs(retract_deg)
        for _ in range(sub):
            tilt += step / sub
            excess += lag * (tilt - critical_tilt_deg(left, physics) - excess)
            if excess > 0.0 and left > 0.0:
                dm = min(left, rate * excess**physics.flow_exponent * dt_s)
                left -= dm
                out += dm
        if tick >= len(steps_deg) and excess <= 0.0:
            break
    return out


class ScriptedExpert:
    """The expert as a privileged policy (eval.rollout.PrivilegedPolicy): the rollout calls begin_episode(), then
    observe(state) and the call each tick; it reads no frames, so none are rendered for it."""

    history_frames = 0

    def __init__(self, params: ExpertParams | None = None) -> None:
        self.params = params or ExpertParams()
        self._states: deque[RigState] = deque(maxlen=8)
        self._steps: deque[float] = deque(maxlen=8)  # tilt steps it commanded, one per tick
        self.retracting = False

    def begin_episode(self, setup: EpisodeSetup, *, target_g: float, config: RigConfig) -> None:
        p = self.params
        self.setup = setup
        self.target_g = target_g
        self.config = config
        self._rng = stream_rng(setup.seed, Stream.EXPERT)
        self.reaction = int(self._rng.integers(p.reaction_ticks[0], p.reaction_ticks[1] + 1))
        self.pour_rate = float(self._rng.uniform(*p.pour_rate_g_s))
        self.final_rate = min(float(self._rng.uniform(*p.final_rate_g_s)), self.pour_rate)
        self._nominal_physics = config.physics
        self._states.clear()
        self._steps.clear()
        self.retracting = False

    def reset(self) -> None:
        """Nothing to forget here: begin_episode() starts each episode afresh."""

    def observe(self, state: RigState) -> None:
        """The ground truth at the end of the last tick (the expert will see it `reaction` ticks later)."""
        self._states.append(state)

    def __call__(self, frames: Mapping[str, Sequence[StampedFrame]] | None = None) -> Action:
        action = self._decide()
        self._steps.append(action.tilt_step_deg(self.config.delta_phi_deg))
        return action

    def _decide(self) -> Action:
        if self.retracting:
            return Action.RETRACT
        if not self._states:
            return Action.POUR
        p, rng = self.params, self._rng
        lag = min(self.reaction, len(self._states) - 1)
        seen = self._states[-1 - lag]
        out = seen.mass_out_g + p.scale_noise_g * float(rng.standard_normal())
        # Outflow judged over the last tick (a person sees the stream, not a 5 ms sample of it).
        before = self._states[-2 - lag] if len(self._states) > lag + 1 else None
        flow = seen.flow_g_s if before is None else (seen.mass_out_g - before.mass_out_g) / self.config.tick_s
        flow = max(0.0, flow * (1.0 + p.flow_noise_rel * float(rng.standard_normal())))
        remaining = self.target_g - out
        ease = min(max(remaining / p.ease_g, 0.0), 1.0)
        wanted = self.final_rate + (self.pour_rate - self.final_rate) * ease
        if remaining <= 25.0:  # only bother predicting the tail near the end
            # What still comes out: the steps already commanded since the state it sees, then a full retract.
            physics = self.setup.physics
            excess = seen.stream_excess_deg + p.stream_noise_deg * float(rng.standard_normal())
            model = physics.flow_coeff_g_s * max(excess, 0.0) ** physics.flow_exponent
            scale = min(max(flow / model, 0.3), 3.0) if model > 0.5 else 1.0
            if not p.knows_flow:
                # What one frame could tell at best: tilt and fill exactly, but not the stream's own state (its
                # lag behind the tilt, this episode's flow law, the current fluctuation).
                physics = self._nominal_physics
                excess, scale = seen.tilt_deg - critical_tilt_deg(seen.mass_left_g, physics), 1.0
            pending = list(self._steps)[len(self._steps) - lag:] if lag else []
            lead = predict_out_g(replace(seen, stream_excess_deg=excess), physics, pending,
                                 retract_deg=self.config.delta_phi_deg, tick_s=self.config.tick_s, flow_scale=scale)
            # Retract now unless waiting one more tick would leave it closer to the target.
            if remaining - lead <= 0.5 * flow * self.config.tick_s:
                self.retracting = True
                return Action.RETRACT
        if flow < wanted and rng.random() >= p.hesitation:
            return Action.POUR
        return Action.WAIT
