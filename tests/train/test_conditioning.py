"""A conditioned policy must use its target (issue 14): ticks end at the decision, hindsight targets."""

from pathlib import Path

import numpy as np
import pytest
import torch

from anytouch_policy.actions import Action
from anytouch_policy.data.episode import Episode, EpisodeMeta
from anytouch_policy.data.samples import EpisodeTicks
from anytouch_policy.data.topics import SCALE_MASS
from anytouch_policy.distributed import DistContext
from anytouch_policy.policy.config import HeadConfig
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.sensors import SensorType
from anytouch_policy.train import TrainConfig, TrainMode
from anytouch_policy.train.config import LabelMode
from anytouch_policy.train.data import assemble, prepare, relabel
from anytouch_policy.train.loop import fit
from anytouch_policy.train.trainers import FrozenTrainer

TARGETS = (25.0, 55.0)


@pytest.fixture(scope="module")
def two_target_bags(tmp_path_factory):
    """Two whole expert episodes (to the end of the retract) for each of two targets, initial 100 g."""
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.sim.sensor_params import SensorSpec

    root = tmp_path_factory.mktemp("two-targets")
    for k, target in enumerate(TARGETS):
        record_expert_episodes(root / f"t{target:g}", episodes=2, target_g=target, seed=k,
                               sensors=[SensorSpec.parse("gelsight_mini")])
    return [root / f"t{target:g}" for target in TARGETS]


def test_ticks_end_at_the_decision_and_hindsight_labels_follow_the_target(two_target_bags, tiny_encoder):
    data = prepare(TrainConfig(bags=two_target_bags, out=two_target_bags[0] / "unused", encoder=tiny_encoder),
                   log=lambda _text: None)
    retract = int(Action.RETRACT)
    for e, ticks in enumerate(data.ticks):
        assert ticks.actions[-1] == retract and (ticks.actions[:-1] != retract).all()  # the decision, nothing after
        point = data.decision_g[data.episode == e]
        assert point[-1] == pytest.approx(ticks.episode.meta.target_g)  # the expert's own decision: its target
        assert (np.diff(point) >= -1e-6).all() and point[-1] - point[0] > 0.6 * ticks.episode.meta.target_g

    samples = data.samples_of(data.train_episodes)
    cond, labels, _ = relabel(data, samples, np.random.default_rng(0))
    changed = cond[:, 1] != data.conditioning[samples, 1]
    assert 0.3 < changed.mean() < 0.7  # half the samples get another target
    target_g = cond[:, 1] * 100
    point = data.decision_g[samples]
    assert ((labels == retract) == (target_g <= point))[changed].all()  # RETRACT exactly at or below the point
    assert (labels[~changed] == data.labels[samples][~changed]).all()
    assert (labels == retract).mean() > 0.2  # no longer one sample per episode


def test_one_target_keeps_the_demonstrated_labels_unless_told(two_target_bags, tiny_encoder):
    """`--labels auto` (the default) relabels only demonstrations whose targets differ: the demo's one pair keeps
    every tick with its own target; `--labels hindsight` cuts and relabels them too."""
    one = [two_target_bags[0]]
    retract = int(Action.RETRACT)
    auto = prepare(TrainConfig(bags=one, out=one[0] / "unused", encoder=tiny_encoder), log=lambda _text: None)
    assert auto.label_mode is LabelMode.DEMONSTRATED and np.isnan(auto.decision_g).all()
    assert all((t.actions == retract).sum() > 1 for t in auto.ticks)  # the retract continues to the episode's end
    samples = auto.samples_of(auto.train_episodes)
    cond, labels, _ = relabel(auto, samples, np.random.default_rng(0))
    assert (cond == auto.conditioning[samples]).all() and (labels == auto.labels[samples]).all()

    told = prepare(TrainConfig(bags=one, out=one[0] / "unused", encoder=tiny_encoder, labels=LabelMode.HINDSIGHT),
                   log=lambda _text: None)
    assert told.label_mode is LabelMode.HINDSIGHT and np.isfinite(told.decision_g).all()
    assert all((t.actions == retract).sum() == 1 for t in told.ticks)


