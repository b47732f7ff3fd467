"""The GPU figures in one run, written to one JSON file (bench/gpu.sh sets up .venv first, then runs this).

    bench/gpu.sh                                  # on a CUDA machine: every part, under 8 minutes
    .venv/bin/python bench/gpu.py --out gpu.json  # the same without the set-up
    .venv/bin/python bench/gpu.py --smoke         # every part on the CPU with the tiny preset: checks the plumbing

Parts, each a subprocess with its own time limit (a failing or hanging part never loses the others' figures):
- cuda_tests: `pytest -m cuda` (CUDA vs CPU encoder, autocast fine-tune on the GPU, the NCCL backend);
- encoder: `anytouch bench encoder --devices cuda` for anytouch-small and anytouch-large, batch 1 and 2, float32 /
  bfloat16 / float16, p50 and p99 per call (a batch-2 call is one 2-sensor window pair);
- finetune_large, finetune_large_amp: `anytouch bench train --preset anytouch-large --device cuda --no-frozen`, in
  float32 and in bfloat16 autocast: steps/s and peak CUDA memory;
- node_latency: bench/pipeline.py with a random-weight anytouch-large policy, the encoder node on cuda in float16:
  frame-to-embedding and frame-to-command latency through the ROS nodes.
Without CUDA (and without --smoke) the parts that need it are listed under "skipped" with the reason. "summary" holds
the headline figures and the issue's targets: large preset p99 <= 5 ms per 2-sensor window in half precision,
frame-to-command p99 <= 40 ms with the large encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ANYTOUCH = [PYTHON, "-m", "anytouch_policy.cli.main"]
#: The issue's targets (issue 16).
LARGE_HALF_P99_MS = 5.0
FRAME_TO_COMMAND_P99_MS = 40.0


@dataclass
class Part:
    name: str
    argv: list[str]
    timeout_s: float
    parse: str = "json"  # json: the command prints one JSON document; junit: pytest's XML report at `junit`
    junit: Path | None = None
    result: dict = field(default_factory=dict)


def cuda_test_files() -> list[str]:
    """The test files holding `cuda` tests (collecting only those keeps the part short)."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                  if "mark.cuda" in p.read_text())


def plan(*, smoke: bool, work: Path, domain_id: int | None) -> list[Part]:
    """The parts: full size on cuda, or (smoke) the tiny preset on the CPU with a few iterations."""
    device = "cpu" if smoke else "cuda"
    large = "anytouch-tiny" if smoke else "anytouch-large"
    presets = "anytouch-tiny" if smoke else "anytouch-small,anytouch-large"
    enc_iters = ["--seconds", "0", "--min-iters", "2", "--max-iters", "2"] if smoke else ["--seconds", "2"]
    train = ["--episodes", "2", "--finetune-steps", "1", "--batch-size", "8"] if smoke else [
        "--episodes", "2", "--finetune-steps", "10", "--batch-size", "32"]
    junit = work / "cuda_tests.xml"
    domain = ["--domain-id", str(domain_id)] if domain_id is not None else []
    return [
        Part("cuda_tests", [PYTHON, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "-rs",
                            f"--junitxml={junit}", *cuda_test_files()], 300, parse="junit", junit=junit),
        Part("encoder", [*ANYTOUCH, "bench", "encoder", "--devices", device, "--presets", presets,
                         "--batches", "1,2", *enc_iters], 240),
        Part("finetune_large", [*ANYTOUCH, "bench", "train", "--preset", large, "--device", device, "--no-frozen",
                                *train], 180),
        Part("finetune_large_amp", [*ANYTOUCH, "bench", "train", "--preset", large, "--device", device,
                                    "--no-frozen", "--amp", *train], 180),
        Part("node_latency", [PYTHON, str(REPO / "bench" / "pipeline.py"), "--preset", large, "--device", device,
                              "--dtype", "float32" if smoke else "float16", "--seconds", "3" if smoke else "20",
                              *domain], 240),
    ]


def _junit(path: Path) -> dict:
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    cases = {}
    for case in suite.iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        detail = next((child.get("message", "") for child in case if child.tag in ("failure", "error", "skipped")),
                      "")
        cases[f"{case.get('classname')}::{case.get('name')}"] = {"outcome": outcome, **({"detail": detail[:300]}
                                                                                        if detail else {})}
    counts = {k: sum(c["outcome"] == k for c in cases.values()) for k in ("passed", "failure", "error", "skipped")}
    return {"counts": counts, "tests": cases}


def run_part(part: Part, *, deadline: float, env: dict[str, str]) -> dict:
    """Run one part within its own limit and what is left of the budget; never raises."""
    left = deadline - time.monotonic()
    if left < 10:
        return {"status": "skipped", "reason": "the time budget ran out before this part"}
    start = time.monotonic()
    try:
        proc = subprocess.run(part.argv, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=min(part.timeout_s, left))
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-1500:]
        return {"status": "failed", "reason": f"timed out after {min(part.timeout_s, left):.0f} s",
                "stderr_tail": tail.decode("utf-8", "replace") if isinstance(tail, bytes) else tail,
                "seconds": round(time.monotonic() - start, 1)}
    out = {"seconds": round(time.monotonic() - start, 1), "exit_status": proc.returncode}
    try:
        out["result"] = _junit(part.junit) if part.parse == "junit" else json.loads(proc.stdout)
    except (OSError, ET.ParseError, json.JSONDecodeError) as exc:
        out["parse_error"] = f"{type(exc).__name__}: {exc}"
    ok = proc.returncode == 0 and "result" in out
    out["status"] = "ok" if ok else "failed"
    if not ok:
        out["stderr_tail"] = proc.stderr[-1500:]
    return out


