"""Simulated devices behind the hardware interfaces: the arm owns the bead physics, sensors render from rig states.

- `SimArm`: tilt drive + bead flow on its own sim clock; `advance()` runs one physics step, `rig_state()` is the
  ground truth a ROS arm node publishes for the sensor nodes.
- `SimGripper`: instant Robotiq-like grasp whose force feeds the renderer's contact pressure.
- `SimTactileSource`: renders frames at the sensor's native rate on the sim clock, fed either in-process by the rig
  or by state snapshots received over ROS (`update_state`), with identical frames for identical states.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from anytouch_policy.errors import ConfigError, DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import Arm, ArmState, Gripper, GripperStatus, SourceStats, TactileSource
from anytouch_policy.sim.episode import EpisodeSetup, sample_episode
from anytouch_policy.sim.kinematics import TiltDrive
from anytouch_policy.sim.params import RigConfig, Stream, stream_rng
from anytouch_policy.sim.physics import BeadFlow, critical_tilt_deg, load_and_torque
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState
from anytouch_policy.tactile import StampedFrame

#: Robotiq 2F-140 grip force range (N) over the force register 0..255, and its stroke (mm).
ROBOTIQ_FORCE_RANGE_N = (10.0, 125.0)
ROBOTIQ_STROKE_MM = 140.0
#: Outer diameter of the simulated cylinder where the fingers close on it (mm).
CYLINDER_OUTER_DIAMETER_MM = 86.0
#: Tool pose of the upright start, base frame (mm, deg); the tilt turns it about the tool axis.
START_POSE = (300.0, 0.0, 250.0, 180.0, 0.0, 0.0)


class _SimDevice:
    """open()/close() of a simulated device, and the same refusal as the hardware when it is used unopened."""

    _open = False

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def _check(self) -> None:
        if not self._open:
            raise DeviceNotConnectedError(f"{type(self).__name__}: call open() first")


class SimGripper(_SimDevice, Gripper):
    """Robotiq-like gripper closing on the cylinder; every call completes at once (no blocking, no faults)."""

    def __init__(self, *, grip_scale: float = 1.0) -> None:
        self.grip_scale = grip_scale  # actual / commanded force (an episode nuisance)
        self._activated = False
        self._position = 0
        self._force_reg = 0
        self._holding = False

    def activate(self, timeout_s: float = 5.0) -> None:
        self._check()
        self._activated = True

    def grasp(self, position: int = 255, speed: int = 64, force: int = 128) -> None:
        self._check()
        if not self._activated:
            raise DeviceError("SimGripper: grasp before activate(); activate the gripper first")
        for name, value in (("position", position), ("speed", speed), ("force", force)):
            if not 0 <= value <= 255:
                raise ConfigError(f"SimGripper.grasp: {name} must be in 0..255, got {value}")
        contact = round(255 * (1 - CYLINDER_OUTER_DIAMETER_MM / ROBOTIQ_STROKE_MM))
        self._holding = position >= contact
        self._position = contact if self._holding else position
        self._force_reg = force

    def release(self) -> None:
        self._check()
        self._holding = False
        self._position = 0

    def status(self) -> GripperStatus:
        self._check()
        return GripperStatus(activated=self._activated, position=self._position, object_detected=self._holding,
                             fault=0, moving=False)

    @property
    def force_n(self) -> float:
        """Normal force of each finger on the cylinder; 0 when it is not grasped."""
        if not (self._open and self._holding):
            return 0.0
        lo, hi = ROBOTIQ_FORCE_RANGE_N
        return (lo + (hi - lo) * self._force_reg / 255.0) * self.grip_scale


class SimArm(_SimDevice, Arm):
    """The xArm holding the cylinder over the scale; owns the bead physics and the sim clock."""

    def __init__(self, setup: EpisodeSetup, *, config: RigConfig, gripper: SimGripper | None = None,
                 rate_deg_s: float | None = None) -> None:
        self.setup = setup
        self.config = config
        self.limits = config.limits
        self.gripper = gripper
        self.dt_ns = round(setup.physics.dt_s * 1e9)
        self.t_ns = 0
        rate = rate_deg_s if rate_deg_s is not None else config.delta_phi_deg / config.tick_s
        self.drive = TiltDrive(setup.initial_tilt_deg, limits=config.limits, rate_deg_s=rate)
        self.flow = BeadFlow(setup.initial_g, setup.physics, stream_rng(setup.seed, Stream.FLOW))

    def apply_tilt_step(self, delta_deg: float) -> float:
        self._check()
        return self.drive.command(delta_deg, self.t_ns)

    def hold(self) -> None:
        self._check()
        self.drive.hold()

    def advance(self) -> None:
        """One physics step: the wrist moves, beads flow, beads land."""
        self._check()
        self.t_ns += self.dt_ns
        self.drive.advance(self.setup.physics.dt_s, self.t_ns)
        self.flow.step(self.t_ns, self.drive.tilt_deg)

    def state(self) -> ArmState:
        self._check()
        x, y, z, roll, pitch, yaw = START_POSE
        return ArmState(stamp_ns=self.t_ns, tilt_deg=self.drive.tilt_deg,
                        pose=(x, y, z, roll, pitch, yaw + self.drive.tilt_deg), moving=self.drive.moving,
                        status="holding" if self.drive.holding else "ready")

    def rig_state(self) -> RigState:
        """Ground truth now (what the sensors render from and the figures report)."""
        f, tilt = self.flow, self.drive.tilt_deg
        left_g = f.left_mg / 1000.0
        critical = critical_tilt_deg(left_g, self.setup.physics)
        load, torque = load_and_torque(left_g, tilt, tare_g=self.setup.tare_g,
                                       grasp_height_mm=self.setup.grasp_height_mm, physics=self.setup.physics)
        return RigState(
            t_ns=float(self.t_ns), tilt_deg=tilt, tilt_rate_deg_s=self.drive.rate_now_deg_s, mass_left_g=left_g,
            mass_in_flight_g=f.in_flight_mg / 1000.0, mass_on_scale_g=f.on_scale_mg / 1000.0,
            flow_g_s=f.last_out_mg / 1000.0 / self.setup.physics.dt_s,
            critical_tilt_deg=critical,
            stream_excess_deg=f.excess_deg if f.excess_deg is not None else tilt - critical,
            grip_force_n=self.gripper.force_n if self.gripper is not None else 0.0,
            load_n=load, torque_nmm=torque, tare_g=self.setup.tare_g,
        )


@dataclass(frozen=True)
class FrameRequest:
    """A frame that is due: its index on the sensor clock, its stamp and the state it shows."""

    index: int
    stamp_ns: int
    state: RigState


class SimTactileSource(_SimDevice, TactileSource):
    """A simulated tactile camera: frame k is stamped offset + k * period and shows the latest state at or before it.

    Feed it states in time order (`update_state`), from the rig in-process or from snapshots received over ROS;
    `read()` renders the newest due frame (older unread ones count as dropped), `drain()` renders the newest few.
    """

    def __init__(self, renderer: TactileRenderer, *, name: str | None = None, offset_ns: int = 0,
                 backlog: int = 64) -> None:
        self.renderer = renderer
        self.name = name or renderer.params.name
        self.sensor_type = renderer.params.sensor_type
        self.period_ns = round(1e9 / renderer.params.fps)
        self.offset_ns = int(offset_ns)
        self._next_index = 0
        self._last_state: RigState | None = None
        self._pending: deque[FrameRequest] = deque(maxlen=backlog)
        self._frames = 0
        self._dropped = 0

    @property
    def due(self) -> int:
        """Frames due and not rendered yet."""
        return len(self._pending)

    def stamp_of(self, index: int) -> int:
        return self.offset_ns + index * self.period_ns

    def update_state(self, state: RigState) -> int:
        """Take a new ground-truth snapshot; queues every frame now due. Returns how many became due."""
        if self._last_state is not None and state.t_ns < self._last_state.t_ns:
            raise ConfigError(f"{self.name}: states must arrive in time order ({state.t_ns} < {self._last_state.t_ns})")
        due = 0
        while self.stamp_of(self._next_index) <= state.t_ns:
            stamp = self.stamp_of(self._next_index)
            shown = state if (state.t_ns == stamp or self._last_state is None) else self._last_state
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1
            self._pending.append(FrameRequest(self._next_index, stamp, shown))
            self._next_index += 1
            due += 1
        self._last_state = state
        return due

    def render(self, request: FrameRequest) -> StampedFrame:
        return StampedFrame(self.renderer.render(request.state, request.index), request.stamp_ns)

    def drain(self, newest: int | None = None) -> list[FrameRequest]:
        """Take all due requests, oldest first; only the newest `newest` are kept (the rest count as dropped)."""
        requests = list(self._pending)
        self._pending.clear()
        if newest is not None and len(requests) > newest:
            self._dropped += len(requests) - newest
            requests = requests[len(requests) - newest:] if newest > 0 else []
        self._frames += len(requests)
        return requests

    def read(self, timeout_s: float = 0.0) -> StampedFrame | None:
        """The newest due frame, rendered now; returns at once (frames only fall due when states arrive)."""
        if not self._open:
            raise DeviceNotConnectedError(f"{self.name}: call open() first")
        requests = self.drain(newest=1)
        return self.render(requests[0]) if requests else None

    def stats(self) -> SourceStats:
        return SourceStats(frames=self._frames, dropped=self._dropped, read_failures=0, reconnects=0,
                           fps=float(self.renderer.params.fps), state="open" if self._open else "closed")


def sim_arm_and_gripper(config: RigConfig, episode_seed: int) -> tuple[SimArm, SimGripper]:
    """The arm owning the physics of episode `episode_seed` and the gripper holding the cylinder (what the rig and
    a ROS arm node build; open both, activate and grasp before advancing)."""
    setup = sample_episode(config, episode_seed)
    gripper = SimGripper(grip_scale=setup.grip_scale)
    return SimArm(setup, config=config, gripper=gripper), gripper


def sim_tactile_source(spec: SensorSpec, *, episode_seed: int, index: int, randomize: bool = True) -> SimTactileSource:
    """Sensor `index` of the rig's sensor list in episode `episode_seed` (what the rig and a ROS sensor node build:
    the same look, the same clock offset, hence the same frames for the same states)."""
    params = sample_sensor_params(spec, episode_seed=episode_seed, index=index, randomize=randomize)
    return SimTactileSource(TactileRenderer(params), offset_ns=params.seed % round(1e9 / params.fps))
