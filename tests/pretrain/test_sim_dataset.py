"""Pretraining reads `anytouch sim dataset` output as it is: stage 1 through the CLI, stage 2 with cross-sensor
matching whose positives are the same state seen by another sensor."""

import json

import pytest
import torch

from anytouch_policy.cli.main import main
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.pretrain.config import NO_CLIP, LossWeights, Stage
from anytouch_policy.pretrain.dataset import MatchBatch, PoolKind, PretrainDataset
from anytouch_policy.pretrain.manifest import read_manifest
from anytouch_policy.pretrain.objectives import Alignment
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


def test_touch_only_stage2_needs_no_clip_and_refuses_paired_data(sim_data, dataset_dir, tmp_path, synth):
    config = synth.tiny_config(Stage.ALIGN, tmp_path / "s2", data=(str(sim_data),), epochs=1, batch_size=8,
                               clip_arch=NO_CLIP, max_steps=6)
    result = run_pretrain(config)
    assert result.finished and result.steps == 6  # max_steps ends the run inside its epoch
    assert all(row.get("align", 0.0) == 0.0 for row in result.history)
    with pytest.raises(ConfigError, match="--clip-weights given"):
        synth.tiny_config(Stage.ALIGN, tmp_path / "x", data=(str(sim_data),), clip_arch=NO_CLIP,
                          clip_weights="w.safetensors")
    paired = synth.tiny_config(Stage.ALIGN, tmp_path / "y", data=(str(dataset_dir),), clip_arch=NO_CLIP)
    with pytest.raises(ConfigError, match="has vision or text"):
        run_pretrain(paired)


def _negatives(sim_data, hard: float) -> list[tuple[object, object]]:
    records = read_manifest(sim_data / "manifest.jsonl")
    dataset = PretrainDataset(records, image_size=56, augment=False, hard_negatives=hard)
    dataset.add_match_pools(4)
    pairs = []
    for pool in (p for p in dataset.pools if p.kind is PoolKind.MATCH):
        for anchor in pool.members:
            _, negative = dataset.match_partners(pool, anchor, torch.Generator().manual_seed(anchor))
            pairs.append((records[anchor], records[negative]))
    return pairs


def test_hard_negatives_are_the_same_scenario_at_another_time(sim_data):
    hard = _negatives(sim_data, 1.0)
    assert hard and all(a.object == n.object and a.position != n.position for a, n in hard)
    easy = _negatives(sim_data, 0.0)
    assert any(a.object != n.object for a, n in easy)  # the paper's draw: any other state
    assert all((a.object, a.position) != (n.object, n.position) for a, n in easy)


def test_cross_sensor_nce_is_lower_for_true_pairs_than_for_shuffled_ones(synth):
    torch.manual_seed(0)
    encoder = AnyTouchEncoder.from_preset("anytouch-tiny")
    objective = Alignment(encoder, None, weights=LossWeights(cross_sensor_nce=1.0))
    frames = torch.randn(6, 1, 3, 56, 56)
    sensors = torch.zeros(6, dtype=torch.long)

    def nce(positive: torch.Tensor) -> float:
        batch = MatchBatch(frames, positive, frames.flip(0), sensors, sensors, sensors)
        out = {k: v.detach() for k, v in objective(batch).items()}
        expected = 0.1 * float(out["match"]) + float(out["cross_sensor_nce"])
        assert float(out["loss"]) == pytest.approx(expected, rel=1e-5)
        return float(out["cross_sensor_nce"])

    assert nce(frames) < nce(frames[torch.tensor([1, 2, 3, 4, 5, 0])])
