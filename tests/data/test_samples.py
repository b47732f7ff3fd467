"""Training samples from bags: frames aligned to action ticks, episode splits, broken and incomplete bags."""

import json

import numpy as np
import pytest
import yaml

from anytouch_policy.actions import Action
from anytouch_policy.data import EpisodeMeta, EpisodeWriter, read_episode
from anytouch_policy.data.frames import load_frame_table
from anytouch_policy.data.samples import WindowSpec, align_episode, collect_episodes, policy_sensors, split_episodes
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.sensors import SensorType
from anytouch_policy.train.config import TrainConfig
from anytouch_policy.train.data import prepare

SEC = 1_000_000_000
MS = 1_000_000
T0 = 50 * SEC


def _frame(value: int, shape=(24, 32, 3)) -> np.ndarray:
    """A frame whose every pixel holds its index (so a decoded window says which frames it holds)."""
    return np.full(shape, value, np.uint8)


def write_known_bag(path, *, storage="mcap", complete=True):
    """Left sensor at 25 Hz (k * 40 ms), right at 10 Hz (5 + k * 100 ms), actions at 200 ms ticks.

    Log times are deliberately out of step with the header stamps (frames logged 7 ms late), so alignment must go by
    the grab stamps, as for a live recording.
    """
    meta = EpisodeMeta(initial_g=100.0, target_g=60.0, sensors={"left": "gelsight_mini", "right": "digit"})
    writer = EpisodeWriter(path, meta=meta, storage=storage).open()
    events = []
    for k in range(30):
        events.append((T0 + k * 40 * MS + 7 * MS, "left", k))
    for k in range(12):
        events.append((T0 + 5 * MS + k * 100 * MS + 7 * MS, "right", 100 + k))
    labels = [Action.POUR, Action.WAIT, Action.RETRACT]
    for j in range(6):
        events.append((T0 + j * 200 * MS, "action", j))
    for t_log, kind, value in sorted(events):
        if kind == "action":
            writer.write_action(t_log, labels[value % 3])
        else:
            offset = 5 * MS if kind == "right" else 0
            k = value - 100 if kind == "right" else value
            stamp = T0 + offset + k * (100 if kind == "right" else 40) * MS
            writer.write_image(kind, stamp, _frame(value), t_ns=t_log)
    return writer.close(complete=complete)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_windows_are_the_latest_frames_at_or_before_each_tick(tmp_path, storage):
    episode = read_episode(write_known_bag(tmp_path / "ep", storage=storage))
    ticks = align_episode(episode, sensors=["left", "right"], spec=WindowSpec(frames=3, stride=1))
    # Tick j at j*200 ms: left frame j*5 is stamped exactly at the tick (included), right frames at 5 + k*100 ms.
    # Right needs 3 frames <= t: its third frame is at 205 ms, so ticks 0 and 1 (0, 200 ms) are dropped.
    assert ticks.dropped_ticks == 2
    assert ticks.t_ns.tolist() == [T0 + j * 200 * MS for j in range(2, 6)]
    assert ticks.actions.tolist() == [Action.RETRACT, Action.POUR, Action.WAIT, Action.RETRACT]
    left = ticks.windows[:, 0].tolist()
    right = ticks.windows[:, 1].tolist()
    assert left == [[8, 9, 10], [13, 14, 15], [18, 19, 20], [23, 24, 25]]
    assert right == [[1, 2, 3], [3, 4, 5], [5, 6, 7], [7, 8, 9]]
    assert ticks.reference.tolist() == [[8, 9, 10], [1, 2, 3]]

    table = load_frame_table([ticks], sensors=["left", "right"], size=16, progress=False)
    decoded = table.frames[table.rows[0]][..., 0, 0, 0]  # pixel value = frame id
    np.testing.assert_array_equal(decoded[:, 0], np.asarray(left))
    np.testing.assert_array_equal(decoded[:, 1], np.asarray(right) + 100)


