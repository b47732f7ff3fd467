"""Simulated pouring rig: bead physics, tactile renderers per sensor, simulated devices, scripted expert.

It may import hardware.base (the interfaces its devices implement) and nothing else of hardware; closed-loop
evaluation on it lives in anytouch_policy.eval."""

from anytouch_policy.sim.episode import EpisodeSetup, sample_episode
from anytouch_policy.sim.expert import ExpertParams, ScriptedExpert
from anytouch_policy.sim.params import PhysicsParams, Randomization, RigConfig, SeedSplit, episode_seed
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
