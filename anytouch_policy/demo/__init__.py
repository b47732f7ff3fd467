"""The one-command demo: expert demonstrations in the sim, four policies trained from their bags, table 4."""

from anytouch_policy.demo.record import draw_pairs, record_demonstrations, record_expert_episodes
from anytouch_policy.demo.run import VARIANTS, DemoConfig, DemoResult, Variant, run_demo

__all__ = ["VARIANTS", "DemoConfig", "DemoResult", "Variant", "draw_pairs", "record_demonstrations",
           "record_expert_episodes", "run_demo"]
