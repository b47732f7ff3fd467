"""`anytouch export lerobot`: sim and hand-made bags -> a LeRobotDataset v3.0 folder, read back with pyarrow.

The expectations come from LeRobot's layout as docs/export.md documents it (read from lerobot v0.6.1) and from the
project's own readers: training's alignment (`align_episode`), the episode's recorded step messages and scalar
series, and numpy over the data read back. The real `lerobot` loader is exercised outside CI
(scripts/check_lerobot_export.sh).
"""

import io
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rosbags.highlevel import AnyReader

from anytouch_policy.actions import Action
from anytouch_policy.cli.main import main
from anytouch_policy.data import EpisodeMeta, EpisodeWriter, read_episode, topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.samples import WindowSpec, align_episode, usable_episodes
from anytouch_policy.demo.record import record_expert_episodes
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.export.lerobot import ExportConfig, export_lerobot
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec

MS = 1_000_000
T0 = 50_000_000_000
MINI = "observation.images.gelsight_mini_left"
DEFAULTS = ["timestamp", "frame_index", "episode_index", "index", "task_index"]


@pytest.fixture(scope="module")
def sim_bags(tmp_path_factory):
    """Three short expert demonstrations recorded the way `anytouch demo` records them (12 ticks each)."""
    root = tmp_path_factory.mktemp("simbags")
    record_expert_episodes(root, episodes=3, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                           config=RigConfig(max_ticks=12), seed=0)
    return root


@pytest.fixture(scope="module")
def sim_export(sim_bags, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "pour-demos"
    summary = export_lerobot(ExportConfig(bags=[sim_bags], out=out, progress=False), log=lambda _: None)
    return out, summary


def _rows(out, columns=None):
    files = sorted((out / "data").glob("*/*.parquet"))
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def _episodes(out):
    return pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()


def _png(cell):
    return np.asarray(Image.open(io.BytesIO(cell["bytes"])))


def _recorded_steps(path):
    """tool-frame step (deg) of every pour/cartesian_step message, by log time, decoded here from the quaternion."""
    steps = {}
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        conns = [c for c in reader.connections if c.topic.endswith(topics.CARTESIAN_STEP)]
        for conn, t_ns, raw in reader.messages(connections=conns):
            q = reader.deserialize(raw, conn.msgtype).pose.orientation
            steps[t_ns] = math.degrees(2 * math.atan2(q.y, q.w))
    return steps


def _newest_at_or_before(times, values, t_ns):
    return values[np.searchsorted(times, t_ns, side="right") - 1]


def test_info_json_follows_the_v3_schema(sim_export):
    out, summary = sim_export
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 5 and info["robot_type"] == "anytouch_sim"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] is None and info["chunks_size"] == 1000 and info["data_files_size_in_mb"] == 100
    assert info["total_episodes"] == 3 and info["total_tasks"] == 1 and info["splits"] == {"train": "0:3"}
    features = info["features"]
    assert list(features) == [MINI, "observation.state", "observation.goal_g", "action", *DEFAULTS]
    assert features[MINI] == {"dtype": "image", "shape": [240, 320, 3], "names": ["height", "width", "channels"],
                              "info": {"is_depth_map": False, "sensor_type": "gelsight_mini"}}
    assert features["observation.state"] == {"dtype": "float32", "shape": [2], "names": ["tilt_deg", "scale_g"]}
    assert features["observation.goal_g"]["names"] == ["initial_g", "target_g"]
    assert features["action"] == {"dtype": "float32", "shape": [2], "names": ["action_index", "tilt_step_deg"]}
    for name, dtype in zip(DEFAULTS, ["float32", "int64", "int64", "int64", "int64"], strict=True):
        assert features[name] == {"dtype": dtype, "shape": [1], "names": None}
    assert all("/" not in name for name in features)
    assert info["total_frames"] == summary.frames == len(_rows(out, ["index"]))

    schema = pq.read_schema(out / "data/chunk-000/file-000.parquet")
    assert schema.field(MINI).type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("action").type == pa.list_(pa.float32(), 2)
    assert schema.field("timestamp").type == pa.float32() and schema.field("index").type == pa.int64()
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf[MINI] == {"_type": "Image"} and hf["index"] == {"dtype": "int64", "_type": "Value"}
    assert hf["observation.state"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 2, "_type": "List"}


def test_one_row_per_training_tick_with_its_frame_action_and_state(sim_bags, sim_export):
    out, summary = sim_export
    table = _rows(out).to_pylist()
    episodes = _episodes(out)
    bags, _ = usable_episodes([sim_bags], skip_bad=False, log=lambda _: None)  # recording order, as training
    assert [e["anytouch/bag"] for e in episodes] == [b.path.name for b in bags]
    assert pq.ParquetFile(out / "data/chunk-000/file-000.parquet").num_row_groups == 3  # one per episode
    start = 0
    dropped = 0
    for e, (record, episode) in enumerate(zip(episodes, bags, strict=True)):
        ticks = align_episode(episode, sensors=["gelsight_mini_left"], spec=WindowSpec())  # training's default
        dropped += ticks.dropped_ticks
        n = len(ticks.t_ns)
        assert record["episode_index"] == e and record["length"] == n
        assert (record["dataset_from_index"], record["dataset_to_index"]) == (start, start + n)
        assert (record["data/chunk_index"], record["data/file_index"]) == (0, 0)
        assert record["tasks"] == ["pour 60 g of beads from 100 g"]
        rows = table[start:start + n]
        assert [r["index"] for r in rows] == list(range(start, start + n))
        assert [r["frame_index"] for r in rows] == list(range(n))
        assert {r["episode_index"] for r in rows} == {e} and {r["task_index"] for r in rows} == {0}
        np.testing.assert_allclose([r["timestamp"] for r in rows], np.arange(n) / 5, atol=1e-6)
        newest = ticks.windows[:, 0, -1]
        frames = episode.load_frames("gelsight_mini_left", newest.tolist())
        steps = _recorded_steps(episode.path)
        tilt_t, tilt = episode.series[topics.ARM_TILT]
        mass_t, mass = episode.series[topics.SCALE_MASS]
        for i, row in enumerate(rows):
            np.testing.assert_array_equal(_png(row[MINI]), frames[int(newest[i])])
            assert row[MINI]["path"] == f"frame-{i:06d}.png"
            t = int(ticks.t_ns[i])
            assert row["action"][0] == ticks.actions[i]
            assert row["action"][1] == pytest.approx(steps[t], abs=1e-6)
            assert row["observation.state"] == pytest.approx(
                [_newest_at_or_before(tilt_t, tilt, t), _newest_at_or_before(mass_t, mass, t)], abs=1e-4)
            assert row["observation.goal_g"] == [100.0, 60.0]
        start += n
    assert summary.dropped_ticks == dropped == 3  # the first tick of each: no frame at or before it yet
    assert {r["action"][0] for r in table} >= {Action.POUR}

    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.to_pylist() == [{"task_index": 0, "task": "pour 60 g of beads from 100 g"}]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # LeRobot's task lookup


def _numpy_stats(values):
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    stats = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0), "std": values.std(0),
             "count": [len(values)]}
    stats.update({f"q{round(q * 100):02d}": np.quantile(values, q, axis=0) for q in (0.01, 0.1, 0.5, 0.9, 0.99)})
    return stats


def _image_stats(cells):
    pixels = np.stack([_png(c) for c in cells]).reshape(-1, 3).astype(np.float64) / 255.0
    stats = _numpy_stats(pixels)
    return {k: v if k == "count" else np.asarray(v).reshape(3, 1, 1) for k, v in stats.items()} | {
        "count": [len(cells)]}


def _assert_stats(written, expected):
    assert sorted(written) == sorted(expected)
    for key, value in expected.items():
        assert np.shape(written[key]) == np.shape(value), key
        np.testing.assert_allclose(written[key], value, rtol=1e-9, atol=1e-9, err_msg=key)


def test_stats_are_numpys_on_the_data_in_lerobots_convention(sim_export):
    out, _ = sim_export
    table = _rows(out).to_pydict()
    stats = json.loads((out / "meta/stats.json").read_text())
    assert sorted(stats) == sorted([MINI, "observation.state", "observation.goal_g", "action", *DEFAULTS])
    _assert_stats(stats[MINI], _image_stats(table[MINI]))  # per channel, in [0, 1], shape (3, 1, 1)
    for name in ["observation.state", "observation.goal_g", "action", *DEFAULTS]:
        _assert_stats(stats[name], _numpy_stats(table[name]))
    assert np.shape(stats["timestamp"]["mean"]) == (1,) and np.shape(stats["action"]["mean"]) == (2,)

    first = _episodes(out)[0]
    n = first["length"]
    per_episode = {name: {k.split("/")[-1]: v for k, v in first.items() if k.startswith(f"stats/{name}/")}
                   for name in stats}
    _assert_stats(per_episode[MINI], _image_stats(table[MINI][:n]))
    _assert_stats(per_episode["observation.state"], _numpy_stats(table["observation.state"][:n]))


def _write_two_sensor_bag(path, *, target_g=60.0, rate_hz=5.0, complete=True, scale=False):
    """Left at 25 Hz (k * 40 ms, pixel value k), right at 10 Hz (5 + k * 100 ms, value 100 + k), a tick every
    200 ms, tilt from 300 ms on (300 + i * 200 ms, value 10 + i); frames are logged 7 ms late (stamps rule)."""
    meta = EpisodeMeta(initial_g=100.0, target_g=target_g, sensors={"left": "gelsight_mini", "right": "digit"},
                       control_rate_hz=rate_hz)
    writer = EpisodeWriter(path, meta=meta).open()
    events = [(T0 + k * 40 * MS + 7 * MS, "left", k) for k in range(30)]
    events += [(T0 + 5 * MS + k * 100 * MS + 7 * MS, "right", k) for k in range(12)]
    events += [(T0 + j * 200 * MS, "action", j) for j in range(6)]
    events += [(T0 + 300 * MS + i * 200 * MS, "tilt", i) for i in range(5)]
    for t_log, kind, k in sorted(events):
        if kind == "action":
            writer.write_action(t_log, list(Action)[k % 3])
        elif kind == "tilt":
            writer.write_float(topics.ARM_TILT, t_log, 10.0 + k)
            if scale:
                writer.write_float(topics.SCALE_MASS, t_log, float(k))
        elif kind == "left":
            writer.write_image("left", T0 + k * 40 * MS, np.full((24, 32, 3), k, np.uint8), t_ns=t_log)
        else:
            writer.write_image("right", T0 + 5 * MS + k * 100 * MS, np.full((32, 24, 3), 100 + k, np.uint8),
                               t_ns=t_log)
    return writer.close(complete=complete)


def test_two_sensors_scalar_state_two_tasks_and_one_file_per_episode(tmp_path):
    bags = tmp_path / "bags"
    for name, target in [("a", 60.0), ("b", 40.0), ("c", 60.0)]:
        _write_two_sensor_bag(bags / name, target_g=target)
    out = tmp_path / "ds"
    summary = export_lerobot(ExportConfig(bags=[bags], out=out, png_level=0, progress=False), data_file_size_mb=1e-4,
                             log=lambda _: None)
    # Tick 0 (0 ms) has no right frame, tick 1 (200 ms) no tilt yet: rows are ticks 2..5 of each episode.
    assert summary.dropped_ticks == 6 and summary.frames == 12 and summary.data_files == 3
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.state"] == {"dtype": "float32", "shape": [1], "names": ["tilt_deg"]}
    assert info["features"]["observation.images.right"]["shape"] == [32, 24, 3]
    assert info["features"]["observation.images.right"]["info"]["sensor_type"] == "digit"
    assert sorted(p.relative_to(out).as_posix() for p in (out / "data").rglob("*.parquet")) == [
        f"data/chunk-000/file-00{i}.parquet" for i in range(3)]
    assert [(e["data/file_index"], e["dataset_from_index"]) for e in _episodes(out)] == [(0, 0), (1, 4), (2, 8)]
    table = _rows(out).to_pylist()
    schema = pq.read_schema(out / "data/chunk-000/file-001.parquet")
    assert schema.field("observation.state").type == pa.float32()  # shape [1] is a plain column, as in LeRobot
    for e in range(3):
        rows = table[4 * e:4 * e + 4]
        assert [int(_png(r["observation.images.left"])[0, 0, 0]) for r in rows] == [10, 15, 20, 25]
        assert [int(_png(r["observation.images.right"])[0, 0, 0]) for r in rows] == [103, 105, 107, 109]
        assert [r["observation.state"] for r in rows] == [10.0, 11.0, 12.0, 13.0]
        assert [r["action"][0] for r in rows] == [2.0, 0.0, 1.0, 2.0]  # retract, pour, wait, retract
        assert [r["action"][1] for r in rows] == [-0.25, 0.25, 0.0, -0.25]
    tasks = pq.read_table(out / "meta/tasks.parquet").to_pylist()
    assert tasks == [{"task_index": 0, "task": "pour 60 g of beads from 100 g"},
                     {"task_index": 1, "task": "pour 40 g of beads from 100 g"}]
    assert [r["task_index"] for r in table] == [0] * 4 + [1] * 4 + [0] * 4
    assert [e["tasks"] for e in _episodes(out)][1] == ["pour 40 g of beads from 100 g"]