def test_stride_and_static_windows(tmp_path):
    episode = read_episode(write_known_bag(tmp_path / "ep"))
    strided = align_episode(episode, sensors=["left"], spec=WindowSpec(frames=3, stride=2))
    assert strided.dropped_ticks == 1  # tick 0 has one frame; 200 ms has frames 0..5: 1, 3, 5
    assert strided.windows[:, 0].tolist()[:2] == [[1, 3, 5], [6, 8, 10]]
    static = align_episode(episode, sensors=["left"], spec=WindowSpec(frames=1))
    assert static.dropped_ticks == 0  # frame 0 is stamped exactly at tick 0
    assert static.windows[:, 0].tolist() == [[5 * j] * 3 for j in range(6)]  # the newest frame, repeated


def test_window_spec_rejects_bad_values():
    with pytest.raises(ConfigError, match="WindowSpec.frames must be one of 3 or 1, got 2"):
        WindowSpec(frames=2)
    with pytest.raises(ConfigError, match="WindowSpec.stride must be >= 1, got 0"):
        WindowSpec(stride=0)


def test_episode_split_never_leaks_and_is_seeded():
    for count in (2, 3, 10, 41):
        for seed in range(5):
            train, val = split_episodes(count, val_fraction=0.2, seed=seed)
            assert not set(train) & set(val)
            assert sorted(train + val) == list(range(count))
            assert train and val
            assert (train, val) == split_episodes(count, val_fraction=0.2, seed=seed)
    assert {tuple(split_episodes(40, seed=s)[1]) for s in range(6)}.__len__() > 1  # the seed matters
    strata = [(100, 60)] * 8 + [(90, 40)] * 4 + [(120, 60)]
    train, val = split_episodes(len(strata), val_fraction=0.25, seed=1, strata=strata)
    assert {strata[i] for i in train} == set(strata)  # every pair is trained on
    assert not set(train) & set(val) and len(val) == 3
    with pytest.raises(ConfigError, match="at least 2 episodes"):
        split_episodes(1)


def test_split_by_pair_keeps_a_validation_share_when_pairs_do_not_repeat():
    distinct = [(80.0 + i * 0.5, 20.0 + i) for i in range(60)]  # `sim record`: every episode draws its own pair
    train, val = split_episodes(60, val_fraction=0.2, seed=0, strata=distinct)
    assert len(val) == 12 and len(train) == 48 and not set(train) & set(val)  # was 59/1
    twice = [p for p in distinct[:30] for _ in range(2)]
    train, val = split_episodes(60, val_fraction=0.2, seed=3, strata=twice)
    assert len(val) == 12 and {twice[i] for i in train} == set(twice)  # every repeated pair still trained on
    mixed = [(100.0, 60.0)] * 10 + distinct[:10]
    train, val = split_episodes(20, val_fraction=0.2, seed=1, strata=mixed)
    assert len(val) == 4 and (100.0, 60.0) in {mixed[i] for i in train}
    assert split_episodes(20, val_fraction=0.2, seed=1, strata=mixed) == (train, val)


