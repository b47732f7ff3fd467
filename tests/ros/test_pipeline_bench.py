"""bench/pipeline.py runs the pour node set and reports its figures (measured, never asserted against targets),
alone and beside a busy process pinned to one core."""

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pipeline.py"


@pytest.mark.slow
def test_pipeline_bench_reports_latency_jitter_ticks_and_cpu(ros_env, pour_policy, tmp_path, monkeypatch):
    """One run, beside the busy neighbour (the node set's start-up is most of this test's time)."""
    spec = importlib.util.spec_from_file_location("pipeline_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    result = bench.run_pipeline_bench(seconds=3.0, policy=str(pour_policy), sensors="left:gelsight_mini,right:digit",
                                      threads=1, domain_id=int(ros_env["ROS_DOMAIN_ID"]), busy_neighbour=True,
                                      log=lambda msg: None)
    assert list(temp.iterdir()) == [] and result["logs"] is None  # no logs asked for: its temporary folder is gone
    assert result["busy_neighbour_cpu"] == max(os.sched_getaffinity(0))
    latency = result["frame_to_command_latency_ms"]
    assert 0 < latency["p50_latency_ms"] <= latency["p99_latency_ms"] < 5000
    embedding = result["frame_to_embedding_latency_ms"]  # the encoder node's own figures
    assert 0 < embedding["p50_latency_ms"] <= embedding["p99_latency_ms"] <= embedding["max_latency_ms"] < 5000
    jitter = result["policy_tick_jitter_ms"]
    assert 0 <= jitter["p50_jitter_ms"] <= jitter["p99_jitter_ms"] <= jitter["max_jitter_ms"]
    assert 0 <= result["missed_ticks"] <= 5 * (result["seconds"] + 2)  # grid slots of the window and about a second
    assert 10 <= result["actions_received"] <= 20 and 3.0 <= result["action_rate_hz"] <= 7.0
    assert set(result["cpu_percent"]) == {"sensor_left", "sensor_right", "encoder", "policy", "arm"}
    assert all(v > 0 for v in result["cpu_percent"].values())
    assert result["sensor_rate_hz"]["right"] > result["sensor_rate_hz"]["left"] > 0  # 60 Hz DIGIT, 25 Hz Mini
    assert result["arm_steps_applied"] > 0  # the always-pour fixture moves the arm
