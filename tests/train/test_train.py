"""Training end to end on real (short) expert bags: frozen with its embedding cache, finetune, and the bundles."""

import hashlib

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anytouch_policy.data import read_episode
from anytouch_policy.data.samples import WindowSpec, align_episode
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import load_encoder_bundle
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.train import Augment, TrainConfig, TrainMode, train
from anytouch_policy.train.augment import to_input
from anytouch_policy.train.data import class_weights
from anytouch_policy.train.loop import LR_FLOOR
from anytouch_policy.train.run import CURVES_FILE, LOG_FILE, init_encoder_bundle


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frozen_config(bags, out, encoder, cache, **kw):
    return TrainConfig(bags=[bags], out=out, encoder=encoder, mode=TrainMode.FROZEN, epochs=3, batch_size=16,
                       cache_dir=cache, progress=False, hidden=32, **kw)


def test_frozen_training_cache_and_runtime(tmp_path, expert_bags, tiny_encoder, capsys):
    cache = tmp_path / "cache"
    first = train(frozen_config(expert_bags, tmp_path / "a", tiny_encoder, cache))
    printed = capsys.readouterr().out
    assert "confusion (rows true, cols predicted)" in printed and "recall pour" in printed
    assert first.cache.misses > 0 and first.cache.hits == 0 and first.cache.windows_encoded > 0
    bundle = first.bundle
    for name in ("config.json", "model.safetensors", "encoder/config.json", CURVES_FILE, LOG_FILE):
        assert (bundle / name).is_file(), name
    assert len(first.history.epochs) == 3 and first.summary["best_epoch"] == first.best.epoch
    config = frozen_config(expert_bags, tmp_path / "a", tiny_encoder, cache)
    assert first.history.epochs[-1].lr == pytest.approx(LR_FLOOR * config.lr)  # the schedule ends at its floor
    assert set(first.summary["episodes"]["train"]).isdisjoint(first.summary["episodes"]["val"])

    again = train(frozen_config(expert_bags, tmp_path / "b", tiny_encoder, cache))
    assert again.cache.hits == first.cache.misses and again.cache.misses == 0 and again.cache.windows_encoded == 0
    assert sha(bundle / "model.safetensors") == sha(again.bundle / "model.safetensors")  # deterministic by seed

    other = init_encoder_bundle("anytouch-tiny", tmp_path / "other-encoder", seed=7)
    changed = train(frozen_config(expert_bags, tmp_path / "c", other, cache))
    assert changed.cache.hits == 0 and changed.cache.misses == first.cache.misses  # a new encoder misses

    # The bundle decides on raw frames from a bag exactly as on the embeddings of its own encoder runtime.
    runtime = PolicyRuntime.from_bundle(bundle, device="cpu")
    episode = read_episode(sorted(p for p in expert_bags.iterdir())[0])
    ticks = align_episode(episode, sensors=runtime.sensor_names, spec=WindowSpec(frames=3))
    frames = episode.load_frames(runtime.sensor_names[0], np.unique(ticks.windows).tolist())
    name = runtime.sensor_names[0]
    reference = {name: [frames[int(i)] for i in ticks.windows[0, 0]]}
    window = {name: [frames[int(i)] for i in ticks.windows[-1, 0]]}
    by_windows = runtime.decide_windows(window, initial_g=100, target_g=60, reference_windows=reference)
    encoder = runtime.encoder_runtime(device="cpu")
    kind = runtime.sensors[0][1]
    emb = encoder.embed([window[name], reference[name]], [kind, kind])
    by_embeddings = runtime.decide_embeddings({name: emb[0]}, initial_g=100, target_g=60, reference={name: emb[1]})
    np.testing.assert_allclose(by_windows.probs, by_embeddings.probs, atol=1e-5)
    assert abs(float(by_windows.probs.sum()) - 1.0) < 1e-5


def test_finetune_bundle_carries_the_finetuned_encoder(tmp_path, expert_bags, tiny_encoder):
    result = train(TrainConfig(bags=[expert_bags], out=tmp_path / "ft", encoder=tiny_encoder,
                               mode=TrainMode.FINETUNE, finetune="last:1", epochs=1, batch_size=16,
                               episodes_per_batch=4, progress=False, hidden=32, augment=Augment(hflip=0.5)))
    runtime = PolicyRuntime.from_bundle(result.bundle, device="cpu").encoder_runtime(device="cpu")
    trained = {k[len("encoder."):]: v for k, v in result.state.items() if k.startswith("encoder.")}
    loaded = runtime.encoder.state_dict()
    init = load_encoder_bundle(tiny_encoder).encoder.state_dict()
    assert trained.keys() == loaded.keys()
    for key, value in trained.items():
        assert torch.equal(loaded[key], value), key
    last = "transformer.resblocks.1.mlp.c_fc.weight"
    assert not torch.equal(loaded[last], init[last])  # the last block trained
    assert torch.equal(loaded["tubelet.weight"], init["tubelet.weight"])  # last:1 leaves the input side alone
    head = load_file(result.bundle / "model.safetensors")
    assert torch.equal(head["mlp.0.weight"], result.state["head.mlp.0.weight"])
    assert result.summary["hyper"]["augment"]["hflip"] == 0.5


