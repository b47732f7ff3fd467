"""`anytouch bench transfer` and `anytouch bench targets` on a tiny setup (tiny preset, 3-4 short demonstrations, 2
episodes a cell, episodes cut at 30 ticks): every field of the JSON, the paired figures recomputed from the
episodes, the markdown table and the plot, and the inputs each refuses."""

import json
from pathlib import Path

import numpy as np
import pytest

from anytouch_policy.cli.main import main
from anytouch_policy.eval.stats import mean_ci, paired_difference

SMALL = ["--max-ticks", "30", "--eval-episodes", "2", "--epochs", "2", "--workers", "1", "--threads", "1"]


def _check_cell(figures: dict, episodes: int) -> np.ndarray:
    errors = np.array(figures["abs_errors_g"])
    assert figures["episodes"] == len(errors) == episodes
    ci = mean_ci(errors)
    assert figures["mean_abs_error_g"]["mean"] == pytest.approx(ci.mean)
    assert figures["mean_abs_error_g"]["half_width"] == pytest.approx(ci.half_width)
    assert 0 <= figures["timeouts"] <= episodes
    return errors


@pytest.mark.slow
def test_bench_transfer_fills_every_cell(tmp_path, capsys):
    from anytouch_policy.train.run import init_encoder_bundle

    other = init_encoder_bundle("anytouch-tiny", tmp_path / "other-encoder", seed=5)  # stands in for a pretrained one
    out = tmp_path / "transfer"
    assert main(["bench", "transfer", "--out", str(out), "--preset", "anytouch-tiny", "--encoder", str(other),
                 "--episodes", "3", *SMALL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((out / "transfer.json").read_text())
    assert result["rows"] == ["random_init", "pretrained"]
    assert result["columns"] == ["gelsight_mini", "digit", "duragel"]
    assert {c: m["model"] for c, m in result["column_models"].items()} == {c: c for c in result["columns"]}
    for name in result["rows"]:
        assert result["policies"][name]["variant"]["token_mode"] == "universal"
    errors = {(r, c): _check_cell(result["cells"][r][c], 2) for r in result["rows"] for c in result["columns"]}
    for c in result["columns"]:  # pretrained - random init, episode by episode on the same seeds
        diff = result["paired_vs_first_row"]["pretrained - random_init"][c]
        assert diff["mean"] == pytest.approx(
            paired_difference(errors["pretrained", c], errors["random_init", c]).mean)
    for r in result["rows"]:
        assert set(result["paired_vs_seen"][r]) == {"digit - gelsight_mini", "duragel - gelsight_mini"}
    _check_cell(result["expert"], 2)
    assert set(result["targets"]) == {"pretrained digit <= 3 g", "pretrained digit <= 2x its mini error",
                                      "pretrained duragel <= 4 g", "pretrained below random_init with digit, resolved",
                                      "pretrained below random_init with duragel, resolved"}
    table = (out / "transfer.md").read_text()
    assert "| random_init |" in table and "| pretrained |" in table and "| paired: pretrained - random_init |" in table
    assert result["timing_s"] and result["seconds"] > 0


@pytest.mark.slow
def test_bench_transfer_pools_several_heads_per_row_head_by_head(tmp_path, capsys):
    out = tmp_path / "transfer"
    assert main(["bench", "transfer", "--out", str(out), "--preset", "anytouch-tiny", "--episodes", "3", "--heads",
                 "2", "--eval-sensor", "gelsight_mini", "--eval-sensor", "digit", *SMALL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["heads"] == 2 and result["rows"] == ["random_init"]
    bundles = result["policies"]["random_init"]["bundles"]
    assert len(bundles) == len(set(bundles)) == 2
    seeds = [json.loads((Path(b) / "config.json").read_text())["training"]["seed"] for b in bundles]
    assert seeds == [0, 1]  # head k trains from --seed + k
    for c in result["columns"]:
        figures = result["cells"]["random_init"][c]
        errors = _check_cell(figures, 4)  # both heads' 2 episodes, pooled
        assert figures["per_head_mean_abs_error_g"] == pytest.approx([errors[:2].mean(), errors[2:].mean()], abs=1e-4)
    diff = result["paired_vs_seen"]["random_init"]["digit - gelsight_mini"]  # head k's episode against head k's
    assert diff["mean"] == pytest.approx(paired_difference(
        result["cells"]["random_init"]["digit"]["abs_errors_g"],
        result["cells"]["random_init"]["gelsight_mini"]["abs_errors_g"]).mean)
    assert "| random_init, each head |" in (out / "transfer.md").read_text()


def test_bench_transfer_refuses_a_policy_with_specific_tokens(mini_policy, tmp_path, capsys):
    assert main(["bench", "transfer", "--out", str(tmp_path / "t"), "--policy", f"mini={mini_policy}", *SMALL]) == 2
    assert "trained with --token universal" in capsys.readouterr().err
    assert main(["bench", "transfer", "--out", str(tmp_path / "h"), "--policy", f"mini={mini_policy}", "--heads", "2",
                 *SMALL]) == 2
    assert "takes no --encoder, --bags or --heads" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_targets_pairs_beside_the_expert(tmp_path, capsys):
    out = tmp_path / "targets"
    assert main(["bench", "targets", "--out", str(out), "--preset", "anytouch-tiny", "--episodes", "4",
                 "--mode", "frozen", "--pair", "100:45", "--pair", "90:70", *SMALL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((out / "targets.json").read_text())
    recorded = json.loads((out / "bags" / "sim_record.json").read_text())["episodes_recorded"]
    seen = [(e["initial_g"], e["target_g"]) for e in recorded]
    assert result["demonstrations"]["episodes"] == 4 and all(80 <= i <= 120 and 20 <= t <= 80 for i, t in seen)
    assert [(p["initial_g"], p["target_g"]) for p in result["pairs"]] == [(100.0, 45.0), (90.0, 70.0)]
    for pair in result["pairs"]:
        nearest = min(max(abs(pair["initial_g"] - i), abs(pair["target_g"] - t)) for i, t in seen)
        assert pair["nearest_demonstration_g"] == pytest.approx(nearest, abs=0.01) and nearest > 0
        policy, expert = _check_cell(pair["policy"], 2), _check_cell(pair["expert"], 2)
        assert pair["policy_minus_expert"]["mean"] == pytest.approx(paired_difference(policy, expert).mean)
        assert pair["checks"]["policy <= 2 g"] == (policy.mean() <= 2.0)
        assert pair["checks"]["within 1 g of the expert"] == (policy.mean() - expert.mean() <= 1.0)
    assert result["all_pairs_met"] == all(all(p["checks"].values()) for p in result["pairs"])
    assert result["policy"]["variant"]["mode"] == "frozen"
    assert (out / "targets.png").stat().st_size > 10_000
    assert (out / "targets.md").read_text().count("\n| 100 | 45 |") == 1

    # a demonstration's own pair is no evaluation pair (the trained policy and its bags are reused)
    initial, target = seen[0]
    assert main(["bench", "targets", "--out", str(tmp_path / "again"), "--bags", str(out / "bags"), "--policy",
                 str(out / "policy"), "--pair", f"{initial}:{target}", *SMALL]) == 2
    assert "are demonstration pairs" in capsys.readouterr().err
