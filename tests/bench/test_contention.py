"""`anytouch bench contention`: the busy neighbour really holds one pinned core while it runs and is gone after, and
the bench reports alone / busy figures and their ratio (measured, never asserted against the target here)."""

import json
import os
import time

import psutil
import pytest

from anytouch_policy.bench.contention import TARGET_SLOWDOWN, busy_neighbour, neighbour_cpu
from anytouch_policy.cli.main import main
from anytouch_policy.errors import ConfigError


def test_the_busy_neighbour_spins_on_its_pinned_core_while_the_block_runs():
    cpu = max(os.sched_getaffinity(0))
    others = {c.pid for c in psutil.Process().children()}  # e.g. a resource tracker an earlier test started
    with busy_neighbour() as pinned:
        assert pinned == cpu
        (child,) = [c for c in psutil.Process().children() if c.pid not in others]
        assert child.cpu_affinity() == [cpu]
        before = sum(child.cpu_times()[:2])
        time.sleep(1.0)
        assert sum(child.cpu_times()[:2]) - before > 0.2  # busy (a sleeping loop uses ~0), even on a loaded machine
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert {c.pid for c in psutil.Process().children()} == others


def test_a_cpu_this_process_may_not_use_is_refused():
    with pytest.raises(ConfigError, match=r"--busy-cpu 4096: this process may run on CPUs \[0"):
        neighbour_cpu(4096)


def test_bench_contention_prints_alone_and_busy_figures(expert_bags, capsys):
    argv = ["bench", "contention", "--preset", "anytouch-tiny", "--bags", str(expert_bags), "--rounds", "1",
            "--encoder-seconds", "0.05", "--batch-size", "16", "--threads", "2"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["target_slowdown"] == TARGET_SLOWDOWN and result["busy_cpu"] == max(os.sched_getaffinity(0))
    encoder, epoch = result["encoder"], result["finetune_epoch"]
    assert encoder["alone"]["iters"] >= 3 and encoder["busy"]["iters"] >= 3
    assert epoch["episodes"] == 3 and epoch["steps"] >= 1 and len(epoch["busy"]["rounds_s"]) == 1
    assert result["slowdown"]["encoder"] == pytest.approx(  # printed to 0.01, of times printed to 0.01 ms
        encoder["busy"]["mean_ms"] / encoder["alone"]["mean_ms"], rel=0.01, abs=0.006)
    ratio = epoch["busy"]["seconds"] / epoch["alone"]["seconds"]  # of times rounded to 1 ms: a tiny epoch is ~30 ms
    assert result["slowdown"]["finetune_epoch"] == pytest.approx(ratio, rel=0.1)
    assert result["within_target"] == (max(result["slowdown"].values()) <= TARGET_SLOWDOWN)
    assert result["thread_settings"]["OMP_WAIT_POLICY"] == "PASSIVE" and result["thread_settings"]["torch_threads"] == 2
