"""`anytouch sim dataset`: aligned multi-sensor data (every sensor's clip of a state ends at the state's instant and
equals a direct render of it), the manifest format pretraining reads with same-state positives, the held-out split,
byte-identical output per seed for any worker count, the output-folder rule and the CLI's checks."""

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from anytouch_policy.cli import sim as sim_cli
from anytouch_policy.cli.main import main
from anytouch_policy.errors import ConfigError
from anytouch_policy.pretrain.dataset import PretrainDataset, generator_for
from anytouch_policy.pretrain.manifest import read_manifest
from anytouch_policy.sim import dataset as ds
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.tactile import read_rgb, resize_rgb

SEED = 3  # 0.01 h of seed 3: a scripted pour and five touches (grating, cylinder x2, sphere, corner), two held out
HOURS = 0.01


def write(out: Path, **kw) -> dict:
    args = dict(hours=HOURS, seed=SEED, heldout=0.34, size=32, bar=False)
    args.update(kw)
    return ds.write_dataset(out, **args)


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    """The default sensors at their native frame sizes."""
    out = tmp_path_factory.mktemp("native") / "data"
    write(out, size=None)
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small") / "data"
    write(out)
    return out


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_cli_default_sensors_are_the_pretraining_sensors():
    assert sim_cli.DATASET_SENSORS == ds.DEFAULT_SENSORS
    assert "duragel" not in ds.DEFAULT_SENSORS


def test_every_state_has_a_clip_and_a_static_frame_of_every_sensor(native):
    summary = json.loads((native / ds.DATASET_FILE).read_text())
    states = lines(native / ds.STATES_FILE)
    assert summary["splits"]["train"]["states"] + summary["splits"]["heldout"]["states"] == len(states) == 39
    assert summary["frames"] == 39 * 4 * 4 and summary["sensors"][0]["definition"]["slot"] == "gelsight_mini"
    kinds = {s["contact"] for s in states}
    assert kinds == {"cylinder", "grating", "sphere", "corner"} and {s["kind"] for s in states} == {"pour", "touch"}
    split = {s["state"]: s["split"] for s in states}
    by_state = defaultdict(list)
    for name, which in ((ds.MANIFEST_FILE, "train"), (ds.HELDOUT_FILE, "heldout")):
        records = read_manifest(native / name)  # the format `anytouch pretrain --data` reads (files checked)
        for rec, raw in zip(records, lines(native / name), strict=True):
            state = f"{rec.object}/{rec.position}"
            by_state[state].append((rec, raw))
            assert split[state] == which and raw["id"].startswith(state + "/")
    assert set(by_state) == {s["state"] for s in states}
    for samples in by_state.values():
        assert sorted(r.sensor.label for r, _ in samples) == sorted(2 * list(ds.DEFAULT_SENSORS))
        clips = [r for r, _ in samples if len(r.touch) == 4]
        statics = [r for r, _ in samples if len(r.touch) == 1]
        assert len(clips) == len(statics) == 4
        for clip in clips:  # the static frame is the clip's last: the state's instant
            assert len(set(clip.touch)) == 4
            assert [s for s in statics if s.sensor == clip.sensor][0].touch[0] == clip.touch[-1]
    shapes = {read_rgb(native / summary_path).shape for summary_path in
              (f"touch/sc000000/{s}_left/0000_3.png" for s in ds.DEFAULT_SENSORS)}
    assert shapes == {(240, 320, 3), (320, 240, 3), (288, 176, 3), (300, 400, 3)}  # each model's own frames


