"""`anytouch bench encoder` runs and reports sane figures (numbers are measured, never asserted against targets)."""

import json

import pytest
import torch

from anytouch_policy.bench.encoder import run_encoder_bench
from anytouch_policy.cli.main import main


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The bench sets torch's thread count for the whole process; put it back for the other tests."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_bench_reports_every_case():
    result = run_encoder_bench(["anytouch-tiny"], threads=1, batches=(1, 2), seconds=0.01, min_iters=2, max_iters=3)
    embeds = [r for r in result["results"] if r["stage"] == "embed"]
    cases = {(r["device"], r["precision"], r["batch"]) for r in embeds}
    assert {("cpu", "float32", 1), ("cpu", "float32", 2), ("cpu", "bfloat16", 1), ("cpu", "bfloat16", 2)} <= cases
    for r in embeds:
        assert 2 <= r["iters"] <= 3
        assert 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["windows_per_s"] > 0 and r["params_m"] > 0


def test_bench_cli_prints_json(capsys):
    argv = ["bench", "encoder", "--presets", "anytouch-tiny", "--devices", "cpu", "--batches", "1", "--seconds", "0",
            "--min-iters", "1", "--max-iters", "1", "--threads", "2"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bench"] == "encoder" and result["threads"] == 2
    assert {r["stage"] for r in result["results"]} == {"preprocess", "embed"}


def test_bench_rejects_unknown_preset(capsys):
    assert main(["bench", "encoder", "--presets", "nope"]) == 2
    assert "unknown encoder preset 'nope'" in capsys.readouterr().err
