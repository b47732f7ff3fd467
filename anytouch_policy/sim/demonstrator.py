"""Scripted-expert demonstrations on a live simulated rig, tick by tick (the ROS expert node's logic, without ROS).

    demo = ExpertDemonstrator(target_g=60.0, episodes=10)
    every control tick:  out = demo.tick(latest_snapshot)   # SimSnapshot from sim/state, or None before any
                         publish out.action (pour/action + pour/cartesian_step), out.event on episode/event
                         stop when out.finished

Per episode: `start` (the recorder opens a bag; a sim arm starts the next episode: full cylinder, new seed), wait
until sim/state shows that new episode, rebuild its EpisodeSetup with `sample_episode` (same seed, initial mass and
randomisation as the arm's) for `ScriptedExpert.begin_episode`, then observe the newest state and act each tick
until the episode is done (sim.rig.episode_done: poured, retracted below the critical tilt, all beads landed) ->
`end`; after `max_ticks` -> `abort` (kept, marked incomplete). A pause of `pause_ticks` between episodes lets the
recorder close the bag before the next start.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from anytouch_policy.actions import CONTROL_RATE_HZ, DEFAULT_DELTA_PHI_DEG, Action
from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.sim.episode import sample_episode
from anytouch_policy.sim.expert import ExpertParams, ScriptedExpert
from anytouch_policy.sim.live import SimSnapshot
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.rig import episode_done


class DemoPhase(StrEnum):
    WAITING = "waiting"  # for the first sim/state, or pausing between episodes
    STARTING = "starting"  # `start` sent; waiting for sim/state of the new episode
    POURING = "pouring"
    FINISHED = "finished"


@dataclass(frozen=True)
class DemoTick:
    action: Action
    event: str | None = None  # episode/event to publish this tick: start | end | abort
    finished: bool = False  # every episode is done


class ExpertDemonstrator:
    """Drives `episodes` expert demonstrations; one `tick()` per control period."""

    def __init__(self, *, target_g: float, episodes: int, params: ExpertParams | None = None,
                 delta_phi_deg: float = DEFAULT_DELTA_PHI_DEG, control_rate_hz: float = CONTROL_RATE_HZ,
                 end_margin_deg: float = 1.5, max_ticks: int = 200, pause_ticks: int = 5,
                 start_timeout_ticks: int = 50) -> None:
        if episodes < 1 or max_ticks < 1 or pause_ticks < 0 or start_timeout_ticks < 1:
            raise ConfigError("episodes, max_ticks and start_timeout_ticks must be >= 1, pause_ticks >= 0")
        if target_g <= 0:
            raise ConfigError(f"target_g must be > 0, got {target_g}")
        self.target_g, self.episodes = target_g, episodes
        self.expert = ScriptedExpert(params)
        self.delta_phi_deg, self.tick_s = delta_phi_deg, 1.0 / control_rate_hz
        self.end_margin_deg, self.max_ticks = end_margin_deg, max_ticks
        self.pause_ticks, self.start_timeout_ticks = pause_ticks, start_timeout_ticks
        self.phase = DemoPhase.WAITING
        self.done_episodes = 0
        self.aborted = 0
        self.episode_seed: int | None = None
        self._previous_seed: int | None = None
        self._ticks = 0  # ticks in the current phase

    def _config(self, snap: SimSnapshot) -> RigConfig:
        return RigConfig(initial_g=snap.initial_g, randomize=snap.randomize, delta_phi_deg=self.delta_phi_deg,
                         tick_s=self.tick_s)

    def tick(self, snap: SimSnapshot | None) -> DemoTick:
        self._ticks += 1
        if self.phase is DemoPhase.FINISHED:
            return DemoTick(Action.WAIT, finished=True)
        if self.phase is DemoPhase.WAITING:
            pause = self.pause_ticks if self.done_episodes + self.aborted else 0
            if snap is None or self._ticks <= pause:
                return DemoTick(Action.WAIT)
            self._previous_seed = snap.episode_seed
            self._enter(DemoPhase.STARTING)
            return DemoTick(Action.WAIT, event="start")
        if self.phase is DemoPhase.STARTING:
            if snap is None or snap.episode_seed == self._previous_seed:
                if self._ticks > self.start_timeout_ticks:
                    raise DeviceError(f"no new sim episode {self._ticks * self.tick_s:.0f} s after `start`: the "
                                      "expert needs the simulated arm (arm node backend sim) to start episodes")
                return DemoTick(Action.WAIT)
            config = self._config(snap)
            self.episode_seed = snap.episode_seed
            self.expert.begin_episode(sample_episode(config, snap.episode_seed), target_g=self.target_g,
                                      config=config)
            self._enter(DemoPhase.POURING)
        self.expert.observe(snap.state)
        if episode_done(snap.state, end_margin_deg=self.end_margin_deg):
            self.done_episodes += 1
            return self._finish("end")
        if self._ticks > self.max_ticks:
            self.aborted += 1
            return self._finish("abort")
        return DemoTick(self.expert())

    def _enter(self, phase: DemoPhase) -> None:
        self.phase, self._ticks = phase, 0

    def _finish(self, event: str) -> DemoTick:
        last = self.done_episodes + self.aborted >= self.episodes
        self._enter(DemoPhase.FINISHED if last else DemoPhase.WAITING)
        return DemoTick(Action.WAIT, event=event, finished=last)
