"""Build a device backend from a name and a flat parameter dict, e.g. from a node's ROS parameters.

    make_tactile_source("gelsight_mini", serial="2BG8-FH59", exposure=180)
    make_arm("xarm", ip="192.168.1.200", workspace_mm=[500, 200, 200, -200, 450, 150], tilt_axis="+y")
    make_gripper("robotiq", arm=arm)

Each table maps a backend name to (config dataclass, constructor taking that config); adding a backend is one
entry. Real devices (anytouch_policy.hardware) and the simulated rig (anytouch_policy.sim) meet only here, above
both. Backend modules import their vendor SDK only when a device opens, so building the tables costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import Arm, ArmLimits, Gripper, TactileSource
from anytouch_policy.hardware.cameras.digit import DigitConfig, DigitSource
from anytouch_policy.hardware.cameras.gelsight_mini import GelSightMiniConfig, GelSightMiniSource
from anytouch_policy.hardware.params import config_from_params
from anytouch_policy.hardware.replay import ReplayConfig, ReplaySource
from anytouch_policy.hardware.xarm.arm import XArmArm
from anytouch_policy.hardware.xarm.config import XArmConfig
from anytouch_policy.hardware.xarm.robotiq import RobotiqConfig, RobotiqGripper
from anytouch_policy.sim.live import LiveSimArm, LiveSimSource, SimArmConfig, SimSensorConfig

#: name -> (config dataclass, constructor taking the config)
TACTILE_SOURCES: dict[str, tuple[type, Callable[[Any], TactileSource]]] = {
    "gelsight_mini": (GelSightMiniConfig, GelSightMiniSource),
    "digit": (DigitConfig, DigitSource),
    "sim": (SimSensorConfig, LiveSimSource),
    "replay": (ReplayConfig, ReplaySource),
}

#: name -> (config dataclass, constructor taking (config, limits=))
ARMS: dict[str, tuple[type, Callable[..., Arm]]] = {
    "xarm": (XArmConfig, XArmArm),
    "sim": (SimArmConfig, LiveSimArm),
}

#: name -> (config dataclass, constructor taking (config, arm=))
GRIPPERS: dict[str, tuple[type, Callable[..., Gripper]]] = {
    "robotiq": (RobotiqConfig, RobotiqGripper),
}


def _lookup(table: dict[str, tuple[type, Callable[..., Any]]], kind: str, name: str
            ) -> tuple[type, Callable[..., Any]]:
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} backend {name!r}; valid: {', '.join(sorted(table))}") from None


def make_tactile_source(name: str, /, **params: Any) -> TactileSource:
    """A tactile source backend (not opened yet); `name` is positional-only, so name= is the sensor's name."""
    config_cls, source_cls = _lookup(TACTILE_SOURCES, "tactile source", name)
    return source_cls(config_from_params(config_cls, params, backend=name))


def make_arm(name: str, /, *, limits: ArmLimits | None = None, **params: Any) -> Arm:
    """An arm backend (not opened yet) enforcing `limits` (ArmLimits() when None)."""
    config_cls, arm_cls = _lookup(ARMS, "arm", name)
    return arm_cls(config_from_params(config_cls, params, backend=name), limits=limits)


def make_gripper(name: str, /, *, arm: Arm, **params: Any) -> Gripper:
    """A gripper backend driven through `arm` (open the arm first)."""
    config_cls, gripper_cls = _lookup(GRIPPERS, "gripper", name)
    return gripper_cls(config_from_params(config_cls, params, backend=name), arm=arm)
