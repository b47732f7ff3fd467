"""Evaluation episodes in worker processes (EpisodePool) give exactly the reports, traces and progress order of the
same episodes run one by one in this process: for the scripted expert and for a trained policy bundle, whose
workers load the bundle again and run one torch thread each."""

import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.eval.policy import evaluate_policy
from anytouch_policy.eval.rollout import EpisodePool, WindowPolicy, evaluate
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.sensor_params import SensorSpec


def test_the_expert_on_two_workers_gives_the_sequential_reports_in_order():
    seen = []
    alone = evaluate(ScriptedExpert(), episodes=4, seed=3)
    with EpisodePool(2) as pool:
        pooled = evaluate(ScriptedExpert(), episodes=4, seed=3, pool=pool, progress=lambda ep: seen.append(ep.index))
    assert pooled.to_dict() == alone.to_dict()
    assert seen == [0, 1, 2, 3]


@pytest.mark.parametrize("variant", ["pretrained-finetune-dynamic", "pretrained-frozen-static"])
def test_a_policy_bundle_on_two_workers_gives_the_sequential_reports_and_traces(demo, variant):
    runtime = PolicyRuntime.from_bundle(demo / "models" / variant)
    alone = evaluate_policy(runtime, episodes=3, seed=7)
    with EpisodePool(2) as pool:
        pooled = evaluate_policy(runtime, episodes=3, seed=7, pool=pool)
        again = evaluate_policy(runtime, episodes=3, seed=8, pool=pool)  # the workers serve a second evaluation
    assert pooled.report.to_dict() == alone.report.to_dict()
    assert pooled.traces == alone.traces
    assert [e.seed for e in again.report.episodes] != [e.seed for e in pooled.report.episodes]


def test_an_error_in_a_worker_reaches_the_caller():
    with EpisodePool(2) as pool, pytest.raises(ConfigError, match=r"target_g must be in \(0, initial_g=50.0\)"):
        evaluate(ScriptedExpert(), episodes=2, initial_g=50.0, target_g=60.0, pool=pool)  # checked per episode


def test_a_policy_that_cannot_go_to_a_worker_is_named_before_any_episode():
    sensor = SensorSpec.parse("gelsight_mini")
    policy = WindowPolicy(lambda window: 0, sensor=sensor.name)  # a closure: it does not pickle
    with EpisodePool(2) as pool, pytest.raises(ConfigError, match="cannot be sent to worker processes.*workers 1"):
        evaluate(policy, episodes=2, sensors=[sensor], pool=pool)
    assert evaluate(policy, episodes=1, sensors=[sensor], pool=EpisodePool(1)).episodes  # in this process it runs


@pytest.mark.parametrize("workers", [0, -2, True, 1.5])
def test_a_bad_worker_count_is_refused(workers):
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        EpisodePool(workers)
