"""`anytouch eval` on the demo's policies: JSON and plot, the plot path checked first, the report before the plot."""

import json
import re

import pytest

from anytouch_policy.cli.main import main


def test_eval_cli_json_and_plot(demo, capsys, tmp_path):
    plot = tmp_path / "pour.png"
    code = main(["eval", "--policy", str(demo / "models" / "pretrained-frozen-dynamic"), "--episodes", "1",
                 "--seed", "3", "--json", "--plot", str(plot), "--threads", "2"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"][0]["seed"] == 1_000_000_000 + 3 * 10_000
    assert out["mean_abs_error_g"] == pytest.approx(out["episodes"][0]["abs_error_g"])
    assert out["variant"]["mode"] == "frozen" and out["plot"] == str(plot) and plot.is_file()


def test_eval_checks_the_plot_path_before_any_episode(demo, capsys, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    code = main(["eval", "--policy", str(demo / "models" / "pretrained-frozen-static"), "--episodes", "1", "--json",
                 "--plot", str(tmp_path / "file" / "x.png")])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was evaluated
    assert "anytouch eval: error: --plot: cannot create" in captured.err and "file is a file" in captured.err


def test_eval_prints_the_report_before_the_plot_can_fail(demo, capsys, tmp_path, monkeypatch):
    import anytouch_policy.eval.policy

    def disk_full(evals, path, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(anytouch_policy.eval.policy, "plot_pours", disk_full)
    code = main(["eval", "--policy", str(demo / "models" / "pretrained-frozen-static"), "--episodes", "1", "--json",
                 "--plot", str(tmp_path / "x.png")])
    assert code == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    (episode,) = report["episodes"]
    assert report["mean_abs_error_g"] == pytest.approx(abs(episode["poured_g"] - report["target_g"]), abs=1e-3)
    assert "No space left on device" in captured.err and "the report above is complete" in captured.err


def test_eval_another_sensor_model_through_the_universal_token(mini_policy_universal, capsys):
    """A GelSight-Mini policy trained with the universal token, evaluated with duragel (never in pretraining nor in
    the demonstrations) standing in for its sensor: the rig renders duragel frames under the policy's sensor name."""
    code = main(["eval", "--policy", str(mini_policy_universal), "--sensor", "duragel:left", "--token", "universal",
                 "--episodes", "1", "--json", "--no-plot", "--workers", "1"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["token_mode"] == "universal" and out["sensors"] == ["gelsight_mini_left"]
    assert out["sensor_models"] == {"gelsight_mini_left": "duragel"} and len(out["episodes"]) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--sensor", "digit"], "cannot stand in for the policy's 'gelsight_mini_left' .gelsight_mini.: the policy uses "
                            "sensor-specific tokens"),
    (["--sensor", "gelsight_mini", "--token", "universal"], "--token universal: policy bundle .* was trained with "
                                                            "token mode specific"),
    (["--sensor", "digit", "--sensor", "digit:right"], "give one --sensor per policy sensor"),
])
def test_eval_refuses_a_sensor_the_policy_cannot_read(mini_policy, capsys, args, message):
    assert main(["eval", "--policy", str(mini_policy), "--episodes", "1", "--json", "--no-plot", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and re.search(message, captured.err)


def test_a_sensor_of_the_same_type_stands_in_without_the_universal_token(mini_policy):
    from anytouch_policy.eval.policy import eval_sensors
    from anytouch_policy.policy.runtime import PolicyRuntime
    from anytouch_policy.sim.sensor_params import Finger, SensorSpec

    runtime = PolicyRuntime.from_bundle(mini_policy, device="cpu")
    (spec,) = eval_sensors(runtime, [SensorSpec.parse("gelsight_mini:right")])
    assert spec.name == "gelsight_mini_left" and spec.finger is Finger.RIGHT and spec.model.name == "gelsight_mini"
    named = [SensorSpec.parse("digit"), SensorSpec.parse("gelsight_mini")]  # names the policy's: kept as given
    assert eval_sensors(runtime, named) == named
