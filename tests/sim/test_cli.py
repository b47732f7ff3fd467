"""`anytouch sim eval` prints the table-4 JSON; `anytouch sim render` writes strips and GIFs."""

import json

import cv2
from PIL import Image

from anytouch_policy.cli.main import main


def test_sim_eval_json(capsys):
    rc = main(["sim", "eval", "--policy", "expert", "--episodes", "2", "--initial-g", "100", "--target-g", "60",
               "--sensor", "gelsight_mini", "--seed", "1", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "expert" and report["sensors"] == ["gelsight_mini_left"]
    assert len(report["episodes"]) == 2
    errors = [ep["error_g"] for ep in report["episodes"]]
    assert all(abs(ep["poured_g"] - 60.0 - ep["error_g"]) < 1e-6 for ep in report["episodes"])
    assert abs(report["mean_abs_error_g"] - sum(abs(e) for e in errors) / 2) < 1e-9


def test_sim_eval_reports_bad_input_cleanly(capsys):
    assert main(["sim", "eval", "--episodes", "1", "--initial-g", "50", "--target-g", "60"]) == 2
    assert "target_g" in capsys.readouterr().err
    assert main(["sim", "eval", "--episodes", "1", "--sensor", "tac3d"]) == 2
    assert "unknown sensor model 'tac3d'; shipped models: " in capsys.readouterr().err


def test_sim_render_writes_strip_and_gif(tmp_path, capsys):
    rc = main(["sim", "render", "--out", str(tmp_path), "--sensor", "gelsight_mini", "--sensor", "digit:right",
               "--columns", "4", "--seed", "2", "--target-g", "20"])
    assert rc == 0
    for name, (h, w) in {"gelsight_mini_left": (240, 320), "digit_right": (320, 240)}.items():
        strip = cv2.imread(str(tmp_path / f"{name}_strip.png"))
        assert strip.shape[1] == 4 * w and strip.shape[0] > 2 * h
        with Image.open(tmp_path / f"{name}.gif") as gif:
            assert gif.n_frames > 20 and gif.size[0] == w
    assert "poured" in capsys.readouterr().out
