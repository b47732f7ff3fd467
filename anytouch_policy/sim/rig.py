"""The whole simulated rig on one sim clock: arm + beads (SimArm), gripper, and tactile sensors at their own rates.

    with SimRig(RigConfig(initial_g=100), [SensorSpec(SensorType.GELSIGHT_MINI)], seed=7) as rig:
        result = rig.step(Action.POUR)   # one 5 Hz control tick = 40 physics steps of 5 ms
        result.frames["gelsight_mini_left"][-1].image   # 240 x 320 x 3 uint8, stamped on the sim clock

Each tick applies the action's tilt step, runs the physics at its fine step, hands every physics state to every
sensor (which queues the frames that fall due, each showing the latest state at or before its stamp), then renders
the newest frames of the tick. The episode is done once the cylinder has been retracted `end_margin_deg` below the
critical tilt of what is left, nothing flows and every bead in flight has landed; or after `max_ticks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.devices import SimTactileSource, sim_arm_and_gripper, sim_tactile_source
from anytouch_policy.sim.episode import EpisodeSetup
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.sim.state import RigState
from anytouch_policy.tactile import StampedFrame


@dataclass(frozen=True)
class TickResult:
    """What one control tick produced."""

    tick: int  # 1 for the first tick of the episode
    action: Action
    applied_step_deg: float  # tilt step actually commanded after the arm limits
    state: RigState  # ground truth at the end of the tick
    frames: dict[str, list[StampedFrame]]  # per sensor name, the frames rendered during this tick, oldest first
    done: bool
    timed_out: bool  # reached max_ticks before done


def episode_done(state: RigState, *, end_margin_deg: float) -> bool:
    """Poured something, then retracted below the critical tilt by the margin, with every bead landed."""
    return (state.mass_on_scale_g > 0.0 and state.mass_in_flight_g == 0.0 and state.flow_g_s == 0.0
            and state.tilt_deg <= state.critical_tilt_deg - end_margin_deg)


class SimRig:
    """One episode of the pouring rig; build one per episode (its seed fixes every random draw)."""

    def __init__(self, config: RigConfig, sensors: Sequence[SensorSpec], *, seed: int,
                 render_newest: int | None = None) -> None:
        names = [s.name for s in sensors]
        if len(set(names)) != len(names):
            raise ConfigError(f"sensor names must be unique, got {names}")
        if render_newest is not None and render_newest < 0:
            raise ConfigError(f"render_newest must be >= 0 or None, got {render_newest}")
        self.config = config
        self.seed = int(seed)
        self.render_newest = render_newest
        self.arm, self.gripper = sim_arm_and_gripper(config, self.seed)
        self.setup: EpisodeSetup = self.arm.setup
        self.sources: dict[str, SimTactileSource] = {
            spec.name: sim_tactile_source(spec, episode_seed=self.seed, index=i, randomize=config.randomize)
            for i, spec in enumerate(sensors)}
        self.tick = 0
        self.done = False
        self._opened = False

    def open(self) -> None:
        """Bring the devices up, grasp the cylinder and show the first state to the sensors."""
        self.gripper.open()
        self.arm.open()
        for source in self.sources.values():
            source.open()
        self.gripper.activate()
        self.gripper.grasp(force=self.config.grasp_force)
        self._opened = True
        state = self.arm.rig_state()
        for source in self.sources.values():
            source.update_state(state)
            source.drain(newest=0)  # frames before the first tick are not part of the episode

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
        self.arm.close()
        self.gripper.close()
        self._opened = False

    def __enter__(self) -> SimRig:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def state(self) -> RigState:
        return self.arm.rig_state()

    def step(self, action: Action | int) -> TickResult:
        """Apply one action for one control tick; frames come back per sensor with their sim-clock stamps."""
        if not self._opened:
            raise ConfigError("SimRig: open() it (or use it as a context manager) before step()")
        if self.done:
            raise ConfigError("SimRig: the episode is done; build a new rig for the next episode")
        action = Action(action)
        applied = self.arm.apply_tilt_step(action.tilt_step_deg(self.config.delta_phi_deg))
        state = self.arm.rig_state()
        for _ in range(self.config.steps_per_tick):
            self.arm.advance()
            state = self.arm.rig_state()
            for source in self.sources.values():
                source.update_state(state)
        frames = {name: [source.render(r) for r in source.drain(self.render_newest)]
                  for name, source in self.sources.items()}
        self.tick += 1
        finished = episode_done(state, end_margin_deg=self.config.end_margin_deg)
        timed_out = not finished and self.tick >= self.config.max_ticks
        self.done = finished or timed_out
        return TickResult(tick=self.tick, action=action, applied_step_deg=applied, state=state, frames=frames,
                          done=self.done, timed_out=timed_out)

    @property
    def poured_g(self) -> float:
        """Beads that left the cylinder (on the scale once the episode is done)."""
        flow = self.arm.flow
        return (flow.in_flight_mg + flow.on_scale_mg) / 1000.0
