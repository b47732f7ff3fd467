"""The `anytouch` entry point: a verb's error is one clean line and exit status 2."""

from anytouch_policy.cli.main import main


def test_cli_errors_are_clean(tmp_path, capsys):
    code = main(["train", "--bags", str(tmp_path / "nowhere"), "--preset", "anytouch-tiny", "--out",
                 str(tmp_path / "p")])
    assert code == 2
    assert "anytouch train: error:" in capsys.readouterr().err
    assert main(["eval", "--policy", str(tmp_path / "nope"), "--episodes", "1"]) == 2
    assert "policy bundle folder not found" in capsys.readouterr().err
