"""Pretraining reads `anytouch sim dataset` output as it is: stage 1 through the CLI, stage 2 with cross-sensor
matching whose positives are the same state seen by another sensor."""

import json

import pytest

from anytouch_policy.cli.main import main
from anytouch_policy.pretrain.config import Stage
from anytouch_policy.pretrain.trainer import run_pretrain
from anytouch_policy.sim.dataset import write_dataset


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "data"
    write_dataset(out, hours=0.003, seed=1, size=56, heldout=0.0, bar=False)  # a knurl press and a ridge touch
    return out


def test_stage1_runs_one_tiny_epoch_on_generated_data(sim_data, tmp_path, capsys):
    out = tmp_path / "s1"
    rc = main(["pretrain", "--stage", "1", "--data", str(sim_data), "--preset", "anytouch-tiny", "--out", str(out),
               "--epochs", "1", "--batch-size", "8", "--decoder-width", "32", "--decoder-layers", "1",
               "--decoder-heads", "2", "--device", "cpu", "--threads", "1", "--no-progress", "--save-every", "0"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["finished"] and summary["steps"] == summary["total_steps"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["pool"] for r in rows} == {"touch:static", "touch:video"}
    run = json.loads((out / "run.json").read_text())
    assert (out / "encoder" / "model.safetensors").is_file()
    assert set(run["bundle"]["trained_slots"]) >= {0, 1, 2, 3}  # gelsight, digit, gelslim, gelsight_mini


def test_stage2_matches_same_state_across_sensors(sim_data, tmp_path, synth):
    config = synth.tiny_config(Stage.ALIGN, tmp_path / "s2", data=(str(sim_data),), epochs=1, batch_size=8)
    result = run_pretrain(config)
    assert result.finished
    pools = {row["pool"] for row in result.history}
    assert {"match:static", "match:video", "touch:static", "touch:video"} <= pools
    matching = [row for row in result.history if row["pool"].startswith("match")]
    assert all(0.0 < row["match"] < 10.0 for row in matching)
    aligned = [row for row in result.history if row["pool"].startswith("touch")]
    assert all(row["pairs_touch_vision"] == 0 and row["pairs_touch_text"] == 0 for row in aligned)  # touch only
