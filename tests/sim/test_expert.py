"""The scripted expert, run through the closed-loop harness: it reaches its targets and labels its demos."""

import pytest

from anytouch_policy.actions import Action
from anytouch_policy.eval.rollout import evaluate, run_episode
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec

GS = SensorSpec.parse("gelsight_mini")


@pytest.mark.parametrize(("initial_g", "target_g", "limit_g"), [(100.0, 60.0, 1.5), (100.0, 30.0, 3.0)])
def test_expert_reaches_the_target_on_a_few_seeds(initial_g, target_g, limit_g):
    report = evaluate(ScriptedExpert(), episodes=5, initial_g=initial_g, target_g=target_g, seed=3)
    summary = report.summary()
    assert summary["mean_abs_error_g"] <= limit_g and summary["timeouts"] == 0
    assert 30 <= summary["mean_steps"] <= 120  # short enough for the demo budget


def test_expert_demonstrations_use_all_three_labels_and_retract_last():
    ticks = []
    ep = run_episode(ScriptedExpert(), config=RigConfig(), sensors=[GS], seed=12, target_g=60.0,
                     on_tick=ticks.append)
    labels = [t.action for t in ticks]
    assert ep.steps == len(ticks) and set(labels) == set(Action)
    first_retract = labels.index(Action.RETRACT)
    assert all(a == Action.RETRACT for a in labels[first_retract:])
    assert ep.actions == {a.label: labels.count(a) for a in Action}
