"""A `last:N` fine-tune on stored frozen-block states computes what running every block computes."""

import copy

import numpy as np
import pytest
import torch

from anytouch_policy.model.bundle import load_encoder_bundle
from anytouch_policy.policy.config import HeadConfig
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.train import Augment, TrainConfig, TrainMode, train
from anytouch_policy.train.data import prepare
from anytouch_policy.train.trainers import CachedPrefixTrainer, FinetuneTrainer


def config(bags, out, encoder, **kw):
    base = dict(bags=[bags], out=out, encoder=encoder, mode=TrainMode.FINETUNE, finetune="last:1", epochs=1,
                batch_size=16, episodes_per_batch=2, progress=False, hidden=32)
    return TrainConfig(**(base | kw))


def trainers(cfg, encoder_dir):
    data = prepare(cfg, log=lambda _text: None)
    bundle = load_encoder_bundle(encoder_dir)
    torch.manual_seed(0)
    head = PolicyHead(HeadConfig(sensors=1, embed_dim=bundle.config.output_dim, reference=True,
                                 conditioning=len(cfg.conditioning), hidden=32, dropout=0.0))  # no random part
    slots, cpu = [3], torch.device("cpu")
    every = FinetuneTrainer(cfg, data, copy.deepcopy(head), copy.deepcopy(bundle.encoder), slots, cpu, 0)
    cached = CachedPrefixTrainer(cfg, data, head, bundle.encoder, slots, cpu, 0)
    return data, every, cached


def test_stored_states_give_the_same_logits_and_gradients(tmp_path, expert_bags, tiny_encoder):
    cfg = config(expert_bags, tmp_path / "p", tiny_encoder, augment=None)
    data, every, cached = trainers(cfg, tiny_encoder)
    assert cached.states.shape[0] == 1  # no augmentation: one view
    assert cached.start == load_encoder_bundle(tiny_encoder).config.layers - 1
    idx = data.samples_of(data.train_episodes)[::7]
    for train_step in (False, True):  # train=True: no draw to differ in without augmentation
        a = every.forward(idx, train=train_step)
        b = cached.forward(idx, train=train_step)
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    a.sum().backward()
    b.sum().backward()
    grads = {n: p.grad for n, p in every.net.named_parameters() if p.grad is not None}
    mine = {n: p.grad for n, p in cached.net.named_parameters() if p.grad is not None}
    assert grads.keys() == mine.keys() and any(n.startswith("encoder.transformer.resblocks.1") for n in mine)
    assert not any(n.startswith("encoder.transformer.resblocks.0") or n == "encoder.tubelet.weight" for n in mine)
    for name, grad in grads.items():
        torch.testing.assert_close(mine[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_each_training_batch_takes_one_stored_draw_per_episode(tmp_path, expert_bags, tiny_encoder):
    cfg = config(expert_bags, tmp_path / "p", tiny_encoder, augment=Augment(brightness=0.3), prefix_draws=3)
    data, _, cached = trainers(cfg, tiny_encoder)
    assert cached.states.shape[0] == 4  # one view without augmentation, three draws
    views = cached.states[:, data.first]  # each episode's reference tick in every view
    assert all(not torch.equal(views[0], views[v]) for v in range(1, 4))  # the draws differ from the clean view
    idx = data.samples_of(data.train_episodes)
    clean = cached.forward(idx, train=False)
    torch.testing.assert_close(cached.forward(idx, train=False), clean)  # validation always reads view 0
    drawn = cached.forward(idx, train=True)
    assert not torch.allclose(drawn, clean)


def test_which_fine_tunes_store_their_frozen_blocks(tmp_path, expert_bags, tiny_encoder):
    def stores(**kw):
        return config(expert_bags, tmp_path / "x", tiny_encoder, **kw).stores_frozen_blocks

    assert stores(augment=None)  # nothing but the time changes
    assert not stores()  # colour jitter: a fresh draw per batch, every block at every step
    assert stores(prefix_draws=2)  # unless stored draws are asked for
    assert not stores(finetune="all", augment=None)  # every block trains
    assert not TrainConfig(bags=[expert_bags], out=tmp_path / "f", encoder=tiny_encoder,
                           finetune="last:1", augment=None).stores_frozen_blocks  # frozen mode caches embeddings


def test_a_cached_fine_tune_trains_and_is_deterministic(tmp_path, expert_bags, tiny_encoder, capsys):
    first = train(config(expert_bags, tmp_path / "a", tiny_encoder, epochs=2, augment=None))
    assert "their output kept in memory" in capsys.readouterr().out
    again = train(config(expert_bags, tmp_path / "b", tiny_encoder, epochs=2, augment=None))
    for key, value in first.state.items():
        assert torch.equal(again.state[key], value), key
    init = load_encoder_bundle(tiny_encoder).encoder.state_dict()
    last = "encoder.transformer.resblocks.1.mlp.c_fc.weight"
    assert not torch.equal(first.state[last], init[last.removeprefix("encoder.")])
    assert np.isfinite(first.best.val_loss)


def test_prefix_draws_is_a_fine_tune_setting(tmp_path, expert_bags, tiny_encoder):
    from anytouch_policy.cli.train import check_mode_flags
    from anytouch_policy.errors import ConfigError

    frozen = TrainConfig(bags=[expert_bags], out=tmp_path / "f", encoder=tiny_encoder, prefix_draws=4)
    with pytest.raises(ConfigError, match="--prefix-draws"):
        check_mode_flags(frozen)
    with pytest.raises(ValueError, match="prefix_draws"):
        config(expert_bags, tmp_path / "x", tiny_encoder, prefix_draws=-1)
