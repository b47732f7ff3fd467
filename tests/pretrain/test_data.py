"""Manifests, clips cut from recorded bags, clip-consistent augmentation, pools and the per-epoch batch plan."""

import json

import cv2
import numpy as np
import pytest
import torch

from anytouch_policy.errors import ConfigError
from anytouch_policy.pretrain.augment import augment_touch, touch_tensor
from anytouch_policy.pretrain.bag_clips import clip_starts, load_bag_clips
from anytouch_policy.pretrain.config import ClipKind
from anytouch_policy.pretrain.dataset import MatchBatch, PoolKind, PretrainDataset, TouchBatch, collate
from anytouch_policy.pretrain.manifest import find_manifests, read_manifest
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import resize_rgb


def test_manifest_records(dataset_dir):
    records = read_manifest(find_manifests([str(dataset_dir)])[0])
    assert len(records) == 24  # 3 objects x 2 positions x 2 sensors x (static + video)
    static = [r for r in records if r.kind is ClipKind.STATIC]
    video = [r for r in records if r.kind is ClipKind.VIDEO]
    assert len(static) == len(video) == 12 and all(len(r.touch) == 4 for r in video)
    first = records[0]
    assert first.sensor is SensorType.DIGIT and first.vision.is_file() and first.text.startswith("object o0")
    assert first.match_group == (str(dataset_dir / "manifest.jsonl"), "o0", "p0")


@pytest.mark.parametrize("line, message", [
    ({"sensor": "digit"}, "missing required field.s. touch"),
    ({"touch": "a.png", "sensor": "tac3d"}, "field sensor: unknown sensor name 'tac3d'"),
    ({"touch": ["a.png"] * 3, "sensor": "digit"}, "list of 4 frame paths"),
    ({"touch": "missing.png", "sensor": "digit"}, "touch file not found"),
    ({"touch": "a.png", "sensor": "digit", "colour": 1}, "unknown field.s. colour; valid: touch, sensor"),
    ({"touch": "a.png", "sensor": "digit", "text": "  "}, "field text is empty"),
    ({"touch": "a.png", "sensor": "digit", "vision": 3}, "field vision must be a string, got 3"),
])
def test_bad_manifest_lines_name_the_line_and_field(tmp_path, synth, line, message):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), synth.pattern(0))
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps({"touch": "a.png", "sensor": "digit"}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ConfigError, match=f"manifest.jsonl:2: .*{message}"):
        read_manifest(path)


def test_missing_or_empty_manifest(tmp_path):
    with pytest.raises(ConfigError, match="dataset manifest not found"):
        find_manifests([str(tmp_path)])
    (tmp_path / "manifest.jsonl").write_text("\n")
    with pytest.raises(ConfigError, match="holds no samples"):
        read_manifest(tmp_path / "manifest.jsonl")
    (tmp_path / "manifest.jsonl").write_text("{oops\n")
    with pytest.raises(ConfigError, match="manifest.jsonl:1: not valid JSON"):
        read_manifest(tmp_path / "manifest.jsonl")


def test_bag_clips_follow_stride_hop_and_episode_sensor_types(tmp_path, synth):
    synth.write_episode(tmp_path, "ep0", frames=12, sensors={"left": "gelsight_mini", "right": "digit"})
    synth.write_episode(tmp_path, "ep1", frames=5, sensors={"left": "gelsight_mini"}, seed=5)
    assert clip_starts(12, stride=2, hop=3) == [0, 3]
    bags = load_bag_clips([str(tmp_path)], size=56, stride=2, hop=3)
    assert bags.episodes == 2 and len(bags.streams) == 3
    video = [c for c in bags.clips if c.kind is ClipKind.VIDEO]
    static = [c for c in bags.clips if c.kind is ClipKind.STATIC]
    # ep0: starts 0, 3 per sensor; ep1 has 5 frames < 3 * 2 + 1, so no clip
    assert sorted((bags.names[c.stream].rsplit(":", 1)[1], c.indices) for c in video) == [
        ("left", (0, 2, 4, 6)), ("left", (3, 5, 7, 9)), ("right", (0, 2, 4, 6)), ("right", (3, 5, 7, 9))]
    assert sorted(c.indices for c in static) == [(4,), (4,), (7,), (7,)]
    sensors = {bags.names[c.stream].rsplit(":", 1)[1]: c.sensor for c in bags.clips}
    assert sensors == {"left": SensorType.GELSIGHT_MINI, "right": SensorType.DIGIT}
    clip = video[0]
    left = bags.names[clip.stream].endswith(":left")
    expected = np.roll(synth.pattern(0 if left else 1, 64), clip.indices[3], axis=1)
    assert np.array_equal(bags.frames(clip)[3], resize_rgb(expected, 56))
    only_video = load_bag_clips([str(tmp_path)], size=56, stride=1, hop=4, kinds=(ClipKind.VIDEO,))
    assert all(c.kind is ClipKind.VIDEO for c in only_video.clips) and len(only_video.clips) == 3 * 2 + 1


def test_bag_without_usable_clips_is_an_error(tmp_path, synth):
    synth.write_episode(tmp_path, "short", frames=3)
    with pytest.raises(ConfigError, match="no training clips"):
        load_bag_clips([str(tmp_path)], size=56)


def test_augmentation_is_identical_across_the_frames_of_a_clip(synth):
    frame = synth.pattern(3)
    clip = touch_tensor([frame] * 4, 56)
    seen = set()
    for seed in range(8):
        out = augment_touch(clip.clone(), torch.Generator().manual_seed(seed))
        assert all(torch.equal(out[0], out[k]) for k in range(1, 4))
        seen.add(round(float(out.mean()), 4))
        again = augment_touch(clip.clone(), torch.Generator().manual_seed(seed))
        assert torch.equal(out, again)
    assert len(seen) == 8  # the draws differ between clips


def _dataset(dataset_dir, **kw):
    records = read_manifest(dataset_dir / "manifest.jsonl")
    ds = PretrainDataset(records, image_size=56, **kw)
    ds.add_touch_pools(5)
    return ds


def test_epoch_plan_covers_each_sample_once_in_single_kind_batches(dataset_dir):
    ds = _dataset(dataset_dir)
    plan = ds.epoch_plan(0)
    assert len(plan) == ds.steps_per_epoch() == 6  # 12 static + 12 video in batches of 5 (last ones of 2)
    seen = [key[1] for batch in plan for key in batch]
    assert sorted(seen) == list(range(24))
    for batch in plan:
        kinds = {ds.samples[key[1]].kind for key in batch}
        assert len(kinds) == 1 and {key[0] for key in batch} == {batch[0][0]}
    assert ds.epoch_plan(0) == plan and ds.epoch_plan(1) != plan
    ranks = [ds.epoch_plan(0, rank=r, world_size=4) for r in range(4)]
    assert all(len(r) == 1 for r in ranks)  # 6 batches // 4 ranks
    flat = [k for r in ranks for b in r for k in b]
    assert len(flat) == len(set(flat))
    with pytest.raises(ConfigError, match="fewer than the 8 ranks"):
        ds.epoch_plan(0, rank=0, world_size=8)


def test_items_are_deterministic_per_epoch_and_collate_by_kind(dataset_dir):
    from anytouch_policy.pretrain.clip_towers import TINY_CLIP_CONFIG, build_clip

    towers = build_clip(str(TINY_CLIP_CONFIG))
    ds = _dataset(dataset_dir, tokenizer=towers.tokenizer, vision_size=56, vision_mean=towers.mean,
                  vision_std=towers.std)
    plan = ds.epoch_plan(0)
    batch = collate([ds[key] for key in plan[0]])
    assert isinstance(batch, TouchBatch) and batch.frames.shape[2:] == (3, 56, 56)
    assert batch.frames.shape[1] in (1, 4)
    assert batch.vision is None or batch.vision.shape[0] == int(batch.has_vision.sum())
    assert batch.text is None or batch.text.shape == (int(batch.has_text.sum()), 77)
    key = plan[0][0]
    assert torch.equal(ds[key]["frames"], ds[key]["frames"])
    assert not torch.equal(ds[key]["frames"], ds[(key[0], key[1], key[2] + 1)]["frames"])


