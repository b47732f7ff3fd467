"""Simulated pouring rig: bead physics, tactile renderers per sensor, scripted expert, closed-loop evaluation."""

# sim.rig (SimRig) and sim.evaluate build on the device backends in hardware.sim, which build on this package:
# import those two from their own modules, so that either package can be imported first.

from anytouch_policy.sim.expert import ExpertParams, ScriptedExpert
from anytouch_policy.sim.params import (
    EpisodeSetup,
    PhysicsParams,
    Randomization,
    RigConfig,
    SeedSplit,
    episode_seed,
    sample_episode,
)
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_model import SensorModel, list_sensor_models, load_sensor_model
from anytouch_policy.sim.sensor_params import Finger, SensorParams, SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState

__all__ = [
    "EpisodeSetup",
    "ExpertParams",
    "Finger",
    "PhysicsParams",
    "Randomization",
    "RigConfig",
    "RigState",
    "ScriptedExpert",
    "SeedSplit",
    "SensorModel",
    "SensorParams",
    "SensorSpec",
    "TactileRenderer",
    "episode_seed",
    "list_sensor_models",
    "load_sensor_model",
    "sample_episode",
    "sample_sensor_params",
]
