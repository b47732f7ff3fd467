"""The one-command demo: expert demonstrations in the sim, the six cells of table 4 trained from their bags."""

from anytouch_policy.demo.config import VARIANTS, DemoConfig, Variant
from anytouch_policy.demo.record import draw_pairs, record_demonstrations, record_expert_episodes
from anytouch_policy.demo.run import DemoResult, run_demo

__all__ = ["VARIANTS", "DemoConfig", "DemoResult", "Variant", "draw_pairs", "record_demonstrations",
           "record_expert_episodes", "run_demo"]
