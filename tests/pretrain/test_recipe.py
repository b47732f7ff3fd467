"""`anytouch pretrain-recipe`: dataset -> stage 1 -> touch-only stage 2 -> the exported bundle with its recipe, end
to end on the tiny recipe; a second run keeps every finished part."""

import json

import pytest

from anytouch_policy.cli.main import main
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import file_sha256, load_encoder_bundle
from anytouch_policy.pretrain.recipe import RECIPES, run_recipe


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe") / "run"
    summary = run_recipe(RECIPES["tiny"], out, workers=1, threads=1, progress=False)
    return out, summary


def test_recipe_runs_every_part_and_records_itself_in_the_bundle(tiny_run):
    out, summary = tiny_run
    bundle = load_encoder_bundle(out / "anytouch-tiny")
    weights = out / "anytouch-tiny" / "model.safetensors"
    assert bundle.weights_sha256 == summary["weights_sha256"] == file_sha256(weights)
    recipe = bundle.recipe
    assert recipe["settings"] == RECIPES["tiny"].to_dict()
    assert recipe["dataset"]["seed"] == 1 and "--seed 1" in recipe["dataset"]["command"]
    assert "duragel" not in recipe["dataset"]["sensors"] and len(recipe["dataset"]["sensors"]) == 4
    assert "code_version" in recipe
    stage1, stage2 = recipe["stages"]["stage1"], recipe["stages"]["stage2"]
    assert stage1["settings"]["stage"] == 1 and stage2["settings"]["stage"] == 2
    assert stage2["settings"]["clip_arch"] == "none" and stage2["settings"]["weights"]["cross_sensor_nce"] == 1.0
    assert stage1["steps"] > 0 and stage2["steps"] == 20  # stage 2 ends at the recipe's max_steps, inside its epoch
    assert stage2["settings"]["max_steps"] == 20
    assert bundle.source.format == "anytouch-pretrain-recipe"
    assert set(bundle.trained_slots) == {0, 1, 2, 3, 9}  # the four sensors of the data and the universal token


def test_both_stages_log_their_terms_and_draw_the_loss_plot(tiny_run):
    out, _ = tiny_run
    for stage in ("stage1", "stage2"):
        assert (out / stage / "losses.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (out / "stage2" / "metrics.jsonl").read_text().splitlines()]
    matching = [r for r in rows if r["pool"].startswith("match")]
    assert matching and all(r["cross_sensor_nce"] >= 0 and r["match"] > 0 for r in matching)
    # a batch of one sensor pair can hold a single anchor (tiny data): nothing to contrast, the InfoNCE is 0
    assert any(r["cross_sensor_nce"] > 0 for r in matching)
    assert all(r["pool"].count(">") == 1 for r in matching)  # aligned matching: one sensor pair per batch
    touch = [r for r in rows if r["pool"].startswith("touch")]
    assert touch and all(r["align"] == 0.0 and r["pairs_touch_vision"] == 0 for r in touch)
    assert rows[-1]["p_universal"] > rows[0]["p_universal"]  # the universal-token schedule runs in stage 2


def test_running_again_keeps_the_finished_parts(tiny_run, capsys):
    out, summary = tiny_run
    stamp = (out / "stage1" / "run.json").stat().st_mtime_ns
    assert main(["pretrain-recipe", "--out", str(out), "--recipe", "tiny", "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["weights_sha256"] == summary["weights_sha256"] and again["steps"] == summary["steps"]
    assert (out / "stage1" / "run.json").stat().st_mtime_ns == stamp


def test_a_dataset_of_other_settings_is_refused(tiny_run):
    out, _ = tiny_run
    with pytest.raises(ConfigError, match="other settings"):
        run_recipe(RECIPES["tiny"].replace(data_seed=7), out, progress=False)


def test_a_recipe_without_stage2_exports_stage1s_encoder(tmp_path):
    summary = run_recipe(RECIPES["tiny"].replace(stage2_epochs=0), tmp_path / "run", progress=False)
    stage1 = load_encoder_bundle(tmp_path / "run" / "stage1" / "encoder")
    assert summary["weights_sha256"] == stage1.weights_sha256 and summary["steps"] == {"stage1": 12}
    assert not (tmp_path / "run" / "stage2").exists()
    assert set(load_encoder_bundle(tmp_path / "run" / "anytouch-tiny").recipe["stages"]) == {"stage1"}