def summarise(parts: dict[str, dict]) -> dict:
    """Headline figures of the parts that ran, and the targets where their figures exist."""
    summary: dict = {}
    targets: dict = {}
    enc = parts.get("encoder", {}).get("result")
    if enc:
        table: dict = {}
        for row in enc["results"]:
            if row["stage"] == "embed":
                table.setdefault(row["preset"], {}).setdefault(row["precision"], {})[str(row["batch"])] = {
                    "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"], "device": row["device"]}
        summary["encoder_ms"] = table
        half = [table.get("anytouch-large", {}).get(p, {}).get("2", {}).get("p99_ms") for p in ("float16", "bfloat16")]
        half = [v for v in half if v is not None]
        if half:
            targets["large_batch2_half_p99_ms"] = {"value": min(half), "target": LARGE_HALF_P99_MS,
                                                   "met": min(half) <= LARGE_HALF_P99_MS}
    for name in ("finetune_large", "finetune_large_amp"):
        ft = (parts.get(name, {}).get("result") or {}).get("finetune")
        if ft:
            summary[name] = {k: ft.get(k) for k in ("amp", "steps_per_s", "samples_per_s", "peak_cuda_memory_mb",
                                                    "peak_rss_mb") if k in ft}
    node = parts.get("node_latency", {}).get("result")
    if node:
        summary["node_latency_ms"] = {"frame_to_embedding": node.get("frame_to_embedding_latency_ms"),
                                      "frame_to_command": node.get("frame_to_command_latency_ms"),
                                      "missed_ticks": node.get("missed_ticks"), "device": node.get("encoder_device")}
        p99 = (node.get("frame_to_command_latency_ms") or {}).get("p99_latency_ms")
        if p99 is not None:
            targets["frame_to_command_p99_ms"] = {"value": p99, "target": FRAME_TO_COMMAND_P99_MS,
                                                  "met": p99 <= FRAME_TO_COMMAND_P99_MS}
    tests = parts.get("cuda_tests", {}).get("result")
    if tests:
        summary["cuda_tests"] = tests["counts"]
        summary["nccl"] = {name: case for name, case in tests["tests"].items()
                           if "nccl" in name or "two_ranks[cuda]" in name}
    summary["targets"] = targets
    return summary


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info.update(cuda=torch.version.cuda, gpus=[torch.cuda.get_device_name(i)
                                                   for i in range(torch.cuda.device_count())])
    return info


def run_gpu_bench(*, out: Path, smoke: bool = False, budget_s: float = 450.0, domain_id: int | None = None,
                  log=print) -> dict:
    start = time.monotonic()
    info = machine()
    cuda = info["cuda_available"]
    mode = "smoke (tiny preset on the CPU)" if smoke else ("cuda" if cuda else "cpu-only")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    parts: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as work:
        for part in plan(smoke=smoke, work=Path(work), domain_id=domain_id):
            if not (cuda or smoke):
                skipped[part.name] = "no CUDA device: torch.cuda.is_available() is False"
                continue
            log(f"[gpu bench] {part.name}: {' '.join(part.argv[2:] if part.argv[0] == PYTHON else part.argv)}")
            parts[part.name] = run_part(part, deadline=start + budget_s, env=env)
            parts[part.name]["command"] = part.argv
            log(f"[gpu bench] {part.name}: {parts[part.name]['status']} in {parts[part.name].get('seconds', 0)} s")
            if parts[part.name]["status"] == "skipped":
                skipped[part.name] = parts[part.name]["reason"]
    result = {
        "bench": "gpu", "mode": mode, "date": datetime.now().isoformat(timespec="seconds"), "machine": info,
        "summary": summarise(parts), "skipped": skipped,
        "failed": sorted(n for n, p in parts.items() if p["status"] == "failed"),
        "parts": parts, "seconds": round(time.monotonic() - start, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default runs/gpu_bench-<time>.json)")
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU, tiny preset, a few iterations")
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting parts after this (s)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the node latency part")
    args = parser.parse_args()
    out = args.out or REPO / "runs" / f"gpu_bench-{datetime.now():%Y%m%d-%H%M%S}.json"
    result = run_gpu_bench(out=out, smoke=args.smoke, budget_s=args.budget_s, domain_id=args.domain_id,
                           log=lambda msg: print(msg, file=sys.stderr))
    print(json.dumps({k: result[k] for k in ("mode", "summary", "skipped", "failed", "seconds")}, indent=2))
    print(f"[gpu bench] written to {out}", file=sys.stderr)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
