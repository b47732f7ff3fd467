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
from typing import Annotated, Any

from pydantic import Field

from anytouch_policy.bounds import AT_LEAST_1, NONNEGATIVE, POSITIVE
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import config

#: Stays in the scope the bench promises: at most this slowdown beside one busy process.
TARGET_SLOWDOWN = 2.5
#: The neighbour: pin itself, say so, spin. Pure Python, so it needs no library and holds exactly one core.
BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nprint(flush=True)\nwhile True:\n    pass\n"


Count = Annotated[int, AT_LEAST_1]


@config
class ContentionBench:
    """What `anytouch bench contention` measures."""

    preset: str = Field(default="anytouch-small", description="encoder preset, random init")
    threads: Count = Field(default=2, description="torch CPU threads")
    rounds: Count = Field(default=3, description="alone/busy rounds")
    encoder_seconds: Annotated[float, POSITIVE] = Field(
        default=2.0, description="encoder calls per round and condition, s")
    episodes: Count = Field(default=2, description="expert episodes recorded for the fine-tuning epoch")
    bags: Path | None = Field(default=None, description="use these episodes instead of recording")
    batch_size: Count = 32
    busy_cpu: Annotated[int, NONNEGATIVE] | None = Field(
        default=None, description="CPU the busy neighbour is pinned to (default: the last this process may use)")


FLAGS = Flags(ContentionBench, "preset", "threads", "rounds", "encoder_seconds", "episodes",
              Flag("bags", metavar="DIR"), "batch_size", "busy_cpu")


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
        assert proc.stdout is not None  # stdout=PIPE
        if not proc.stdout.readline():
            raise RuntimeError(f"the busy neighbour exited at start (status {proc.wait()})")
        yield cpu
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run(bench: ContentionBench) -> dict[str, Any]:
    """Every round: the encoder, then a fine-tuning epoch, each alone and beside the busy neighbour."""
    import numpy as np

    from anytouch_policy.bench.encoder import latency_summary, time_calls
    from anytouch_policy.bench.train import prepare_bench, train_steps
    from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
    from anytouch_policy.threads import set_torch_threads, thread_report

    preset, threads, rounds, batch_size = bench.preset, bench.threads, bench.rounds, bench.batch_size
    cpu = neighbour_cpu(bench.busy_cpu)  # refuse a bad CPU before recording anything
    set_torch_threads(threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="anytouch-contention-") as tmp:
        data = prepare_bench(Path(tmp), preset=preset, bags=bench.bags, episodes=bench.episodes,
                             batch_size=batch_size)
        kind = SensorType.GELSIGHT_MINI
        fmt = NATIVE_FORMATS[kind]
        frame = np.random.default_rng(0).integers(0, 256, (fmt.height, fmt.width, 3), dtype=np.uint8)
        embed = partial(data.runtime.embed, [[frame] * data.runtime.frames], [kind])
        data.runtime.warmup([1])
        trainer, batches, optimizer = data.finetune(Path(tmp), batch_size=batch_size)
        train_steps(trainer, batches[:1], data.labels, optimizer)  # warm-up

        def epoch() -> float:
            t0 = time.perf_counter()
            train_steps(trainer, batches, data.labels, optimizer)
            return time.perf_counter() - t0

        calls: dict[str, list[float]] = {"alone": [], "busy": []}
        epochs: dict[str, list[float]] = {"alone": [], "busy": []}
        for _ in range(rounds):
            for work in ("encoder", "epoch"):
                for condition in ("alone", "busy"):
                    with busy_neighbour(cpu) if condition == "busy" else nullcontext():
                        if work == "encoder":
                            calls[condition] += time_calls(embed, seconds=bench.encoder_seconds, min_iters=3,
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
        "finetune_epoch": {"steps": len(batches), "samples": samples, "episodes": len(data.data.ticks),
                           **{c: {"seconds": round(epoch_s[c], 3), "samples_per_s": round(samples / epoch_s[c], 1),
                                  "rounds_s": [round(s, 3) for s in epochs[c]]} for c in epochs}},
        "thread_settings": thread_report(),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }

