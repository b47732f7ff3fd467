"""torchrun runs the same code on 2 CPU processes (gloo): ranks shard data and average metrics."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from anytouch_policy.distributed import init_from_env

ROOT = Path(__file__).resolve().parents[2]


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_from_env("cpu")
    model = torch.nn.Linear(2, 2)
    assert not ctx.enabled and ctx.is_main and ctx.wrap(model) is model
    assert ctx.shard([1, 2, 3]) == [1, 2, 3]
    assert float(ctx.all_reduce_mean(torch.tensor(3.0))) == 3.0


def test_torchrun_two_ranks(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import json, torch
        from anytouch_policy.distributed import distributed
        with distributed("cpu") as ctx:
            model = ctx.wrap(torch.nn.Linear(1, 1))
            model(torch.ones(2, 1)).sum().backward()  # a real DDP step: the reducer must be released at teardown
            mine = ctx.shard(list(range(10)))
            mean = float(ctx.all_reduce_mean(torch.tensor(float(sum(mine)))))
            total = float(ctx.all_reduce_sum(torch.tensor(float(len(mine)))))
            with open(f"rank{ctx.rank}.json", "w") as fh:
                json.dump({"rank": ctx.rank, "mine": mine, "mean": mean, "total": total,
                           "ddp": type(model).__name__}, fh)
    """))
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script)], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["mine"] for r in rows] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert all(r["mean"] == 22.5 and r["total"] == 10 and r["ddp"] == "DistributedDataParallel" for r in rows)