def test_matching_triplets_pair_other_sensors_of_the_same_touch(dataset_dir):
    ds = _dataset(dataset_dir)
    anchors = ds.add_match_pools(3)
    assert anchors == 24  # every sample has a twin from the other sensor
    match_pools = [i for i, p in enumerate(ds.pools) if p.kind is PoolKind.MATCH]
    for pool_id in match_pools:
        pool = ds.pools[pool_id]
        for anchor in pool.members:
            a = ds.samples[anchor]
            for seed in range(3):
                pos, neg = ds.match_partners(pool, anchor, torch.Generator().manual_seed(seed))
                p, n = ds.samples[pos], ds.samples[neg]
                assert p.match_group == a.match_group and p.sensor != a.sensor and p.kind is a.kind
                assert n.match_group != a.match_group and n.kind is a.kind
    batch = collate([ds[(match_pools[0], m, 0)] for m in ds.pools[match_pools[0]].members[:3]])
    assert isinstance(batch, MatchBatch) and batch.anchor.shape == batch.negative.shape
    assert not torch.equal(batch.anchor_sensor, batch.positive_sensor)


def test_bag_clips_read_each_episode_once(tmp_path, synth):
    """The same episode through two --bags paths (twice, a parent and its child, a symlink) is cut once."""
    bags = tmp_path / "bags"
    synth.write_episode(bags, "ep0", frames=12)
    synth.write_episode(bags, "ep1", frames=12, seed=3)
    (tmp_path / "link").symlink_to(bags)
    once = load_bag_clips([str(bags)], size=56)
    again = load_bag_clips([str(bags), str(bags), str(bags / "ep1"), str(tmp_path / "link")], size=56)
    assert again.episodes == once.episodes == 2
    assert len(again.clips) == len(once.clips) and len(again.streams) == 2


def _same_image_through_three_sensors(root) -> list:
    """Four states, each one clip whose frames every sensor 'sees' identically (the same files)."""
    rng = np.random.default_rng(0)
    lines = []
    for state in range(4):
        frames = []
        for f in range(4):
            path = root / f"s{state}_{f}.png"
            cv2.imwrite(str(path), rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
            frames.append(path.name)
        for sensor in ("gelsight_mini", "digit", "gelslim"):
            lines.append(json.dumps({"touch": frames, "sensor": sensor, "object": "sc0", "position": f"t{state}"}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return read_manifest(root / "manifest.jsonl")


def test_aligned_matching_pairs_one_sensor_with_one_other_and_shows_the_positive_as_the_anchor(tmp_path):
    records = _same_image_through_three_sensors(tmp_path)
    aligned = PretrainDataset(records, image_size=56, seed=3)
    assert aligned.add_match_pools(4, aligned=True) == 12
    pools = [(i, p) for i, p in enumerate(aligned.pools) if p.kind is PoolKind.MATCH]
    assert sorted(m for _, p in pools for m in p.members) == list(range(12))  # each anchor in one pool
    for pool_id, pool in pools:
        a_slot, p_slot = pool.sensors
        assert a_slot != p_slot and pool.name.endswith(f"{a_slot}>{p_slot}")
        for anchor in pool.members:
            assert int(records[anchor].sensor) == a_slot
            for seed in range(4):
                pos, _ = aligned.match_partners(pool, anchor, torch.Generator().manual_seed(seed))
                assert int(records[pos].sensor) == p_slot
            item = aligned[(pool_id, anchor, 0)]
            # same files, one flip draw, no colour jitter: the positive is pixel for pixel the anchor
            assert torch.equal(item["anchor"][0], item["positive"][0])
    mixed = PretrainDataset(records, image_size=56, seed=3)  # the paper's draw: independent augmentation
    mixed.add_match_pools(4)
    pool_id = next(i for i, p in enumerate(mixed.pools) if p.kind is PoolKind.MATCH)
    assert mixed.pools[pool_id].sensors is None
    items = [mixed[(pool_id, a, 0)] for a in mixed.pools[pool_id].members]
    assert not all(torch.equal(it["anchor"][0], it["positive"][0]) for it in items)
