"""`anytouch demo --quick` end to end: the table files, a pipeline that learns, settings checked before work."""

import json

import numpy as np
import pytest

from anytouch_policy.cli.main import main
from anytouch_policy.data import read_episode

VARIANTS = ["finetune-dynamic", "finetune-static", "frozen-dynamic", "frozen-static"]


@pytest.mark.slow
def test_demo_quick_writes_table_models_and_plots(demo, capsys):
    table = json.loads((demo / "table.json").read_text())
    assert set(table["results"]) == set(VARIANTS)
    for name in VARIANTS:
        result = table["results"][name]
        ev = json.loads((demo / "eval" / f"{name}.json").read_text())
        assert len(ev["episodes"]) == 2 and all(e["seed"] >= 1_000_000_000 for e in ev["episodes"])  # EVAL seeds
        errors = [abs(e["poured_g"] - table["target_g"]) for e in ev["episodes"]]  # the table's cell, from the pours
        assert result["mean_abs_error_g"] == pytest.approx(np.mean(errors), abs=1e-3)
        assert result["std_abs_error_g"] == pytest.approx(np.std(errors), abs=1e-3)
        assert ev["mean_abs_error_g"] == pytest.approx(result["mean_abs_error_g"])
        assert (demo / "models" / name / "config.json").is_file()
        assert (demo / "models" / name / "training_curves.png").stat().st_size > 1000
    md = (demo / "table.md").read_text()
    assert "| Method | Dynamic Perception | Mean Error (g) ↓ Fine-tune | Mean Error (g) ↓ Freeze |" in md
    assert md.count("anytouch-tiny, sim") == 2
    for png in ("pours.png", "errors.png"):
        assert (demo / png).read_bytes()[:4] == b"\x89PNG"
    bags = sorted(p.name for p in (demo / "bags").iterdir() if p.is_dir())
    assert len(bags) == table["demonstrations"] and all(b.startswith("expert_") and not b.endswith(".incomplete")
                                                        for b in bags)
    record = json.loads((demo / "bags" / "sim_record.json").read_text())  # recorded as by `anytouch sim record`
    assert [e["folder"] for e in record["episodes_recorded"]] == bags
    assert {(e["initial_g"], e["target_g"]) for e in record["episodes_recorded"]} == {(100.0, 60.0)}
    stages = ["record", "expert reference"] + [f"{step} {name}" for step in ("train", "evaluate") for name in VARIANTS]
    assert sorted(table["timing_s"]) == sorted(stages) and table["timing_s"]["record"] > 0
    assert sum(table["timing_s"].values()) <= table["seconds"] + 0.05 * len(stages)  # stages rounded to 0.1 s


@pytest.mark.slow
def test_demo_quick_separates_a_working_pipeline_from_one_that_learns_nothing(demo):
    """The expert's pours end (demonstrations and reference), and some trained policy pours then retracts by itself
    with less error than either policy that learns nothing: pouring nothing, or pouring until the cylinder is empty
    (what a head stuck on the majority class `pour` does; such episodes all time out)."""
    table = json.loads((demo / "table.json").read_text())
    initial_g, target_g = table["initial_g"], table["target_g"]
    for path in sorted(p for p in (demo / "bags").iterdir() if p.is_dir()):
        meta = read_episode(path).meta
        assert meta.extra["end_reason"] == "end" and abs(meta.final_g - target_g) < 3.0, (path.name, meta)
    expert = table["expert"]
    assert expert["timeouts"] == 0 and expert["mean_abs_error_g"] < 3.0, expert
    trivial_g = min(target_g, initial_g - target_g)  # error of pouring nothing / everything
    finishing = {name: r["mean_abs_error_g"] for name, r in table["results"].items()
                 if r["timeouts"] < table["eval_episodes"]}
    assert finishing and min(finishing.values()) < trivial_g, table["results"]


@pytest.mark.parametrize(("args", "message"), [
    (["--finetune", "bogus"], "expected 'frozen', 'all' or 'last:N'"),
    (["--finetune", "last:0"], "got 'last:0'"),
    (["--finetune", "last:9"], "finetune last:9 exceeds the encoder's 2 blocks"),
    (["--preset", "anytouch-huge"], "unknown encoder preset 'anytouch-huge'"),
    (["--target-g", "120"], "need 0 < target_g < initial_g"),
    (["--encoder", "no-such-bundle"], "model bundle folder not found"),
])
def test_demo_checks_its_settings_before_recording(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--episodes", "1", "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing recorded, nothing created


def test_demo_refuses_a_used_out_folder_before_recording(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--quick", "--episodes", "1", "--out", str(tmp_path), "--no-progress"]) == 2
    assert f"{tmp_path} exists and is not empty; choose a new folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("eval_episodes", 0, "eval_episodes must be an integer >= 1, got 0"),
    ("threads", 0, "threads must be an integer >= 1, got 0"),
    ("target_g", float("nan"), "need 0 < target_g < initial_g"),
    ("finetune", "frozen", "finetune must be 'all' or 'last:N'"),
    ("sensors", ["tac3d"], "unknown sensor model 'tac3d'"),
    ("target_g", 95.0, "no target in .95, 95. g lies 10 g below an initial mass in .100, 100. g"),
])
def test_demo_config_is_checked_when_built(tmp_path, field, value, message):
    from anytouch_policy.demo.run import DemoConfig
    from anytouch_policy.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        DemoConfig(out=tmp_path / "run", **{field: value})
