"""`anytouch sim record`: (initial, target) drawn per episode, bags in the recorder's format that `anytouch train`
reads, deterministic by seed, the output-folder rule; and sensor model files through `sim render`."""

import json

import numpy as np
import pytest
import yaml

from anytouch_policy.cli.main import main
from anytouch_policy.data import read_episode
from anytouch_policy.demo.record import MIN_POUR_G, RECORD_FILE, draw_pairs
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.params import SeedSplit, episode_seed
from anytouch_policy.sim.sensor_model import MODEL_DIR, sensor_model_from_dict


@pytest.fixture
def user_model(tmp_path):
    """A user's sensor: DuraGel optics on a 192 x 144 camera at 40 fps, in the DIGIT's token slot."""
    data = yaml.safe_load((MODEL_DIR / "duragel.yaml").read_text())
    data.update(slot="digit", markers={"rows": 4, "cols": 5, "radius_px": 3.5, "darkness": 0.7, "jitter_px": 0.5})
    data["camera"].update(resolution=[192, 144], fps=40.0)
    path = tmp_path / "bench_sensor.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_pairs_are_drawn_uniformly_in_the_ranges_at_least_10_g_apart():
    pairs = draw_pairs(400, initial_g=(80.0, 120.0), target_g=(20.0, 80.0), seed=3)
    initial, target = np.array(pairs).T
    assert initial.min() >= 80.0 and initial.max() <= 120.0 and target.min() >= 20.0 and target.max() <= 80.0
    assert np.all(initial - target >= MIN_POUR_G)
    assert initial.std() > 10.0 and target.std() > 10.0  # spread over the ranges, not one pair
    assert draw_pairs(400, initial_g=(80.0, 120.0), target_g=(20.0, 80.0), seed=3) == pairs  # by seed
    assert draw_pairs(5, initial_g=(80.0, 120.0), target_g=(20.0, 80.0), seed=3) == pairs[:5]  # a prefix
    assert draw_pairs(5, initial_g=(80.0, 120.0), target_g=(20.0, 80.0), seed=4) != pairs[:5]
    assert draw_pairs(3, initial_g=100.0, target_g=60.0, seed=9) == [(100.0, 60.0)] * 3  # a single pair, exact
    # Partly feasible: initial masses with no target 10 g below them are not drawn.
    tight = np.array(draw_pairs(200, initial_g=(80.0, 120.0), target_g=(75.0, 80.0), seed=0))
    assert tight[:, 0].min() >= 85.0 and np.all(tight[:, 0] - tight[:, 1] >= MIN_POUR_G)


@pytest.mark.parametrize(("initial", "target"), [((100.0, 100.0), (95.0, 99.0)), ((50.0, 60.0), (55.0, 70.0)),
                                                 (100.0, 95.0)])
def test_ranges_without_a_pair_10_g_apart_are_refused(initial, target):
    with pytest.raises(ConfigError, match="lies 10 g below an initial mass in"):
        draw_pairs(1, initial_g=initial, target_g=target, seed=0)


def _digest(episode):
    return [f.image.tobytes() for name in episode.sensors for f in episode.iter_frames(name)]


def test_sim_record_writes_bags_train_reads_with_the_drawn_pairs(tmp_path, user_model, capsys):
    out = tmp_path / "demos"
    args = ["sim", "record", "--out", str(out), "--episodes", "3", "--initial-g", "80:120", "--target-g", "20:80",
            "--sensor", "gelsight_mini", "--sensor", f"{user_model}:right", "--seed", "5", "--max-ticks", "25",
            "--no-progress"]
    assert main(args) == 0
    assert f"3 episodes in {out}" in capsys.readouterr().out
    record = json.loads((out / RECORD_FILE).read_text())
    drawn = draw_pairs(3, initial_g=(80.0, 120.0), target_g=(20.0, 80.0), seed=5)
    assert [(e["initial_g"], e["target_g"]) for e in record["episodes_recorded"]] == drawn
    assert [s["model"] for s in record["sensors"]] == ["gelsight_mini", "bench_sensor"]
    user = record["sensors"][1]
    assert sensor_model_from_dict(user["definition"], name="x", where="record").camera.fps == 40.0  # reloadable
    episodes = {e["folder"]: e for e in record["episodes_recorded"]}
    for folder, entry in episodes.items():
        episode = read_episode(out / folder)
        meta = episode.meta
        assert (meta.initial_g, meta.target_g, meta.seed) == (entry["initial_g"], entry["target_g"], entry["seed"])
        assert meta.sensors == {"gelsight_mini_left": "gelsight_mini", "bench_sensor_right": "digit"}
        assert meta.source == "expert" and meta.complete
        (frame,) = episode.load_frames("bench_sensor_right", [0]).values()
        assert frame.shape == (144, 192, 3)
        assert len(episode.frame_stamps["bench_sensor_right"]) == pytest.approx(40 * 0.2 * 25, abs=2)

    # Deterministic by seed: the same pairs and the same frames again.
    again = tmp_path / "again"
    assert main([*args[:2], "--out", str(again), *args[4:]]) == 0
    record_again = json.loads((again / RECORD_FILE).read_text())
    assert [(e["initial_g"], e["target_g"], e["seed"]) for e in record_again["episodes_recorded"]] == [
        (e["initial_g"], e["target_g"], e["seed"]) for e in record["episodes_recorded"]]
    first, first_again = (d / r["episodes_recorded"][0]["folder"] for d, r in ((out, record), (again, record_again)))
    assert _digest(read_episode(first)) == _digest(read_episode(first_again))

    # `anytouch train` reads them: a tiny preset, one epoch, conditioned on the drawn pairs of its episodes.
    policy = tmp_path / "policy"
    assert main(["train", "--bags", str(out), "--preset", "anytouch-tiny", "--out", str(policy), "--epochs", "1",
                 "--no-cache", "--threads", "2", "--no-progress"]) == 0
    summary = json.loads((policy / "training_log.json").read_text())["summary"]
    assert sorted(map(tuple, summary["pairs_g"])) == sorted(
        (episodes[f]["initial_g"], episodes[f]["target_g"]) for f in summary["episodes"]["train"])
    assert len(summary["episodes"]["train"]) + len(summary["episodes"]["val"]) == 3
    assert json.loads((policy / "config.json").read_text())["sensors"] == [
        {"name": "bench_sensor_right", "type": "digit"}, {"name": "gelsight_mini_left", "type": "gelsight_mini"}]


def test_sim_record_keeps_to_the_output_folder_rule(tmp_path, capsys):
    out = tmp_path / "demos"
    args = ["sim", "record", "--out", str(out), "--episodes", "1", "--max-ticks", "3", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2 and "already holds a simulated demonstrations folder; pass --overwrite" in (
        capsys.readouterr().err)
    assert main([*args, "--overwrite", "--seed", "1"]) == 0
    (entry,) = json.loads((out / RECORD_FILE).read_text())["episodes_recorded"]
    assert entry["seed"] == episode_seed(SeedSplit.TRAIN, 1, 0) and len(list(out.iterdir())) == 2  # replaced
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    assert main(["sim", "record", "--out", str(notes), "--episodes", "1", "--overwrite", "--no-progress"]) == 2
    assert "refusing to write into" in capsys.readouterr().err and (notes / "todo.txt").read_text() == "keep me"
    # Checked before any work: nothing written for ranges without a valid pair or too many episodes.
    for bad in (["--initial-g", "100", "--target-g", "95"], ["--episodes", "10001"]):
        assert main(["sim", "record", "--out", str(tmp_path / "never"), *bad]) == 2
        assert not (tmp_path / "never").exists()
    assert "lies 10 g below an initial mass" in capsys.readouterr().err
    assert main(["sim", "record", "--out", str(tmp_path / "never"), "--initial-g", "400:500"]) == 2
    assert "initial_g must be below 422 g, what the simulated cylinder holds, got 500" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_sim_render_takes_a_model_file(tmp_path, user_model, capsys):
    assert main(["sim", "render", "--out", str(tmp_path / "preview"), "--sensor", f"{user_model}:left:20",
                 "--sensor", "gelslim:right", "--columns", "3", "--target-g", "85"]) == 0
    assert "bench_sensor_left:" in capsys.readouterr().out
    from PIL import Image

    with Image.open(tmp_path / "preview" / "bench_sensor_left.gif") as gif:
        assert gif.size[0] == 192 and gif.size[1] > 144 and gif.n_frames > 5  # frames under a caption band
    with Image.open(tmp_path / "preview" / "gelslim_right.gif") as gif:
        assert gif.size[0] == 176 and gif.size[1] > 288
    bad = tmp_path / "bad.yaml"
    bad.write_text(user_model.read_text().replace("fps: 40.0", "fps: -1"))
    assert main(["sim", "render", "--out", str(tmp_path / "p2"), "--sensor", str(bad)]) == 2
    assert f"sensor model {bad}: field camera.fps must be in [5, 200], got -1.0" in capsys.readouterr().err


def _interrupt_after(n):
    """A progress callback that stops the run (as Ctrl-C would) once `n` episodes have finished."""
    def progress(i, path, report):
        if i + 1 == n:
            raise KeyboardInterrupt

    return progress


def test_an_interrupted_sim_record_keeps_its_finished_episodes(tmp_path, monkeypatch):
    from anytouch_policy.demo.record import record_demonstrations
    from anytouch_policy.sim.params import RigConfig
    from anytouch_policy.sim.sensor_params import SensorSpec

    out = tmp_path / "demos"
    kwargs = dict(episodes=3, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                  config=RigConfig(max_ticks=4))
    with pytest.raises(KeyboardInterrupt) as info:
        record_demonstrations(out, progress=_interrupt_after(2), **kwargs)
    assert info.value.__notes__ == [f"what was finished is kept in {out}"]
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["interrupted"] and (record["episodes"], record["episodes_planned"]) == (2, 3)
    folders = [e["folder"] for e in record["episodes_recorded"]]
    assert sorted(p.name for p in out.iterdir()) == sorted([*folders, RECORD_FILE])
    for folder in folders:  # every finished episode reads back whole
        assert read_episode(out / folder).meta.complete
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demos.")]  # no staging folder left

    # Over an earlier recording (--overwrite) the partial one is kept beside it, the earlier one untouched.
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(KeyboardInterrupt) as info:
        record_demonstrations(out, overwrite=True, seed=1, progress=_interrupt_after(1), **kwargs)
    (note,) = info.value.__notes__
    staged = tmp_path / note.rsplit(" ", 1)[1].rsplit("/", 1)[1]
    assert staged.name.startswith(".demos.") and sorted(p.name for p in out.iterdir()) == before
    assert json.loads((staged / RECORD_FILE).read_text())["episodes"] == 1

    # Stopped before any episode finished: nothing is kept, nothing is left.
    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr("anytouch_policy.demo.record.record_expert_episode", interrupted)
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt) as info:
        record_demonstrations(fresh, **kwargs)
    assert not fresh.exists() and not getattr(info.value, "__notes__", None)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fresh.")]


def test_the_cli_says_where_an_interrupted_recording_is(tmp_path, monkeypatch, capsys):
    import anytouch_policy.demo.record as record

    real, calls = record.record_expert_episode, []

    def second_is_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(record, "record_expert_episode", second_is_interrupted)
    out = tmp_path / "demos"
    assert main(["sim", "record", "--out", str(out), "--episodes", "3", "--max-ticks", "3", "--no-progress"]) == 130
    assert f"anytouch sim: interrupted; what was finished is kept in {out}" in capsys.readouterr().err
    assert json.loads((out / RECORD_FILE).read_text())["episodes"] == 1


def test_sim_render_columns_are_bounded(tmp_path, capsys):
    """A strip of 1000 moments wrote a 320000 px wide PNG of repeated frames."""
    with pytest.raises(SystemExit):
        main(["sim", "render", "--out", str(tmp_path / "p"), "--columns", "1000"])
    assert "--columns: must be an integer in [2, 64], got '1000'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
