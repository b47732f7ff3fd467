"""What training refuses: a --out it may not replace (before any work), NaN anywhere (cache, loss, weights), the
same episode reached twice; on real expert bags."""

import shutil

import numpy as np
import pytest
import torch

from anytouch_policy.cli.main import main
from anytouch_policy.distributed import DistContext
from anytouch_policy.errors import ConfigError, TrainingError
from anytouch_policy.policy.config import HeadConfig
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.train import TrainConfig, TrainMode, train
from anytouch_policy.train.data import prepare
from anytouch_policy.train.loop import fit
from anytouch_policy.train.trainers import FrozenTrainer


def _config(bags, out, encoder, cache, **kw):
    return TrainConfig(bags=bags if isinstance(bags, list) else [bags], out=out, encoder=encoder,
                       mode=TrainMode.FROZEN, epochs=1, batch_size=16, cache_dir=cache, progress=False, hidden=16,
                       **kw)


def _cli(bags, out, encoder, *extra):
    return ["train", "--bags", str(bags), "--encoder", str(encoder), "--out", str(out), "--epochs", "1",
            "--hidden", "16", "--no-progress", "--cache-dir", str(out.parent / "cache"), *extra]


def test_overwrite_never_deletes_the_bags(tmp_path, expert_bags, tiny_encoder, capsys):
    """The reported accident: `--out <bags> --overwrite` deleted every recorded episode (an unconditional rmtree)."""
    bags = tmp_path / "bags"
    shutil.copytree(expert_bags, bags)
    before = sorted(p.name for p in bags.iterdir())
    assert main(_cli(bags, bags, tiny_encoder, "--overwrite")) == 2
    err = capsys.readouterr().err
    assert f"refusing to write into {bags}: it is not a policy bundle (no config.json, model.safetensors" in err
    assert sorted(p.name for p in bags.iterdir()) == before
    # the encoder bundle it trains from is not a policy bundle either
    assert main(_cli(bags, tiny_encoder, tiny_encoder, "--overwrite")) == 2
    assert "kind is 'anytouch-encoder', not 'anytouch-policy'" in capsys.readouterr().err


def test_an_existing_out_is_refused_before_any_work(tmp_path, expert_bags, tiny_encoder, capsys):
    out = tmp_path / "policy"
    assert main(_cli(expert_bags, out, tiny_encoder)) == 0
    first = (out / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(_cli(expert_bags, out, tiny_encoder, "--seed", "3")) == 2
    captured = capsys.readouterr()
    assert f"{out} already holds a policy bundle; pass --overwrite to replace it" in captured.err
    assert "episodes" not in captured.out and "epoch" not in captured.out  # refused before reading a bag
    assert main(_cli(expert_bags, out, tiny_encoder, "--seed", "3", "--overwrite")) == 0
    assert (out / "model.safetensors").read_bytes() != first and (out / "training_curves.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "policy"]  # no staging folder left


def test_a_cache_dir_that_cannot_hold_files_is_refused_before_any_work(tmp_path, expert_bags, tiny_encoder, capsys):
    (tmp_path / "afile").write_text("x")
    args = _cli(expert_bags, tmp_path / "policy", tiny_encoder)
    for bad, why in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "cannot create")):
        assert main([*args[:-1], str(bad)]) == 2
        captured = capsys.readouterr()
        assert "--cache-dir" in captured.err and why in captured.err
        assert "episodes" not in captured.out  # refused before reading a bag
    assert not (tmp_path / "policy").exists()


@pytest.mark.parametrize("extra", [["--finetune", "last:2"], ["--encoder-lr", "0.1"], ["--amp"], ["--no-augment"],
                                   ["--hflip", "0.5"]])
