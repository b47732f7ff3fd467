"""`anytouch demo --quick` end to end: the table files (every cell and ordering from the pours of the same seeds),
a pipeline that learns, the run without a pretrained encoder, settings checked before work."""

import json

import numpy as np
import pytest
from scipy import stats

from anytouch_policy.cli.main import main
from anytouch_policy.data import read_episode

CELLS = ["random-finetune-dynamic", "random-frozen-dynamic", "pretrained-finetune-static", "pretrained-frozen-static",
         "pretrained-finetune-dynamic", "pretrained-frozen-dynamic"]


@pytest.mark.slow
def test_demo_quick_writes_table_models_and_plots(demo):
    table = json.loads((demo / "table.json").read_text())
    assert set(table["cells"]) == set(CELLS) and table["pretrained"]
    errors = {}
    for name in CELLS:
        cell = table["cells"][name]
        assert cell["run"] == name  # a pretrained encoder of its own: every cell is a run
        ev = json.loads((demo / "eval" / f"{name}.json").read_text())
        assert [e["seed"] for e in ev["episodes"]] == cell["seeds"] == table["expert"]["seeds"]  # the same seeds
        assert len(cell["seeds"]) == table["eval_episodes"] == 3 and min(cell["seeds"]) >= 1_000_000_000  # EVAL
        errors[name] = [abs(e["poured_g"] - table["target_g"]) for e in ev["episodes"]]  # the cell, from the pours
        assert cell["errors_g"] == pytest.approx(errors[name], abs=1e-3)
        assert cell["mean_g"] == pytest.approx(np.mean(errors[name]), abs=1e-3)
        assert cell["timeouts"] == sum(e["timed_out"] for e in ev["episodes"])
        # by default every head also learns the grams still to pour (demo --remaining-weight 1)
        bundle = json.loads((demo / "models" / name / "config.json").read_text())
        assert bundle["head"]["remaining"] is True
        # fine-tuned in float32 whatever the CPU (the table is then the same on every machine), and the bundle says so
        assert bundle["training"]["hyper"]["amp"] is False
        assert bundle["head"]["dropout"] == (0.5 if "frozen" in name else 0.1)  # --frozen-dropout; train's default
        assert (demo / "models" / name / "training_curves.png").stat().st_size > 1000
    # one ordering by hand: dynamic - static in the freeze column, seed by seed, with the t-interval
    diff = np.subtract(errors["pretrained-frozen-dynamic"], errors["pretrained-frozen-static"])
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    ordering = next(o for o in table["orderings"] if o["claim"] == "dynamic < static (freeze)")
    assert (ordering["lower"], ordering["higher"]) == ("pretrained-frozen-dynamic", "pretrained-frozen-static")
    assert ordering["difference_g"]["mean"] == pytest.approx(diff.mean(), abs=1e-3)
    assert ordering["difference_g"]["half_width"] == pytest.approx(half, abs=1e-3)
    assert len(table["orderings"]) == 7 and table["settings"]["remaining_weight"] == 1.0
    for o in table["orderings"]:
        d = o["difference_g"]
        assert o["resolved"] == (d["low"] > 0 or d["high"] < 0) == (o["verdict"] != "not resolved"), o
    md = (demo / "table.md").read_text()
    assert "| Method | Dynamic Perception | Mean Error (g) ↓ Fine-tune | Mean Error (g) ↓ Freeze |" in md
    assert md.count("| AnyTouch sim-pretrained (encoder) |") == 2 and "NO PRETRAINED" not in md
    assert all(o["claim"] in md for o in table["orderings"])
    assert "colour jitter, float32), freeze = head only" in md and "(head dropout 0.5)" in md  # what the cells ran
    assert table["settings"]["frozen_dropout"] == 0.5
    for png in ("pours.png", "errors.png"):
        assert (demo / png).read_bytes()[:4] == b"\x89PNG"
    bags = sorted(p.name for p in (demo / "bags").iterdir() if p.is_dir())
    assert len(bags) == table["demonstrations"] and all(b.startswith("expert_") and not b.endswith(".incomplete")
                                                        for b in bags)
    record = json.loads((demo / "bags" / "sim_record.json").read_text())  # recorded as by `anytouch sim record`
    assert [e["folder"] for e in record["episodes_recorded"]] == bags
    assert {(e["initial_g"], e["target_g"]) for e in record["episodes_recorded"]} == {(100.0, 60.0)}
    stages = ["record", "expert reference"] + [f"{step} {name}" for step in ("train", "evaluate") for name in CELLS]
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
    assert expert["timeouts"] == 0 and expert["mean_g"] < 3.0, expert
    trivial_g = min(target_g, initial_g - target_g)  # error of pouring nothing / everything
    finishing = {name: c["mean_g"] for name, c in table["cells"].items() if c["timeouts"] < table["eval_episodes"]}
    assert finishing and min(finishing.values()) < trivial_g, table["cells"]


