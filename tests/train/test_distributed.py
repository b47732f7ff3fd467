"""`anytouch train` under torchrun with 2 gloo ranks on the CPU: same code, batches sharded, replicas in sync."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ["finetune", "frozen"])
def test_torchrun_two_ranks(tmp_path, expert_bags, tiny_encoder, mode):
    out = tmp_path / "policy"
    script = tmp_path / "job.py"
    script.write_text(f"""
import hashlib, json, os, torch
from anytouch_policy.train import TrainConfig, train
result = train(TrainConfig(bags=[{str(expert_bags)!r}], out={str(out)!r}, encoder={str(tiny_encoder)!r},
                           mode={mode!r}, finetune="last:1", epochs=1, batch_size=8, episodes_per_batch=2,
                           hidden=16, device="cpu", progress=False, cache_dir={str(tmp_path / "cache")!r}))
head = b"".join(v.numpy().tobytes() for k, v in sorted(result.state.items()) if k.startswith("head.mlp"))
rank = int(os.environ["RANK"])
with open(f"rank{{rank}}.json", "w") as fh:
    json.dump({{"world": result.summary["world_size"], "head": hashlib.sha256(head).hexdigest(),
               "val": result.summary["samples"]["val"], "confusion": result.best.confusion.tolist()}}, fh)
""")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         str(script)], capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)})  # torchrun's logs
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert ranks[0]["head"] == ranks[1]["head"]  # DDP kept the replicas identical
    assert ranks[0]["confusion"] == ranks[1]["confusion"]  # validation summed over both ranks' shards
    assert sum(map(sum, ranks[0]["confusion"])) == ranks[0]["val"]  # ... covering every validation tick once
    assert (out / "config.json").is_file()
    assert json.loads((out / "config.json").read_text())["training"]["world_size"] == 2