def test_fine_tune_flags_on_a_frozen_run_are_refused(tmp_path, expert_bags, tiny_encoder, capsys, extra):
    assert main([*_cli(expert_bags, tmp_path / "policy", tiny_encoder), *extra]) == 2
    err = capsys.readouterr().err
    named = {"--no-augment": "--no-augment/--hflip", "--hflip": "--no-augment/--hflip"}.get(extra[0], extra[0])
    assert f"error: {named} apply to --mode finetune only" in err
    assert not (tmp_path / "policy").exists()


def test_fine_tune_flags_are_taken_with_mode_finetune(tmp_path, tiny_encoder):
    from anytouch_policy.cli.train import check_mode_flags

    config = TrainConfig(bags=[tmp_path], out=tmp_path / "p", encoder=tiny_encoder, mode=TrainMode.FINETUNE,
                         finetune="last:2", encoder_lr=0.1, amp=True, augment=None)
    check_mode_flags(config)  # no error
    check_mode_flags(TrainConfig(bags=[tmp_path], out=tmp_path / "p", encoder=tiny_encoder))  # defaults: fine


def test_nan_in_the_embedding_cache_stops_training(tmp_path, expert_bags, tiny_encoder, capsys):
    cache = tmp_path / "cache"
    train(_config(expert_bags, tmp_path / "a", tiny_encoder, cache))
    poisoned = sorted(cache.rglob("*.npy"))[0]
    emb = np.load(poisoned)
    emb[0, 0] = np.nan
    np.save(poisoned, emb)
    with pytest.raises(TrainingError, match=f"{poisoned}: the cached embeddings of .* hold NaN or inf; delete "):
        train(_config(expert_bags, tmp_path / "b", tiny_encoder, cache))
    assert not (tmp_path / "b").exists()
    capsys.readouterr()
    assert main(_cli(expert_bags, tmp_path / "c", tiny_encoder)) == 2
    assert "hold NaN or inf" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_a_non_finite_loss_stops_the_loop(tmp_path, expert_bags, tiny_encoder):
    config = _config(expert_bags, tmp_path / "p", tiny_encoder, None, use_cache=False)
    data = prepare(config, log=lambda text: None)
    head = PolicyHead(HeadConfig(sensors=1, embed_dim=32, reference=True, conditioning=2, hidden=16, layers=1))
    embeddings = [np.ones((len(t.t_ns), 1, 32), np.float32) for t in data.ticks]
    embeddings[data.train_episodes[0]][3, 0, 5] = np.inf  # one bad value in one training window
    trainer = FrozenTrainer(config, data, head, embeddings, torch.device("cpu"))
    with pytest.raises(TrainingError, match="the training loss is not finite at epoch 1, step"):
        fit(trainer, data, config, DistContext(), log=lambda text: None)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lr", float("nan"), "lr must be in"), ("lr", float("inf"), "lr must be in"), ("lr", 5.0, "lr must be in"),
    ("encoder_lr", float("nan"), "encoder_lr must be in"), ("weight_decay", float("nan"), "weight_decay must"),
    ("dropout", float("nan"), "dropout must be in"), ("val_fraction", 1.0, "val_fraction must be in"),
    ("threads", 0, "threads must be >= 1"), ("preset", "anytouch-huge", "unknown encoder preset"),
])
def test_config_refuses_non_finite_and_out_of_range_values(tmp_path, field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(bags=[tmp_path], out=tmp_path / "o", **{"preset": "anytouch-tiny", field: value})


def test_the_same_episode_through_several_paths_is_used_once(tmp_path, expert_bags, tiny_encoder):
    one = sorted(expert_bags.iterdir())[0]
    (tmp_path / "link").symlink_to(expert_bags)
    config = _config([expert_bags, expert_bags, one, tmp_path / "link"], tmp_path / "p", tiny_encoder, None)
    data = prepare(config, log=lambda text: None)
    assert len(data.ticks) == len(list(expert_bags.iterdir())) == 3
    assert len({t.episode.path.resolve() for t in data.ticks}) == 3
    names = [data.ticks[i].episode.path.name for i in data.train_episodes + data.val_episodes]
    assert len(names) == len(set(names))  # so no episode is both trained and validated on

