"""BagMemo: several training runs read each bag and decode each frame once, and get what reading afresh gives."""

import os
import shutil

import numpy as np
import torch

from anytouch_policy.data.episode import Episode, read_episode
from anytouch_policy.data.memo import BagMemo
from anytouch_policy.tactile import resize_rgb
from anytouch_policy.train import TrainConfig, TrainMode, train


def bag_folders(root):
    return sorted(p for p in root.iterdir() if p.is_dir())


def own_copy(expert_bags, tmp_path):
    """One bag of the session's fixture, copied: these tests change its files' times."""
    bag = bag_folders(expert_bags)[0]
    return shutil.copytree(bag, tmp_path / bag.name)


def test_episodes_are_kept_until_their_bag_changes(expert_bags, tmp_path):
    memo = BagMemo()
    path = own_copy(expert_bags, tmp_path)
    first = memo.read_episode(path)
    assert memo.read_episode(path) is first
    fresh = read_episode(path)
    assert first.actions == fresh.actions and first.meta == fresh.meta
    meta = path / "metadata.yaml"
    stat = meta.stat()
    os.utime(meta, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the bag was written again
    assert memo.read_episode(path) is not first


def test_frames_are_resized_once_and_decoded_only_when_missing(expert_bags, tmp_path, monkeypatch):
    memo = BagMemo()
    episode = memo.read_episode(own_copy(expert_bags, tmp_path))
    sensor = episode.sensors[0]
    asked: list[list[int]] = []
    real = Episode.load_frames

    def spy(self, sensor, indices):
        asked.append(sorted(indices))
        return real(self, sensor, indices)

    monkeypatch.setattr(Episode, "load_frames", spy)
    got = memo.frames(episode, sensor, [0, 1, 2], 112)
    again = memo.frames(episode, sensor, [1, 2, 3], 112)
    assert asked == [[0, 1, 2], [3]]  # the second call decoded frame 3 only
    raw = real(episode, sensor, [0, 1, 2, 3])
    for i in range(4):
        expected = resize_rgb(raw[i], 112)
        assert np.array_equal((got | again)[i], expected)
    memo.frames(episode, sensor, [0], 64)
    assert asked[-1] == [0]  # another size is another entry
    meta = episode.path / "metadata.yaml"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 1_000_000_000))
    memo.frames(episode, sensor, [1, 2], 112)
    assert asked[-1] == [1, 2]  # the bag changed: its frames are decoded again


def test_runs_sharing_a_memo_train_what_runs_without_it_train(tmp_path, expert_bags, tiny_encoder, monkeypatch):
    def config(out, mode, **kw):
        return TrainConfig(bags=[expert_bags], out=tmp_path / out, encoder=tiny_encoder, mode=mode, epochs=1,
                           batch_size=16, episodes_per_batch=2, progress=False, hidden=32, use_cache=False, **kw)

    plain = [train(config("a", TrainMode.FROZEN)), train(config("b", TrainMode.FINETUNE, finetune="last:1"))]
    memo = BagMemo()
    shared = [train(config("c", TrainMode.FROZEN), memo=memo)]
    reads: list[str] = []
    real = Episode.load_frames
    monkeypatch.setattr(Episode, "load_frames", lambda self, s, i: reads.append(s) or real(self, s, i))
    shared.append(train(config("d", TrainMode.FINETUNE, finetune="last:1"), memo=memo))
    assert reads == []  # the second run decoded nothing: the first run's frames served it
    for a, b in zip(plain, shared, strict=True):
        assert a.state.keys() == b.state.keys()
        for key in a.state:
            assert torch.equal(a.state[key], b.state[key]), key