def _bad_bags(root):
    _write_two_sensor_bag(root / "good_a")
    _write_two_sensor_bag(root / "good_b")
    _write_two_sensor_bag(root / "cut", complete=False)
    torn = _write_two_sensor_bag(root / "torn")
    mcap = next(torn.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])


def test_bad_bags_are_refused_or_skipped_as_in_training(tmp_path):
    bags = tmp_path / "bags"
    _bad_bags(bags)
    out = tmp_path / "ds"
    with pytest.raises(EpisodeError, match=r"1 bag\(s\) cannot be used") as err:
        export_lerobot(ExportConfig(bags=[bags], out=out, progress=False), log=lambda _: None)
    assert "torn" in str(err.value) and "--skip-bad" in str(err.value)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bags"]  # nothing half-written

    lines = []
    summary = export_lerobot(ExportConfig(bags=[bags], out=out, skip_bad=True, progress=False), log=lines.append)
    assert summary.episodes == 2 and {b.split("/")[-1] for b, _ in summary.skipped} == {"cut.incomplete", "torn"}
    assert any(line.startswith("skipped incomplete episode") and "cut.incomplete" in line for line in lines)
    assert any(line.startswith("skipped broken episode") and "torn" in line for line in lines)
    assert [e["anytouch/bag"] for e in _episodes(out)] == ["good_a", "good_b"]


def test_output_folder_rule(tmp_path, capsys):
    bags = tmp_path / "bags"
    _write_two_sensor_bag(bags / "a")
    out = tmp_path / "ds"
    assert main(["export", "lerobot", "--bags", str(bags), "--out", str(out), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["frames"] == 4
    assert main(["export", "lerobot", "--bags", str(bags), "--out", str(out), "--no-progress"]) == 2
    assert f"{out} already holds a LeRobot dataset; pass --overwrite" in capsys.readouterr().err
    _write_two_sensor_bag(bags / "b")
    assert main(["export", "lerobot", "--bags", str(bags), "--out", str(out), "--overwrite", "--no-progress"]) == 0
    assert json.loads((out / "meta/info.json").read_text())["total_episodes"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left

    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="it is not a LeRobot dataset"):
        export_lerobot(ExportConfig(bags=[bags], out=keep, overwrite=True, progress=False), log=lambda _: None)
    assert (keep / "thesis.tex").read_text() == "precious"


def test_rate_and_state_mismatches_are_named(tmp_path):
    bags = tmp_path / "bags"
    _write_two_sensor_bag(bags / "slow", rate_hz=2.0)
    with pytest.raises(ConfigError, match=r"slow: recorded at 2 Hz .* --fps is 5"):
        export_lerobot(ExportConfig(bags=[bags], out=tmp_path / "ds", progress=False), log=lambda _: None)
    with pytest.raises(ConfigError, match=r"ExportConfig.png_level must be in \[0, 9\], got 10"):
        ExportConfig(bags=[bags], out=tmp_path / "ds", fps=2, png_level=10, progress=False)
    summary = export_lerobot(ExportConfig(bags=[bags], out=tmp_path / "ds2", fps=2, progress=False),
                             log=lambda _: None)
    assert json.loads((tmp_path / "ds2/meta/info.json").read_text())["fps"] == 2
    np.testing.assert_allclose(_rows(tmp_path / "ds2", ["timestamp"])["timestamp"].to_numpy(),
                               np.arange(summary.frames) / 2)

    mixed = tmp_path / "mixed"
    _write_two_sensor_bag(mixed / "with_scale", scale=True)
    _write_two_sensor_bag(mixed / "without_scale")
    with pytest.raises(EpisodeError, match=r"1 of 2 episodes have no 'scale/mass' \(e\.g\. .*without_scale\)"):
        export_lerobot(ExportConfig(bags=[mixed], out=tmp_path / "ds3", progress=False), log=lambda _: None)
    assert read_episode(mixed / "with_scale").series[topics.SCALE_MASS][1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