def _synthetic(targets, *, post=10, noise=0.02, seed=0):
    """Episodes as a touch sensor sees them, without bags: one gram poured per tick up to the decision (at the
    target), then `post` ticks of retracting. Embedding: [poured / 100 + noise, retracting (what a window shows of
    the tilt going back), noise x 6]."""
    rng = np.random.default_rng(seed)
    ticks, emb = [], []
    for k, target in enumerate(targets):
        n = int(target) + 1 + post
        t_ns = np.arange(n, dtype=np.int64) * 200_000_000
        poured = np.minimum(np.arange(n, dtype=np.float64), target)
        actions = np.where(np.arange(n) > int(target) - 1, int(Action.RETRACT), int(Action.POUR))
        meta = EpisodeMeta(initial_g=100.0, target_g=float(target), sensors={"left": "gelsight_mini"})
        episode = Episode(path=Path(f"/synthetic/{k}"), meta=meta, actions=[], frame_stamps={"left": t_ns},
                          series={SCALE_MASS: (t_ns, poured)})
        ticks.append(EpisodeTicks(episode=episode, t_ns=t_ns, actions=actions.astype(np.int64),
                                  windows=np.zeros((n, 1, 3), np.int64), dropped_ticks=0))
        e = rng.normal(0.0, noise, (n, 1, 8)).astype(np.float32)
        e[:, 0, 0] += poured / 100
        e[:, 0, 1] = np.arange(n) >= int(target)
        emb.append(e)
    return ticks, emb


def test_the_head_learns_to_retract_where_its_target_input_says():
    """Targets 20..80 g, one per episode; afterwards the same observation (50 g poured, still pouring) is shown
    with only the target input changed. Trained on what the expert did at each tick (every tick, own targets), the
    head times RETRACT by the tilting back it sees and its target input changes nothing; trained as now, it
    retracts for targets below the poured mass and pours on above it."""
    config = TrainConfig(bags=[Path("/synthetic")], out=Path("/synthetic/out"), encoder=Path("/synthetic/enc"),
                         mode=TrainMode.FROZEN, epochs=40, batch_size=32, val_fraction=0.2, progress=False)
    ticks, emb = _synthetic(np.linspace(20, 80, 25))
    data = assemble(ticks, sensors=[("left", SensorType.GELSIGHT_MINI)], config=config, skipped=[])
    kept = [e[:len(t.t_ns)] for e, t in zip(emb, data.ticks, strict=True)]
    torch.manual_seed(0)
    head = PolicyHead(HeadConfig(sensors=1, embed_dim=8, reference=True, conditioning=2))
    trainer = FrozenTrainer(config, data, head, kept, torch.device("cpu"))
    fit(trainer, data, config, DistContext(), log=lambda _text: None)
    head.eval()
    seen = torch.from_numpy(_synthetic([60.0], noise=0.0)[1][0])
    window, reference = seen[[50]], seen[[0]]  # 50 g poured, not retracting; the start of the pour
    with torch.no_grad():
        probs = {t: torch.softmax(head.decision_logits(head(window, reference, torch.tensor([[1.0, t / 100]]))),
                                  1)[0, int(Action.RETRACT)].item() for t in (30.0, 45.0, 55.0, 70.0)}
    assert probs[30.0] > 0.5 and probs[45.0] > 0.5 and probs[55.0] < 0.5 and probs[70.0] < 0.5, probs
    assert probs[30.0] - probs[70.0] > 0.5, probs


def test_the_bundle_latches_retract_only_for_hindsight_labels(two_target_bags, tiny_encoder, tmp_path):
    """A head trained on the ticks up to the decision is never asked what follows it, so its bundle latches RETRACT;
    one trained on every tick (the demonstrated labels) learnt the retreat and decides every tick afresh."""
    from anytouch_policy.policy.bundle import read_policy_config
    from anytouch_policy.train import train

    latch = {}
    for name, bags in (("both", two_target_bags), ("one", [two_target_bags[0]])):
        result = train(TrainConfig(bags=bags, out=tmp_path / name, encoder=tiny_encoder, mode=TrainMode.FROZEN,
                                   epochs=1, threads=1, progress=False, cache_dir=tmp_path / "cache"),
                       log=lambda _text: None)
        config = read_policy_config(result.bundle)
        latch[name] = (config.training["labels"], config.retract_latch)
    assert latch == {"both": ("hindsight", True), "one": ("demonstrated", False)}
