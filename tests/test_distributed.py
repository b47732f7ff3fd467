"""torchrun runs the same code on 2 processes: gloo on the CPU, NCCL on GPUs (`cuda` tests); ranks shard data and
average metrics."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from anytouch_policy.distributed import init_from_env

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_from_env("cpu")
    model = torch.nn.Linear(2, 2)
    assert not ctx.enabled and ctx.is_main and ctx.wrap(model) is model
    assert ctx.shard([1, 2, 3]) == [1, 2, 3]
    assert float(ctx.all_reduce_mean(torch.tensor(3.0))) == 3.0


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_torchrun_two_ranks(tmp_path, device):
    """gloo on the CPU; on GPUs the NCCL backend, one rank per GPU (needs two)."""
    if device == "cuda" and torch.cuda.device_count() < 2:
        pytest.skip(f"NCCL between ranks needs 2 GPUs, this machine has {torch.cuda.device_count()}")
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch
        import torch.distributed as dist
        from anytouch_policy.distributed import distributed
        with distributed({device!r}) as ctx:
            model = ctx.wrap(torch.nn.Linear(1, 1).to(ctx.device))
            model(torch.ones(2, 1, device=ctx.device)).sum().backward()  # a real DDP step: released at teardown
            mine = ctx.shard(list(range(10)))
            mean = float(ctx.all_reduce_mean(torch.tensor(float(sum(mine)), device=ctx.device)))
            total = float(ctx.all_reduce_sum(torch.tensor(float(len(mine)), device=ctx.device)))
            with open(f"rank{{ctx.rank}}.json", "w") as fh:
                json.dump({{"rank": ctx.rank, "mine": mine, "mean": mean, "total": total,
                           "ddp": type(model).__name__, "backend": dist.get_backend()}}, fh)
    """))
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script)], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)})  # torchrun's logs
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["mine"] for r in rows] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert all(r["mean"] == 22.5 and r["total"] == 10 and r["ddp"] == "DistributedDataParallel" for r in rows)
    assert {r["backend"] for r in rows} == {"nccl" if device == "cuda" else "gloo"}


@pytest.mark.cuda
def test_the_nccl_backend_reduces_on_this_gpu(tmp_path):
    """The backend itself on a one-GPU machine: a one-rank NCCL group all-reduces a CUDA tensor (the project starts
    NCCL only with two ranks or more, which test_torchrun_two_ranks covers on two GPUs)."""
    script = tmp_path / "nccl.py"
    script.write_text(textwrap.dedent("""
        import json, torch
        import torch.distributed as dist
        torch.cuda.set_device(0)
        dist.init_process_group("nccl", init_method="tcp://127.0.0.1:%d" % PORT, rank=0, world_size=1)
        value = torch.full((4,), 3.0, device="cuda")
        dist.all_reduce(value)
        torch.cuda.synchronize()
        print(json.dumps({"backend": dist.get_backend(), "sum": value.tolist(), "nccl": torch.cuda.nccl.version()}))
        dist.destroy_process_group()
    """).replace("PORT", str(_free_port())))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["backend"] == "nccl" and result["sum"] == [3.0] * 4 and len(result["nccl"]) >= 2
