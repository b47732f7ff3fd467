"""The rig's ground-truth state as one flat record of floats, so it can travel between processes.

In ROS sim mode the physics runs in the arm node and every tactile sensor renders in its own node from these
snapshots; a fixed field order lets the record ride in a sensor_msgs/JointState (names + positions) and come back
bit-identical (every value is a float64; nanosecond stamps stay exact below 2**53 ns, about 104 days).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields

from pydantic import with_config

from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import CONFIG, decode

#: Standard gravity, m/s^2 (weights in N from masses in g divide by 1000).
GRAVITY_M_S2 = 9.81


@with_config(CONFIG)
@dataclass(frozen=True)
class RigState:
    """Ground truth at one physics instant; everything a renderer needs and everything a figure reports.

    A plain dataclass: the physics builds one every step, so only what arrives from outside is checked (`from_dict`,
    through anytouch_policy.schema)."""

    t_ns: float  # sim clock, ns since the episode started
    tilt_deg: float  # cylinder tilt about the tool axis from upright
    tilt_rate_deg_s: float  # current tilt speed (signed)
    mass_left_g: float  # beads still in the cylinder
    mass_in_flight_g: float  # beads between the lip and the scale
    mass_on_scale_g: float  # beads landed in the container (the scale is tared empty)
    flow_g_s: float  # outflow at the lip over the last physics step
    critical_tilt_deg: float  # tilt at which beads start to flow for the current fill
    stream_excess_deg: float  # the stream's lagged drive (tilt - critical, followed with a lag); flows when > 0
    grip_force_n: float  # normal force of each finger on the cylinder (0 when not grasped)
    load_n: float  # weight of cylinder plus beads carried by the grasp
    torque_nmm: float  # gravity torque about the grasp point, about the tilt axis
    tare_g: float  # empty cylinder mass

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Fixed order of the fields (the JointState names)."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in zip(self.field_names(), astuple(self), strict=True)}

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> RigState:
        """Inverse of to_dict; the error names every missing or unknown field and every value that is no number."""
        return decode(cls, dict(values), where="RigState", dotted=True)

    def to_list(self) -> list[float]:
        """Values in field_names() order (the JointState positions)."""
        return [float(v) for v in astuple(self)]

    @classmethod
    def from_lists(cls, names: Sequence[str], values: Sequence[float]) -> RigState:
        """Rebuild from parallel name/value lists (JointState names/positions, in any order)."""
        if len(names) != len(values):
            raise ConfigError(f"RigState: {len(names)} names but {len(values)} values")
        return cls.from_dict(dict(zip(names, values, strict=True)))

    @property
    def mass_out_g(self) -> float:
        """Beads that have left the cylinder (in flight or landed)."""
        return self.mass_in_flight_g + self.mass_on_scale_g