def test_incomplete_corrupt_and_missing_topic_bags(tmp_path, capsys):
    bags = tmp_path / "bags"
    write_known_bag(bags / "good_a")
    write_known_bag(bags / "good_b")
    write_known_bag(bags / "cut", complete=False)  # closed, but marked incomplete
    with EpisodeWriter(bags / "noright", meta=EpisodeMeta(initial_g=100, target_g=60,
                                                         sensors={"left": "gelsight_mini", "right": "digit"})) as w:
        w.write_image("left", T0, _frame(1))
        w.write_action(T0, Action.WAIT)
    corrupt = write_known_bag(bags / "torn")
    mcap_file = next(corrupt.glob("*.mcap"))
    mcap_file.write_bytes(mcap_file.read_bytes()[: mcap_file.stat().st_size // 2])

    found = collect_episodes([bags])
    assert sorted(e.path.name for e in found.episodes) == ["good_a", "good_b"]
    assert [p.name for p, _ in found.incomplete] == ["cut.incomplete"]
    broken = dict((p.name, r) for p, r in found.broken)
    assert set(broken) == {"noright", "torn"}
    assert "noright" in broken["noright"] and "tactile/right/image_raw" in broken["noright"]
    assert "torn" in broken["torn"]

    config = TrainConfig(bags=[bags], out=tmp_path / "out", preset="anytouch-tiny")
    with pytest.raises(EpisodeError, match=r"2 bag\(s\) cannot be used") as err:
        prepare(config)
    assert "noright" in str(err.value) and "torn" in str(err.value) and "--skip-bad" in str(err.value)
    capsys.readouterr()

    config.skip_bad = True
    data = prepare(config)
    printed = capsys.readouterr().out
    assert "skipped incomplete episode" in printed and "cut.incomplete" in printed
    assert "skipped broken episode" in printed and "torn" in printed
    assert sorted(t.episode.path.name for t in data.ticks) == ["good_a", "good_b"]
    assert {b for b, _ in data.skipped} == {str(bags / "cut.incomplete"), str(bags / "noright"), str(bags / "torn")}
    assert data.train_episodes and data.val_episodes


def test_policy_sensors_need_every_episode_to_agree(tmp_path):
    a = read_episode(write_known_bag(tmp_path / "a"))
    assert policy_sensors([a]) == [("left", SensorType.GELSIGHT_MINI), ("right", SensorType.DIGIT)]
    assert policy_sensors([a], ["right"]) == [("right", SensorType.DIGIT)]
    with pytest.raises(EpisodeError, match="no sensor 'middle'"):
        policy_sensors([a], ["middle"])
    b = read_episode(write_known_bag(tmp_path / "b"))
    b.meta.sensors["left"] = "digit"
    with pytest.raises(EpisodeError, match="one sensor type per name"):
        policy_sensors([a, b], ["left"])


def _edit_meta(bag, **fields):
    """Change episode metadata fields in a finished bag's metadata.yaml (as a hand edit or another tool would)."""
    path = bag / "metadata.yaml"
    doc = yaml.safe_load(path.read_text())
    custom = doc["rosbag2_bagfile_information"]["custom_data"]
    custom["anytouch_episode"] = json.dumps(json.loads(custom["anytouch_episode"]) | fields)
    path.write_text(yaml.safe_dump(doc))


def test_bad_metadata_and_foreign_folders_are_named_and_skippable(tmp_path, capsys):
    bags = tmp_path / "bags"
    write_known_bag(bags / "good_a")
    write_known_bag(bags / "good_b")
    _edit_meta(write_known_bag(bags / "words"), target_g="sixty")
    _edit_meta(write_known_bag(bags / "upside"), target_g=150.0)
    (bags / "copied_without_metadata").mkdir()
    (bags / "copied_without_metadata" / "x.mcap").write_bytes(b"")

    found = collect_episodes([bags])
    assert sorted(e.path.name for e in found.episodes) == ["good_a", "good_b"] and not found.incomplete
    broken = {p.name: r for p, r in found.broken}
    assert "words/metadata.yaml (episode metadata): field target_g must be a number, got 'sixty'" in \
        broken["words"]
    assert "upside/metadata.yaml (episode metadata): target_g (150.0) must be > 0 and below initial_g" in \
        broken["upside"]
    assert "metadata.yaml missing" in broken["copied_without_metadata"]

    config = TrainConfig(bags=[bags], out=tmp_path / "out", preset="anytouch-tiny")
    with pytest.raises(EpisodeError, match=r"3 bag\(s\) cannot be used") as err:
        prepare(config)
    assert all(name in str(err.value) for name in ("words", "upside", "copied_without_metadata"))
    config.skip_bad = True
    data = prepare(config)
    assert sorted(t.episode.path.name for t in data.ticks) == ["good_a", "good_b"]
    assert "skipped broken episode" in capsys.readouterr().out


def test_bags_must_be_a_folder(tmp_path):
    (tmp_path / "episode.mcap").write_bytes(b"")
    with pytest.raises(EpisodeError, match="episode.mcap: a file, not a folder"):
        collect_episodes([tmp_path / "episode.mcap"])
