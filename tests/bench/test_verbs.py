"""Every library bench is a verb of `anytouch bench`: the sim and export benches run there and print their JSON."""

import json

import pytest

from anytouch_policy.cli.bench import BENCHES
from anytouch_policy.cli.main import main
from anytouch_policy.sim.sensor_model import list_sensor_models


def test_every_bench_module_is_a_verb_with_help(capsys):
    assert set(BENCHES) == {"encoder", "train", "contention", "sim", "pretrain-value", "export", "probe",
                            "appearance", "transfer", "targets"}
    for name in BENCHES:
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", name, "--help"])
        assert exit_info.value.code == 0
        assert f"anytouch bench {name}" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_sim_prints_every_figure(capsys):
    assert main(["bench", "sim", "--episodes", "1", "--probe-episodes", "3", "--fps-frames", "5"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures["expert"]) == {"100->60", "90->40", "120->60", "100->30"} and figures["mass_conserved"]
    shipped = set(list_sensor_models())  # every shipped sensor model, gelsight_mini and digit among them
    assert set(figures["dynamics"]) == set(figures["render_fps_one_core"]) == shipped >= {"gelsight_mini", "digit"}
    assert figures["determinism"]["same_seed_identical"] and figures["determinism"]["other_seed_differs"]


def test_bench_export_reports_size_and_time(expert_bags, tmp_path, capsys):
    assert main(["bench", "export", "--bags", str(expert_bags), "--png-level", "1", "--work", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["episodes"] == 3 and figures["frames"] > 0 and figures["png_level"] == 1
    assert figures["dataset_mb"] > 0 and figures["bags_mb"] > 0 and (tmp_path / "dataset").is_dir()
