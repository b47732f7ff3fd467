"""Config dataclasses of the backends built on the simulator (sim arm, sim sensor) and on recorded episodes (replay).

They live apart from their backends so that the factory's tables can name them without importing the simulator or
the episode reader, both of which import this package.
"""

from __future__ import annotations

from dataclasses import dataclass

from anytouch_policy.actions import CONTROL_RATE_HZ, DEFAULT_DELTA_PHI_DEG
from anytouch_policy.bounds import Interval
from anytouch_policy.errors import ConfigError

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


@dataclass(frozen=True)
class ReplayConfig:
    """Which recorded frames to re-publish."""

    episode: str  # episode directory (a finished one, or a readable .incomplete one)
    name: str = ""  # sensor name of the replayed frames; defaults to `sensor`
    sensor: str = ""  # sensor of the episode to replay; defaults to `name`, or the episode's only sensor
    loop: bool = False  # start over after the last frame

    def __post_init__(self) -> None:
        if not self.episode:
            raise ConfigError("replay episode is required (an episode directory written by the recorder)")
