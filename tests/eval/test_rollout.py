"""The closed-loop harness: evaluation seeds, reports, strided windows, input checks, every frame recorded."""

import numpy as np
import pytest

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.eval.rollout import PrivilegedPolicy, WindowPolicy, evaluate, run_episode
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import EVAL_SEED_BASE, RigConfig, SeedSplit
from anytouch_policy.sim.sensor_params import SensorSpec

GS = SensorSpec.parse("gelsight_mini")


def test_evaluation_uses_the_eval_seed_range_and_is_deterministic():
    a = evaluate(ScriptedExpert(), episodes=2, seed=5)
    b = evaluate(ScriptedExpert(), episodes=2, seed=5)
    assert [e.seed for e in a.episodes] == [EVAL_SEED_BASE + 50_000, EVAL_SEED_BASE + 50_001]
    assert a.to_dict() == b.to_dict()
    train = evaluate(ScriptedExpert(), episodes=1, seed=5, split=SeedSplit.TRAIN)
    assert train.episodes[0].seed == 50_000
    row = a.to_dict()["episodes"][0]
    assert row["error_g"] == pytest.approx(row["poured_g"] - 60.0, abs=1e-6)
    assert "mean error" in a.table()


def test_a_window_policy_sees_strided_windows_of_consecutive_frames():
    seen = []

    def decide(window):
        seen.append(window)
        return Action.POUR

    policy = WindowPolicy(decide, sensor=GS.name, stride=2)
    assert policy.history_frames == 5
    calls = []

    class Spy:
        history_frames = policy.history_frames
        resets = 0

        def reset(self):
            self.resets += 1

        def __call__(self, frames):
            calls.append(frames)
            return policy(frames)

    spy = Spy()
    assert not isinstance(spy, PrivilegedPolicy)  # a learned policy never sees the ground truth
    ep = run_episode(spy, config=RigConfig(max_ticks=25), sensors=[GS], seed=3, target_g=60.0)
    assert spy.resets == 1
    assert ep.steps == 25 and ep.timed_out
    assert calls[0] == {GS.name: []}  # nothing rendered before the first tick
    later = calls[5][GS.name]
    assert len(later) == 5 and all(b.stamp_ns - a.stamp_ns == 40_000_000 for a, b in zip(later, later[1:],
                                                                                           strict=False))
    assert all(len(w) == 3 for w in seen)
    assert np.array_equal(seen[-1][-1], calls[-1][GS.name][-1].image)  # the newest frame closes the window
    assert np.array_equal(seen[-1][0], calls[-1][GS.name][-5].image)


def test_harness_validates_its_inputs():
    with pytest.raises(ConfigError, match="target_g"):
        evaluate(ScriptedExpert(), episodes=1, initial_g=50.0, target_g=60.0)
    with pytest.raises(ConfigError, match="episodes"):
        evaluate(ScriptedExpert(), episodes=0)
    with pytest.raises(ConfigError, match="no frames from sensor"):
        WindowPolicy(lambda w: Action.WAIT, sensor="nope")({"other": []})


def test_recording_an_expert_demonstration_renders_every_frame():
    ticks = []
    run_episode(ScriptedExpert(), config=RigConfig(max_ticks=6), sensors=[GS, SensorSpec.parse("digit:right")],
                seed=4, target_g=60.0, record_all_frames=True, on_tick=ticks.append)
    assert [len(t.frames["gelsight_mini_left"]) for t in ticks] == [5] * 6
    assert sum(len(t.frames["digit_right"]) for t in ticks) == 72
    quiet = []
    run_episode(ScriptedExpert(), config=RigConfig(max_ticks=2), sensors=[GS], seed=4, target_g=60.0,
                on_tick=quiet.append)
    assert all(t.frames[GS.name] == [] for t in quiet)  # the expert reads no frames: none rendered
    assert isinstance(ScriptedExpert(), PrivilegedPolicy) and ScriptedExpert.history_frames == 0