def test_class_weights_and_logit_adjustment(tmp_path, expert_bags, tiny_encoder):
    w = class_weights(np.array([60, 30, 10]))
    np.testing.assert_allclose(w, [100 / 180, 100 / 90, 100 / 30], rtol=1e-6)
    assert float((w * [60, 30, 10]).sum()) == pytest.approx(100.0)  # the average sample keeps weight 1
    np.testing.assert_allclose(class_weights(np.array([30, 10, 0])), [40 / 60, 40 / 20, 0.0], rtol=1e-6)
    result = train(frozen_config(expert_bags, tmp_path / "p", tiny_encoder, tmp_path / "cache"))
    counts = np.array([result.summary["train_class_counts"][k] for k in ("pour", "wait", "retract")])
    adjust = load_file(result.bundle / "model.safetensors")["logit_adjust"].numpy()
    weights = class_weights(counts)
    expected = np.where(weights > 0, -np.log(np.maximum(weights, 1e-12)), 0.0)
    np.testing.assert_allclose(adjust, expected, rtol=1e-5)


def test_augmentation_is_the_same_for_every_frame_of_an_episode():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    moved = np.roll(frame, 1, axis=1)
    windows = np.stack([np.stack([frame, frame, moved]), np.stack([frame, frame, moved]),
                        np.stack([moved, moved, moved])])[:, None]  # (3 items, K=1, T=3, S, S, 3)
    x = to_input(windows, groups=np.array([4, 4, 9]), augment=Augment(hflip=0.5), rng=np.random.default_rng(3))
    assert x.shape == (3, 1, 3, 3, 16, 16)
    assert torch.equal(x[0], x[1])  # same episode: same draw
    assert torch.equal(x[0, 0, 0], x[0, 0, 1])  # identical frames stay identical: no fake motion
    plain = to_input(windows)
    assert not torch.equal(x[0], plain[0])
    with pytest.raises(ConfigError, match="one group id per window"):
        to_input(windows, augment=Augment(), rng=np.random.default_rng(0))


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="exactly one encoder source"):
        TrainConfig(bags=[tmp_path], out=tmp_path / "o")
    with pytest.raises(ConfigError, match="TrainConfig.frames must be one of 3 or 1, got 2"):
        TrainConfig(bags=[tmp_path], out=tmp_path / "o", preset="anytouch-tiny", frames=2)
    with pytest.raises(ConfigError, match="--finetune all or last:N"):
        TrainConfig(bags=[tmp_path], out=tmp_path / "o", preset="anytouch-tiny", mode="finetune", finetune="frozen")


def test_episodes_keep_recording_order_whatever_their_folder_names(tmp_path, expert_bags, tiny_encoder):
    import shutil

    from anytouch_policy.train.data import prepare

    recorded = sorted(expert_bags.iterdir(), key=lambda p: read_episode(p).actions[0][0])
    renamed = tmp_path / "renamed"
    for i, path in enumerate(recorded):  # later recordings get names that sort first
        shutil.copytree(path, renamed / f"ep_{len(recorded) - i}")
    config = frozen_config(renamed, tmp_path / "p", tiny_encoder, tmp_path / "cache")
    names = [t.episode.path.name for t in prepare(config, log=lambda text: None).ticks]
    assert names == [f"ep_{len(recorded) - i}" for i in range(len(recorded))]


def test_select_last_saves_the_final_epoch(tmp_path, expert_bags, tiny_encoder):
    result = train(frozen_config(expert_bags, tmp_path / "p", tiny_encoder, tmp_path / "cache", select="last"))
    assert result.best.epoch == 3 and result.summary["best_epoch"] == 3
    losses = [m.val_loss for m in result.history.epochs]
    by_loss = train(frozen_config(expert_bags, tmp_path / "q", tiny_encoder, tmp_path / "cache"))
    assert by_loss.best.epoch == 1 + int(np.argmin(losses))  # same seed, same epochs: only the choice differs


def test_feature_noise_trains_the_head_on_noisy_embeddings_and_only_when_frozen(tmp_path, expert_bags, tiny_encoder):
    cache = tmp_path / "cache"

    def losses(out, **kw):
        result = train(frozen_config(expert_bags, tmp_path / out, tiny_encoder, cache, **kw))
        return [m.train_loss for m in result.history.epochs], [m.val_loss for m in result.history.epochs]

    plain, noisy, again = losses("a"), losses("b", feature_noise=3.0), losses("c", feature_noise=3.0)
    assert noisy == again  # the noise is drawn from the run's seed
    assert noisy[0][-1] > plain[0][-1]  # embeddings drowned at 3x their spread are harder to fit
    with pytest.raises(ConfigError, match="--feature-noise is for --mode frozen"):
        TrainConfig(bags=[tmp_path], out=tmp_path / "o", preset="anytouch-tiny", mode="finetune", feature_noise=0.5)
