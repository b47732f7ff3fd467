"""bench/gpu.sh, the one command for the GPU figures, on a machine without CUDA: it writes its JSON and names every
part it skipped; its smoke mode runs every part (tests, encoder bench, fine-tunes, node latency through the ROS
nodes) on the CPU with the tiny preset, so the plumbing a GPU run depends on is exercised here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
PARTS = {"cuda_tests", "encoder", "finetune_large", "finetune_large_amp", "node_latency"}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the full GPU bench")
def test_without_cuda_the_script_writes_its_json_and_names_every_skipped_part(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([str(REPO / "bench" / "gpu.sh"), "--no-setup", "--out", str(out)], env=_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "cpu-only" and result["machine"]["cuda_available"] is False
    assert set(result["skipped"]) == PARTS and result["parts"] == {} and result["failed"] == []
    assert all("no CUDA device" in reason for reason in result["skipped"].values())
    assert json.loads(proc.stdout)["skipped"] == result["skipped"]  # the summary on stdout says the same


@pytest.mark.slow
def test_smoke_mode_runs_every_part_on_the_cpu(ros_env, tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py"), "--smoke", "--out", str(out),
                           "--domain-id", ros_env["ROS_DOMAIN_ID"]], env=_env(), cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    result = json.loads(out.read_text())
    assert proc.returncode == 0 and result["failed"] == [], json.dumps(result["parts"], indent=1)[-3000:]
    assert set(result["parts"]) == PARTS and result["skipped"] == {}
    summary = result["summary"]
    tiny = summary["encoder_ms"]["anytouch-tiny"]
    assert {"float32", "bfloat16"} <= set(tiny) and all(0 < tiny[p][b]["p50_ms"] <= tiny[p][b]["p99_ms"]
                                                        for p in tiny for b in ("1", "2"))
    assert summary["finetune_large"]["amp"] is False and summary["finetune_large_amp"]["amp"] is True
    assert summary["finetune_large"]["steps_per_s"] > 0 and summary["finetune_large"]["peak_rss_mb"] > 0
    latency = summary["node_latency_ms"]
    assert latency["device"] == "cpu" and 0 < latency["frame_to_embedding"]["p99_latency_ms"] < 5000
    assert summary["targets"]["frame_to_command_p99_ms"]["target"] == 40.0
    expected = "passed" if torch.cuda.is_available() else "skipped"
    assert summary["cuda_tests"][expected] >= 5 and summary["cuda_tests"]["failure"] == 0
    assert any("nccl" in name for name in summary["nccl"])