def test_clips_end_at_the_state_instant_at_each_sensors_own_rate():
    scenario = ds.draw_scenario(SEED, 0, every_s=1.0, heldout=0.34)
    for name in ds.DEFAULT_SENSORS:
        params = ds.sensor_params(SensorSpec.parse(name), scenario)
        for step in scenario.samples:
            frames = ds.clip_frames(step, params)
            assert frames[-1][0] == step  # the last frame shows the state itself
            period = 1e9 / params.fps
            stamps = [step * ds.STEP_NS - j * round(period) for j in (3, 2, 1, 0)]
            assert [s for s, _ in frames] == [t // ds.STEP_NS for t in stamps]  # latest state at or before
            assert [i for _, i in frames] == list(range(frames[0][1], frames[0][1] + 4))  # consecutive frames


def test_the_frames_of_every_sensor_are_a_direct_render_of_the_state(native):
    """Re-simulate each state alone (only its own physics steps asked for) and render it through each sensor: the
    stored frames are those renders exactly, and the stored ground truth is that state's."""
    truth = {s["state"]: s for s in lines(native / ds.STATES_FILE)}
    specs = [SensorSpec.parse(n) for n in ds.DEFAULT_SENSORS]
    checked = 0
    for index in range(6):
        scenario = ds.draw_scenario(SEED, index, every_s=1.0, heldout=0.34)
        for k in (0, len(scenario.samples) - 1):
            step = scenario.samples[k]
            alone = ds.simulate(scenario, [step])[step]
            row = truth[ds.state_id(scenario, k)]
            assert {f: row[f] for f in ds.TRUTH_FIELDS} == ds.truth(scenario, alone)
            assert row["t_s"] == pytest.approx(step * 0.005)
            for spec in specs:
                params = ds.sensor_params(spec, scenario)
                renderer = ds.make_renderer(scenario, params)
                for j, (shown, frame_index) in enumerate(ds.clip_frames(step, params)):
                    state = ds.simulate(scenario, [shown])[shown]
                    stored = read_rgb(native / ds.frame_path(scenario, spec, k, j))
                    assert np.array_equal(stored, ds.render_state(scenario, renderer, state, frame_index))
                    checked += 1
    assert checked == 6 * 2 * 4 * 4


def test_resized_frames_are_what_the_encoder_reads(native, small):
    a = read_rgb(native / "touch/sc000001/gelsight_left/0002_3.png")
    b = read_rgb(small / "touch/sc000001/gelsight_left/0002_3.png")
    assert b.shape == (32, 32, 3) and np.array_equal(b, resize_rgb(a, 32))


def test_same_state_other_sensor_is_the_matching_positive(small):
    records = read_manifest(small / ds.MANIFEST_FILE)
    dataset = PretrainDataset(records, image_size=32, augment=False)
    anchors = dataset.add_match_pools(4)
    assert anchors == len(records)  # every sample has a same-state sample of another sensor
    same_scenario_negatives = 0
    for pool in dataset.pools:
        for anchor in pool.members[:40]:
            a = records[anchor]
            _, group = dataset._partners[anchor]
            assert {(records[i].object, records[i].position) for i in group} == {(a.object, a.position)}
            assert len(group) == 4  # this state, this kind, one per sensor
            for draw in range(5):
                pos, neg = dataset.match_partners(pool, anchor, generator_for(1, draw, anchor))
                assert (records[pos].object, records[pos].position) == (a.object, a.position)
                assert records[pos].sensor != a.sensor
                assert (records[neg].object, records[neg].position) != (a.object, a.position)
                same_scenario_negatives += records[neg].object == a.object
    assert same_scenario_negatives > 0  # other times of the same scenario are negatives too


def test_the_heldout_split_is_by_scenario(small):
    states = lines(small / ds.STATES_FILE)
    split = {s["scenario"]: s["split"] for s in states}
    assert all(split[s["scenario"]] == s["split"] for s in states)
    assert sorted(k for k, v in split.items() if v == "heldout") == ["sc000002", "sc000005"]
    train = {r["object"] for r in lines(small / ds.MANIFEST_FILE)}
    heldout = {r["object"] for r in lines(small / ds.HELDOUT_FILE)}
    assert train.isdisjoint(heldout) and heldout == {"sc000002", "sc000005"}
    assert [ds._heldout(i, 0.1) for i in range(20)].count(True) == 2


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != ds.DATASET_FILE}


def test_same_seed_gives_the_same_bytes_for_any_worker_count(small, tmp_path):
    again = tmp_path / "again"
    summary = write(again, workers=2)
    assert summary["workers"] == 2
    reference = files(small)
    assert len(reference) > 600 and files(again) == reference
    first = json.loads((small / ds.DATASET_FILE).read_text())
    for key in ("seconds", "workers"):
        first.pop(key), summary.pop(key)
    assert summary == first
    other = tmp_path / "other"
    write(other, seed=SEED + 1)
    assert (other / ds.STATES_FILE).read_bytes() != reference[ds.STATES_FILE]


def test_states_do_not_depend_on_the_sensors_nor_a_sensor_on_the_others(small, tmp_path):
    out = tmp_path / "two"
    write(out, sensors=[SensorSpec.parse("digit"), SensorSpec.parse("duragel")])  # digit first here, second there
    assert (out / ds.STATES_FILE).read_bytes() == (small / ds.STATES_FILE).read_bytes()
    digit = {k: v for k, v in files(out).items() if "/digit_left/" in k}
    assert len(digit) == 39 * 4 and digit == {k: v for k, v in files(small).items() if "/digit_left/" in k}
    assert {r["sensor"] for r in lines(out / ds.MANIFEST_FILE)} == {"duragel", "digit"}


def test_the_output_folder_rule(small, tmp_path):
    with pytest.raises(ConfigError, match="already holds a simulated touch dataset; pass --overwrite"):
        write(small)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "plan.md").write_text("mine")
    with pytest.raises(ConfigError, match="it is not a simulated touch dataset"):
        write(foreign)
    assert (foreign / "plan.md").read_text() == "mine"
    redo = tmp_path / "redo"
    write(redo, hours=0.002)
    write(redo, overwrite=True)
    assert files(redo) == files(small)


@pytest.mark.parametrize(("flag", "value"), [("--hours", "nan"), ("--hours", "0"), ("--every", "0"),
                                             ("--size", "-1"), ("--heldout", "0.7"), ("--workers", "0")])
def test_the_cli_refuses_bad_numbers_while_parsing(tmp_path, capsys, flag, value):
    args = ["sim", "dataset", "--out", str(tmp_path / "d"), "--hours", "0.01", flag, value]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and f"argument {flag}" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_the_cli_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["sim", "dataset", "--out", str(out), "--hours", "0.003", "--size", "24", "--sensor", "gelslim",
                 "--sensor", "digit:right", "--seed", "5", "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "held-out states" in said and "gelslim_left, digit_right" in said
    summary = json.loads((out / ds.DATASET_FILE).read_text())
    assert summary["size"] == 24 and [s["name"] for s in summary["sensors"]] == ["gelslim_left", "digit_right"]
    assert read_rgb(next(out.glob("touch/*/digit_right/*.png"))).shape == (24, 24, 3)
    assert main(["sim", "dataset", "--out", str(tmp_path / "e"), "--hours", "0.003", "--size", "8"]) == 2
    assert "--size must be 0 (native frames) or in [16, 1024]" in capsys.readouterr().err
    assert math.isclose(summary["hours"], 0.003)
