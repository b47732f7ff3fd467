"""The simulated rig split over processes on the wall clock (ROS sim mode): the arm owns the physics, every tactile
sensor renders from the state snapshots it receives.

    arm = make_arm("sim", limits=ArmLimits(), initial_g=100.0, seed=0)       # LiveSimArm, episode 0 on open()
    arm.open(); arm.advance_to(time.time_ns())                               # physics due by now, 5 ms steps
    values, stamp_ns = arm.sim_state()                                       # -> sim/state (JointState)
    cam = make_tactile_source("sim", sensor_type="gelsight_mini", name="left")    # or model="rig/my_sensor.yaml"
    cam.open(); cam.feed(values, stamp_ns); frame = cam.read(timeout_s=0.1)  # stamped on the wall clock

A state snapshot is the RigState fields plus the episode fields (`episode_seed`, `randomize`), so a sensor process
builds the same renderer as the in-process rig (`sim_tactile_source`) and rebuilds it when the arm starts a new
episode; its frames show the latest state received at or before their stamps. Sim time t_ns maps to the wall clock
through the snapshot's stamp (stamp - t_ns is the episode's start on the wall clock), so frames carry grab times
like a real camera's. Fed every physics state, a sensor renders byte-identical frames to the in-process rig.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from anytouch_policy.actions import CONTROL_RATE_HZ, DEFAULT_DELTA_PHI_DEG
from anytouch_policy.bounds import Interval
from anytouch_policy.errors import ConfigError, DeviceNotConnectedError
from anytouch_policy.hardware.base import (
    Arm,
    ArmLimits,
    ArmState,
    RateMeter,
    SourceState,
    SourceStats,
    TactileSource,
)
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.devices import FrameRequest, SimArm, SimGripper, SimTactileSource, sim_tactile_source
from anytouch_policy.sim.episode import sample_episode
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.sensor_model import load_sensor_model
from anytouch_policy.sim.sensor_params import Finger, SensorSpec
from anytouch_policy.sim.state import RigState
from anytouch_policy.tactile import StampedFrame

#: Run seeds an arm accepts (sim.params.episode_seed: 1e9 / 10000 episodes per seed).
MAX_RUN_SEED = 100_000
#: Positions in the rig's sensor list a simulated sensor accepts (each seeds a look and a camera noise).
MAX_SIM_SENSORS = 1000
#: wrist speed / (delta_phi x rate): at least the command rate, at most 4x (beyond it jitter is not the reason).
WRIST_HEADROOM_RANGE = Interval.parse("[1, 4]")


@dataclass(frozen=True)
class SimArmConfig:
    """The simulated arm of the ROS sim mode: which episodes it plays and how fast its wrist turns."""

    initial_g: float = 100.0  # beads in the cylinder at every episode start
    seed: int = 0  # run seed: the k-th episode of this arm is sim.params.episode_seed(split, seed, k)
    split: str = "train"  # train (demonstrations) | eval (policy rollouts): disjoint seed ranges
    randomize: bool = True  # per-episode nuisances (physics, tare, grasp, sensors' looks); False = nominal
    delta_phi_deg: float = DEFAULT_DELTA_PHI_DEG  # with control_rate_hz: wrist speed delta_phi x rate, as the rig
    control_rate_hz: float = CONTROL_RATE_HZ
    max_lag_s: float = 0.5  # physics further behind the wall clock than this jumps ahead (counted) instead
    wrist_headroom: float = 1.2  # the wrist may turn this much faster than delta_phi x rate: steps that arrive with
    #   jitter (two in one tick after a busy moment) would otherwise pile up behind a wrist at exactly the command rate

    def __post_init__(self) -> None:
        WRIST_HEADROOM_RANGE.check("sim wrist_headroom", self.wrist_headroom)
        if self.split not in ("train", "eval"):
            raise ConfigError(f"sim split must be 'train' or 'eval', got {self.split!r}")
        if not 0 <= self.seed < MAX_RUN_SEED:
            raise ConfigError(f"sim seed must be in [0, {MAX_RUN_SEED}), got {self.seed}")
        if self.control_rate_hz <= 0 or self.max_lag_s <= 0 or self.delta_phi_deg <= 0:
            raise ConfigError("sim delta_phi_deg, control_rate_hz and max_lag_s must be > 0")


@dataclass(frozen=True)
class SimSensorConfig:
    """A simulated tactile sensor of the ROS sim mode; its look follows (episode seed, index) as in the rig."""

    sensor_type: str = ""  # token slot (gelsight_mini, digit, gelslim, gelsight, duragel); "" = the model's
    model: str = ""  # sensor model (sim/sensor_model.py): a shipped name or a file path; "" = the one of sensor_type
    name: str = ""  # sensor name (topic segment); defaults to "<model>_<finger>"
    index: int = 0  # position of this sensor in the rig's sensor list: seeds its look and its camera noise
    finger: str = "left"  # left | right: the right pad sees the cylinder mirrored
    fps: float = 0.0  # frame rate; 0 = the sensor's native rate
    unit_seed: int = 0  # which physical unit (fixed look across episodes)
    randomize_unit: bool = False  # draw the unit's look per episode instead

    def __post_init__(self) -> None:
        if not self.sensor_type and not self.model:
            raise ConfigError("sim sensor: give its sensor_type (the shipped model of that name) or its model")
        if not 0 <= self.index < MAX_SIM_SENSORS:
            raise ConfigError(f"sim sensor index must be in [0, {MAX_SIM_SENSORS}), got {self.index}")
        if self.finger not in ("left", "right"):
            raise ConfigError(f"sim sensor finger must be 'left' or 'right', got {self.finger!r}")
        if self.fps < 0:
            raise ConfigError(f"sim sensor fps must be >= 0 (0 = native), got {self.fps}")


#: Names a sim/state snapshot carries besides the RigState fields.
EPISODE_FIELDS = ("episode_seed", "randomize")
#: States a sensor keeps queued before the oldest are dropped (a stalled renderer must not grow without bound).
MAX_QUEUED_STATES = 256
#: Due frames a sensor still renders in order after falling behind (0.25-0.6 s of frames); older ones are dropped.
MAX_FRAMES_BEHIND = 16


@dataclass(frozen=True)
class SimSnapshot:
    """One received sim/state: the ground truth and the episode it belongs to."""

    state: RigState
    episode_seed: int
    randomize: bool

    @property
    def initial_g(self) -> float:
        """Beads at the episode start: every milligram is somewhere (left, in flight, on the scale)."""
        return round(self.state.mass_left_g + self.state.mass_in_flight_g + self.state.mass_on_scale_g, 3)


def sim_state_values(state: RigState, *, episode_seed: int, randomize: bool) -> dict[str, float]:
    """The named float vector of a sim/state message (RigState fields, then EPISODE_FIELDS)."""
    return {**state.to_dict(), "episode_seed": float(episode_seed), "randomize": 1.0 if randomize else 0.0}


def parse_sim_state(values: Mapping[str, float]) -> SimSnapshot:
    """Inverse of sim_state_values; ConfigError names missing or unknown fields."""
    missing = [name for name in EPISODE_FIELDS if name not in values]
    if missing:
        raise ConfigError(f"sim/state lacks {missing}: it comes from an arm node older than this sensor node")
    state = RigState.from_dict({k: v for k, v in values.items() if k not in EPISODE_FIELDS})
    return SimSnapshot(state, int(values["episode_seed"]), values["randomize"] != 0.0)


class LiveSimArm(Arm):
    """SimArm + SimGripper advanced on the wall clock; `new_episode()` refills the cylinder with the next seed.

    Physics, flow and rendering are the in-process rig's; only the wrist may turn `wrist_headroom` times faster
    than the rig's delta_phi per tick, so steps that arrive with a little jitter do not pile up behind it.
    """

    def __init__(self, config: SimArmConfig, *, limits: ArmLimits | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.limits = limits or ArmLimits()
        self.rig_config = rig_config(config, self.limits)
        self._clock = clock
        self.episode = -1  # index of the running episode of this arm
        self.episode_seed = 0
        self.skipped_steps = 0  # physics steps jumped over because the process fell behind the wall clock
        self._arm: SimArm | None = None
        self._gripper: SimGripper | None = None
        self._start_ns = 0  # wall-clock time of sim time 0 of the running episode

    def open(self) -> None:
        if self._arm is None:
            self.new_episode()

    def close(self) -> None:
        if self._arm is not None:
            self._arm.close()
            self._gripper.close()
        self._arm = self._gripper = None

    def new_episode(self) -> int:
        """Start the next episode now (a full cylinder at its start tilt, grasped); returns its episode seed."""
        self.close()
        self.episode += 1
        self.episode_seed = episode_seed(SeedSplit[self.config.split.upper()], self.config.seed, self.episode)
        config = self.rig_config
        setup = sample_episode(config, self.episode_seed)
        gripper = SimGripper(grip_scale=setup.grip_scale)
        arm = SimArm(setup, config=config, gripper=gripper,
                     rate_deg_s=self.config.wrist_headroom * config.delta_phi_deg / config.tick_s)
        gripper.open()
        arm.open()
        gripper.activate()
        gripper.grasp(force=self.rig_config.grasp_force)
        self._arm, self._gripper = arm, gripper
        self._start_ns = self._clock()
        return self.episode_seed

    @property
    def sim(self) -> SimArm:
        if self._arm is None:
            raise DeviceNotConnectedError("sim arm: call open() first")
        return self._arm

    def advance_to(self, now_ns: int) -> int:
        """Run the physics steps due by wall-clock `now_ns`; returns how many ran."""
        arm = self.sim
        due = (now_ns - self._start_ns - arm.t_ns) // arm.dt_ns
        behind = due - round(self.config.max_lag_s * 1e9) // arm.dt_ns
        if behind > 0:  # the process was stalled: do not replay seconds of physics in a burst
            self._start_ns += behind * arm.dt_ns
            self.skipped_steps += behind
            due -= behind
        for _ in range(max(0, due)):
            arm.advance()
        return max(0, due)

    def apply_tilt_step(self, delta_deg: float) -> float:
        return self.sim.apply_tilt_step(delta_deg)

    def hold(self) -> None:
        self.sim.hold()

    def state(self) -> ArmState:
        sim_state = self.sim.state()
        return ArmState(stamp_ns=self._start_ns + sim_state.stamp_ns, tilt_deg=sim_state.tilt_deg,
                        pose=sim_state.pose, moving=sim_state.moving, status=sim_state.status)

    def sim_state(self) -> tuple[dict[str, float], int]:
        """(named values of sim/state, wall-clock stamp of that state)."""
        arm = self.sim
        values = sim_state_values(arm.rig_state(), episode_seed=self.episode_seed, randomize=self.config.randomize)
        return values, self._start_ns + arm.t_ns

    @property
    def mass_on_scale_g(self) -> float:
        return self.sim.flow.on_scale_mg / 1000.0


def rig_config(config: SimArmConfig, limits: ArmLimits) -> RigConfig:
    """The RigConfig every episode of a sim arm uses (validated: initial_g, a tick of whole physics steps)."""
    return RigConfig(initial_g=config.initial_g, randomize=config.randomize, delta_phi_deg=config.delta_phi_deg,
                     tick_s=1.0 / config.control_rate_hz, limits=limits)


def sensor_spec(config: SimSensorConfig) -> SensorSpec:
    """The mounted sensor of a sim sensor config: its model (by name or path, else the shipped model of its
    sensor_type), whose token slot must be the sensor_type when both are given."""
    slot = SensorType.from_name(config.sensor_type) if config.sensor_type else None
    model = load_sensor_model(config.model or slot)
    if slot is not None and model.slot != slot:
        raise ConfigError(f"sim sensor model {config.model!r} fills token slot {model.slot.label}, but sensor_type is "
                          f"{config.sensor_type!r}; set sensor_type {model.slot.label} (or leave it empty)")
    return SensorSpec(model, name=config.name, finger=Finger[config.finger.upper()], fps=config.fps or None,
                      unit_seed=config.unit_seed, randomize_unit=config.randomize_unit)


class LiveSimSource(TactileSource):
    """A simulated camera fed by sim/state snapshots: `feed()` only queues (cheap, any thread); `read()` applies
    the queued states and renders the oldest frame due, stamped on the wall clock. Like a camera driver's buffers,
    it keeps the newest MAX_FRAMES_BEHIND due frames when the reader fell behind, so a briefly busy process still
    publishes every frame at its native rate; older ones are dropped and counted."""

    def __init__(self, config: SimSensorConfig) -> None:
        self.config = config
        self.spec = sensor_spec(config)
        self.name = self.spec.name
        self.sensor_type = self.spec.sensor_type
        self._cond = threading.Condition()
        self._states: deque[tuple[Mapping[str, float], int]] = deque(maxlen=MAX_QUEUED_STATES)
        self._source: SimTactileSource | None = None
        self._due: deque[tuple[SimTactileSource, FrameRequest, int]] = deque()  # (source, frame request, start_ns)
        self._episode_seed: int | None = None
        self._last_t_ns = -1.0
        self._start_ns = 0
        self._open = False
        self._rate = RateMeter()
        self.states_received = self.episodes = self.bad_states = self.states_dropped = 0
        self._frames = self._dropped = 0
        self.last_error = ""

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        with self._cond:
            self._open = False
            self._cond.notify_all()

    @property
    def episode_seed(self) -> int | None:
        return self._episode_seed

    def feed(self, values: Mapping[str, float], stamp_ns: int) -> None:
        """Queue one sim/state snapshot (named values, wall-clock stamp of that state)."""
        with self._cond:
            if len(self._states) == self._states.maxlen:
                self.states_dropped += 1
            self._states.append((values, int(stamp_ns)))
            self.states_received += 1
            self._cond.notify()

    def _apply(self, values: Mapping[str, float], stamp_ns: int) -> None:
        try:
            snap = parse_sim_state(values)
        except ConfigError as exc:
            self.bad_states += 1
            self.last_error = str(exc)
            return
        if self._source is None or snap.episode_seed != self._episode_seed or snap.state.t_ns < self._last_t_ns:
            self._source = sim_tactile_source(self.spec, episode_seed=snap.episode_seed, index=self.config.index,
                                              randomize=snap.randomize)
            self._source.open()
            self._episode_seed = snap.episode_seed
            self.episodes += 1
        self._start_ns = stamp_ns - int(snap.state.t_ns)
        self._last_t_ns = snap.state.t_ns
        if self._source.update_state(snap.state):
            self._due.extend((self._source, r, self._start_ns) for r in self._source.drain())
            while len(self._due) > MAX_FRAMES_BEHIND:
                self._due.popleft()
                self._dropped += 1

    def read(self, timeout_s: float = 0.0) -> StampedFrame | None:
        if not self._open:
            raise DeviceNotConnectedError(f"{self.name}: call open() first")
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                states = list(self._states)
                self._states.clear()
            for values, stamp_ns in states:  # renderer rebuilds (~50 ms) happen here, never in feed()
                self._apply(values, stamp_ns)
            if self._due:
                source, request, start_ns = self._due.popleft()
                frame = source.render(request)
                self._frames += 1
                self._rate.tick()
                return StampedFrame(frame.image, start_ns + frame.stamp_ns)
            with self._cond:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._open:
                    return None
                if not self._states:
                    self._cond.wait(remaining)

    def stats(self) -> SourceStats:
        fps = self._rate.rate()
        dropped = self._dropped + (self._source.stats().dropped if self._source is not None else 0)
        state = SourceState.OPEN if self._open else SourceState.CLOSED
        if self._open and self._source is None:
            state = SourceState.WAITING
        return SourceStats(frames=self._frames, dropped=dropped, read_failures=0, reconnects=0, fps=fps,
                           state=str(state))

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics next to stats()."""
        return {"episode_seed": str(self._episode_seed), "episodes": str(self.episodes),
                "states_received": str(self.states_received), "states_dropped": str(self.states_dropped),
                "bad_states": str(self.bad_states), "last_error": self.last_error}
