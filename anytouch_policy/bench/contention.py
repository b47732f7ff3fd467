"""anytouch bench contention --preset anytouch-small --threads 2 > contention.json

How much slower the encoder and a fine-tuning epoch run beside one busy process than alone, both measured in the
same run: a robot PC runs the encoder beside sensor drivers, the recorder and a desktop, so this is the normal case.

The neighbour is a pure-Python busy loop in its own process, pinned to one CPU (default: the last one this process
may use). Rounds alternate encoder alone, encoder beside the neighbour, epoch alone, epoch beside the neighbour; the
encoder's figures pool every round's calls, the epoch's take the median over rounds. `slowdown` is the time of the
work beside the neighbour over its time alone. On 2 cores one torch thread then shares its core, and each parallel
region waits for it: about 2x is what sharing explains (target <= 2.5x). Threads that spin while idle made it 7-40x
(anytouch_policy/threads.py). Figures: docs/training.md#cpu-contention.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from anytouch_policy.cli.args import NONNEGATIVE_INT, POSITIVE, POSITIVE_INT
from anytouch_policy.errors import ConfigError

#: Stays in the scope the bench promises: at most this slowdown beside one busy process.
TARGET_SLOWDOWN = 2.5
#: The neighbour: pin itself, say so, spin. Pure Python, so it needs no library and holds exactly one core.
BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nprint(flush=True)\nwhile True:\n    pass\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="anytouch-small", help="encoder preset, random init (default: %(default)s)")
    parser.add_argument("--threads", type=POSITIVE_INT, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--rounds", type=POSITIVE_INT, default=3, help="alone/busy rounds (default: %(default)s)")
    parser.add_argument("--encoder-seconds", type=POSITIVE, default=2.0,
                        help="encoder calls per round and condition, s (default: %(default)s)")
    parser.add_argument("--episodes", type=POSITIVE_INT, default=2,
                        help="expert episodes recorded for the fine-tuning epoch (default: %(default)s)")
    parser.add_argument("--bags", default=None, metavar="DIR", help="use these episodes instead of recording")
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    parser.add_argument("--busy-cpu", type=NONNEGATIVE_INT, default=None,
                        help="CPU the busy neighbour is pinned to (default: the last this process may use)")


def neighbour_cpu(cpu: int | None = None) -> int:
    """The CPU a busy neighbour takes: `cpu`, checked against this process's CPUs, or the last of them."""
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("a busy neighbour is pinned with sched_setaffinity, which needs Linux")
    allowed = sorted(os.sched_getaffinity(0))
    if cpu is None:
        return allowed[-1]
    if cpu not in allowed:
        raise ConfigError(f"--busy-cpu {cpu}: this process may run on CPUs {allowed} only")
    return cpu


@contextmanager
def busy_neighbour(cpu: int | None = None) -> Iterator[int]:
    """A busy loop in its own process, pinned to `cpu` (neighbour_cpu), for the duration of the block; yields the
    CPU. The block starts once the loop runs pinned; the process is killed when the block ends."""
    cpu = neighbour_cpu(cpu)
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(cpu)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE)
    try:
        if not proc.stdout.readline():
            raise RuntimeError(f"the busy neighbour exited at start (status {proc.wait()})")
        yield cpu
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_contention_bench(preset=args.preset, threads=args.threads, rounds=args.rounds,
                                encoder_seconds=args.encoder_seconds, episodes=args.episodes,
                                batch_size=args.batch_size, busy_cpu=args.busy_cpu,
                                bags=Path(args.bags) if args.bags else None)


def run_contention_bench(*, preset: str = "anytouch-small", threads: int = 2, rounds: int = 3,
                         encoder_seconds: float = 2.0, episodes: int = 2, batch_size: int = 32,
                         busy_cpu: int | None = None, bags: Path | None = None) -> dict[str, Any]:
    import numpy as np

    from anytouch_policy.bench.encoder import latency_summary, time_calls
    from anytouch_policy.bench.train import prepare_bench, train_steps
    from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
    from anytouch_policy.threads import set_torch_threads, thread_report

    cpu = neighbour_cpu(busy_cpu)  # refuse a bad CPU before recording anything
    set_torch_threads(threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="anytouch-contention-") as tmp:
        bench = prepare_bench(Path(tmp), preset=preset, bags=bags, episodes=episodes, batch_size=batch_size)
        kind = SensorType.GELSIGHT_MINI
        fmt = NATIVE_FORMATS[kind]
        frame = np.random.default_rng(0).integers(0, 256, (fmt.height, fmt.width, 3), dtype=np.uint8)
        embed = partial(bench.runtime.embed, [[frame] * bench.runtime.frames], [kind])
        bench.runtime.warmup([1])
        trainer, batches, optimizer = bench.finetune(Path(tmp), batch_size=batch_size)
        train_steps(trainer, batches[:1], bench.labels, optimizer)  # warm-up

        def epoch() -> float:
            t0 = time.perf_counter()
            train_steps(trainer, batches, bench.labels, optimizer)
            return time.perf_counter() - t0

        calls: dict[str, list[float]] = {"alone": [], "busy": []}
        epochs: dict[str, list[float]] = {"alone": [], "busy": []}
        for _ in range(rounds):
            for work in ("encoder", "epoch"):
                for condition in ("alone", "busy"):
                    with busy_neighbour(cpu) if condition == "busy" else nullcontext():
                        if work == "encoder":
                            calls[condition] += time_calls(embed, seconds=encoder_seconds, min_iters=3,
                                                            max_iters=1_000_000)
                        else:
                            epochs[condition].append(epoch())
    encoder = {c: latency_summary(sorted(calls[c]), 1) for c in calls}
    samples = int(sum(len(b) for b in batches))
    epoch_s = {c: statistics.median(epochs[c]) for c in epochs}
    slowdown = {"encoder": round(encoder["busy"]["mean_ms"] / encoder["alone"]["mean_ms"], 2),
                "finetune_epoch": round(epoch_s["busy"] / epoch_s["alone"], 2)}
    return {
        "bench": "contention", "preset": preset, "threads": threads, "rounds": rounds, "busy_cpu": cpu,
        "slowdown": slowdown, "target_slowdown": TARGET_SLOWDOWN,
        "within_target": all(v <= TARGET_SLOWDOWN for v in slowdown.values()),
        "encoder": {"batch": 1, "sensor": kind.label, **encoder},
        "finetune_epoch": {"steps": len(batches), "samples": samples, "episodes": len(bench.data.ticks),
                           **{c: {"seconds": round(epoch_s[c], 3), "samples_per_s": round(samples / epoch_s[c], 1),
                                  "rounds_s": [round(s, 3) for s in epochs[c]]} for c in epochs}},
        "thread_settings": thread_report(),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }

