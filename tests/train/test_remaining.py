"""The head's "remaining" output (train --remaining-weight): the grams the expert still poured after each tick,
read from the scale; learnt beside the decision, which it leaves to the three logits, and carried by the bundle."""

from pathlib import Path

import numpy as np
import pytest
import torch

from anytouch_policy.actions import Action
from anytouch_policy.data.topics import SCALE_MASS
from anytouch_policy.distributed import DistContext
from anytouch_policy.errors import EpisodeError
from anytouch_policy.policy.config import HeadConfig
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.sensors import SensorType
from anytouch_policy.train import TrainConfig, TrainMode
from anytouch_policy.train.config import LabelMode
from anytouch_policy.train.data import assemble, relabel, require_remaining
from anytouch_policy.train.loop import fit
from anytouch_policy.train.trainers import FrozenTrainer
from tests.train.test_conditioning import _synthetic

SENSORS = [("left", SensorType.GELSIGHT_MINI)]


def _config(**fields) -> TrainConfig:
    base = dict(bags=[Path("/synthetic")], out=Path("/synthetic/out"), encoder=Path("/synthetic/enc"),
                mode=TrainMode.FROZEN, epochs=40, batch_size=32, val_fraction=0.2, progress=False)
    return TrainConfig(**(base | fields))


@pytest.mark.parametrize("labels", [LabelMode.DEMONSTRATED, LabelMode.HINDSIGHT])
def test_the_grams_still_to_pour_are_read_from_the_scale(labels):
    """One gram per tick up to the decision at the target: at tick t, target - t grams are left; none from the
    decision on (demonstrated labels keep the retreat's ticks, at 0)."""
    ticks, _ = _synthetic([20.0, 35.0, 50.0], post=6)
    data = assemble(ticks, sensors=SENSORS, config=_config(labels=labels), skipped=[])
    for e, t in enumerate(data.ticks):
        target = t.episode.meta.target_g
        n = len(t.t_ns)
        expected = np.maximum(0.0, target - np.minimum(np.arange(n), target))
        np.testing.assert_allclose(data.remaining_g[data.episode == e], expected, atol=1e-4)
    assert len(data.remaining_g) == len(data.labels)


def test_relabelled_targets_leave_what_they_imply():
    """A hindsight target T at a tick whose decision point is p leaves max(0, T - p) grams; kept rows their own."""
    ticks, _ = _synthetic(np.linspace(20, 80, 10))
    data = assemble(ticks, sensors=SENSORS, config=_config(labels=LabelMode.HINDSIGHT), skipped=[])
    samples = data.samples_of(data.train_episodes)
    cond, labels, remaining = relabel(data, samples, np.random.default_rng(3))
    changed = cond[:, 1] != data.conditioning[samples, 1]
    assert changed.any() and (~changed).any()
    np.testing.assert_allclose(remaining[changed],
                               np.maximum(0.0, cond[changed, 1] * 100 - data.decision_g[samples][changed]), atol=1e-3)
    np.testing.assert_array_equal(remaining[~changed], data.remaining_g[samples][~changed])
    assert (remaining[labels == int(Action.RETRACT)] == 0).all()  # retract exactly where nothing is left


def test_episodes_without_a_scale_or_a_retract_leave_it_unknown_and_training_says_so():
    ticks, _ = _synthetic([30.0, 40.0])
    for t in ticks:
        del t.episode.series[SCALE_MASS]
    data = assemble(ticks, sensors=SENSORS, config=_config(), skipped=[])
    assert np.isnan(data.remaining_g).all()
    with pytest.raises(EpisodeError, match="--remaining-weight needs .*'scale/mass'"):
        require_remaining(data)
    never, _ = _synthetic([30.0, 40.0])
    cut = [type(t)(episode=t.episode, t_ns=t.t_ns[:20], actions=t.actions[:20], windows=t.windows[:20],
                   dropped_ticks=0) for t in never]  # the pours stop before any RETRACT
    assert np.isnan(assemble(cut, sensors=SENSORS, config=_config(), skipped=[]).remaining_g).all()


def _train_head(weight: float, seed: int = 0):
    ticks, emb = _synthetic(np.linspace(20, 80, 25))
    config = _config(remaining_weight=weight)
    data = assemble(ticks, sensors=SENSORS, config=config, skipped=[])
    kept = [e[:len(t.t_ns)] for e, t in zip(emb, data.ticks, strict=True)]  # the ticks up to each decision
    torch.manual_seed(seed)
    head = PolicyHead(HeadConfig(sensors=1, embed_dim=8, reference=True, conditioning=2, remaining=weight > 0))
    history, _ = fit(FrozenTrainer(config, data, head, kept, torch.device("cpu")), data, config, DistContext(),
                     log=lambda _text: None)
    return head.eval(), history, data


def test_the_head_learns_the_remaining_grams_beside_its_decision():
    """Embedding dimension 0 is the poured mass: the remaining grams are target - poured, which the head reads with
    its target input. Its validation RMSE falls well below the target's own spread; a head without the output
    reports none, and both decide from three logits."""
    head, history, data = _train_head(1.0)
    spread = float(np.nanstd(data.remaining_g))
    rmse = [m.val_remaining_rmse_g for m in history.epochs]
    assert all(r is not None for r in rmse) and rmse[-1] < 0.25 * spread < rmse[0], (rmse, spread)
    assert history.epochs[-1].to_dict()["val_remaining_rmse_g"] == rmse[-1]
    assert "remaining rmse" in history.epochs[-1].report()

    seen = torch.from_numpy(_synthetic([60.0], noise=0.0)[1][0])
    with torch.no_grad():
        out = head(seen[[20, 40]], seen[[0, 0]], torch.tensor([[1.0, 0.6], [1.0, 0.6]]))
    assert out.shape == (2, 4) and head.decision_logits(out).shape == (2, 3)
    estimate = head.remaining_g(out)
    assert estimate is not None
    assert estimate[0] - estimate[1] == pytest.approx(20.0, abs=6.0)  # 40 g then 20 g left

    plain, plain_history, _ = _train_head(0.0)
    assert plain_history.epochs[-1].val_remaining_rmse_g is None
    with torch.no_grad():
        assert plain.remaining_g(plain(seen[[20]], seen[[0]], torch.tensor([[1.0, 0.6]]))) is None


def test_a_bundle_with_the_output_reports_its_estimate(tmp_path, tiny_encoder):
    """Bags -> `train --remaining-weight 1` -> bundle -> PolicyRuntime: the config records the output, and every
    decision carries a non-negative estimate of the grams still to pour."""
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.policy.bundle import read_policy_config
    from anytouch_policy.policy.runtime import PolicyRuntime
    from anytouch_policy.sim.sensor_params import SensorSpec
    from anytouch_policy.train import train

    bags = tmp_path / "bags"
    record_expert_episodes(bags, episodes=3, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")], seed=0)
    result = train(TrainConfig(bags=[bags], out=tmp_path / "policy", encoder=tiny_encoder, epochs=3,
                               remaining_weight=1.0, cache_dir=tmp_path / "cache", threads=1, progress=False),
                   log=lambda _text: None)
    config = read_policy_config(result.bundle)
    assert config.head.remaining and config.head.outputs == 4
    assert result.summary["hyper"]["remaining_weight"] == 1.0
    assert result.best.val_remaining_rmse_g is not None and np.isfinite(result.best.val_remaining_rmse_g)

    runtime = PolicyRuntime.from_bundle(result.bundle, threads=1)
    frames = [np.full((240, 320, 3), 100 + 10 * i, np.uint8) for i in range(3)]
    decision = runtime.decide_windows({config.sensors[0].name: frames}, initial_g=100.0, target_g=60.0)
    assert decision.remaining_g is not None and decision.remaining_g >= 0.0
    assert decision.probs.shape == (3,) and decision.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_embeddings_that_do_not_match_the_ticks_are_refused():
    """Hindsight labels cut each episode at its decision: embeddings of the whole episode would shift every later
    episode's samples onto other ticks' embeddings, silently."""
    ticks, emb = _synthetic([20.0, 30.0])
    config = _config(labels=LabelMode.HINDSIGHT)
    data = assemble(ticks, sensors=SENSORS, config=config, skipped=[])
    head = PolicyHead(HeadConfig(sensors=1, embed_dim=8, reference=True, conditioning=2))
    with pytest.raises(ValueError, match=r"embeddings per episode \[31, 41\] do not match the episodes' ticks"):
        FrozenTrainer(config, data, head, emb, torch.device("cpu"))