@pytest.mark.slow
def test_without_a_pretrained_encoder_the_table_says_so_and_runs_the_shared_cells_once(tmp_path, expert_bags):
    """`--encoder none`: the pretrained rows are the random init, said in the header; their dynamic cells are the
    random row's runs (trained and evaluated once), so that ordering is exactly 0 and not resolved."""
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--encoder", "none", "--bags", str(expert_bags), "--episodes-per-cell", "2",
                 "--finetune-epochs", "1", "--frozen-epochs", "2", "--workers", "1", "--out", str(out),
                 "--remaining-weight", "0", "--no-progress"]) == 0  # these bags end before the expert retracts
    table = json.loads((out / "table.json").read_text())
    assert not table["pretrained"] and "NO PRETRAINED ENCODER" in table["header"][1]
    assert "NO PRETRAINED ENCODER" in (out / "table.md").read_text()
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(CELLS[:4])
    for mode in ("finetune", "frozen"):
        shared, own = table["cells"][f"pretrained-{mode}-dynamic"], table["cells"][f"random-{mode}-dynamic"]
        assert shared["run"] == f"random-{mode}-dynamic" and shared["errors_g"] == own["errors_g"]
    for mode in ("fine-tune", "freeze"):  # one run on both sides: no difference, and the table does not claim one
        ordering = next(o for o in table["orderings"] if o["claim"] == f"pretrained < random ({mode})")
        assert ordering["difference_g"]["mean"] == 0.0 and ordering["verdict"] == "not resolved"


@pytest.mark.parametrize(("args", "message"), [
    (["--finetune", "bogus"], "expected 'frozen', 'all' or 'last:N'"),
    (["--finetune", "last:0"], "got 'last:0'"),
    (["--finetune", "last:9"], "finetune last:9 exceeds the 2 blocks of the encoder of --preset anytouch-tiny"),
    (["--preset", "anytouch-huge"], "unknown encoder preset 'anytouch-huge'"),
    (["--target-g", "120"], "need 0 < target_g < initial_g"),
    (["--encoder", "no-such-bundle"], "model bundle folder not found"),
])
def test_demo_checks_its_settings_before_recording(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--episodes", "1", "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing recorded, nothing created


def test_demo_refuses_a_frozen_dropout_out_of_range_by_its_flag(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--quick", "--out", str(out), "--frozen-dropout", "1"])
    assert exc.value.code == 2 and "--frozen-dropout: must be a finite number in [0, 1)" in capsys.readouterr().err
    assert not out.exists()


def test_demo_refuses_a_used_out_folder_before_recording(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--quick", "--episodes", "1", "--out", str(tmp_path), "--no-progress"]) == 2
    assert f"{tmp_path} exists and is not empty; choose a new folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("eval_episodes", 0, "DemoConfig.eval_episodes must be >= 1, got 0"),
    ("threads", 0, "DemoConfig.threads must be >= 1, got 0"),
    ("threads", 2.0, "DemoConfig.threads must be an integer, got 2.0"),
    ("target_g", float("nan"), r"DemoConfig.target_g must be in \(0, 1000\], got nan"),
    ("finetune", "frozen", "finetune must be 'all' or 'last:N'"),
    ("sensors", ["tac3d"], "unknown sensor model 'tac3d'"),
    ("target_g", 95.0, "no target in .95, 95. g lies 10 g below an initial mass in .100, 100. g"),
])
def test_demo_config_is_checked_when_built(tmp_path, field, value, message):
    from anytouch_policy.demo.config import DemoConfig
    from anytouch_policy.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        DemoConfig(out=tmp_path / "run", **{field: value})
