"""Encoder throughput and latency (JSON on stdout):

    anytouch bench encoder --presets anytouch-small --threads 2 > encoder_bench.json

Times EncoderRuntime.embed end to end, as the encoder node calls it: native-size RGB frames in (GelSight Mini
240x320, DIGIT 320x240), resize + normalise + one batched forward + embeddings out. Batch 1 = one sensor's
window, batch 2 = two sensors' windows in one pass. Weights are random (timing does not depend on them).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from anytouch_policy.cli.args import NONNEGATIVE, POSITIVE_INT

DEFAULT_PRESETS = ("anytouch-small", "anytouch-large")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS),
                        help="comma-separated encoder presets (default: %(default)s)")
    parser.add_argument("--threads", type=POSITIVE_INT, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--devices", default="auto", help="comma list of cpu,cuda; auto = cpu plus cuda if present")
    parser.add_argument("--batches", default="1,2", help="comma-separated batch sizes (default: %(default)s)")
    parser.add_argument("--seconds", type=NONNEGATIVE, default=2.0, help="time budget per case (default: %(default)s)")
    parser.add_argument("--min-iters", type=POSITIVE_INT, default=5, help="timed calls per case, at least (default: 5)")
    parser.add_argument("--max-iters", type=POSITIVE_INT, default=200,
                        help="timed calls per case, at most (default: 200)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from anytouch_policy.errors import ConfigError

    try:
        batches = [int(b) for b in args.batches.split(",") if b]
    except ValueError:
        raise ConfigError(f"--batches must be comma-separated integers, got {args.batches!r}") from None
    devices = None if args.devices == "auto" else [d for d in args.devices.split(",") if d]
    return run_encoder_bench([p for p in args.presets.split(",") if p], threads=args.threads, devices=devices,
                             batches=batches, seconds=args.seconds, min_iters=args.min_iters,
                             max_iters=args.max_iters)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def time_calls(fn, *, seconds: float, min_iters: int, max_iters: int) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() - start < seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)


def latency_summary(times: list[float], batch: int) -> dict[str, Any]:
    mean = statistics.fmean(times)
    return {"iters": len(times), "windows_per_s": round(batch / mean, 2), "mean_ms": round(mean * 1e3, 3),
            "p50_ms": round(percentile(times, 0.5) * 1e3, 3), "p99_ms": round(percentile(times, 0.99) * 1e3, 3)}


def run_encoder_bench(presets: Sequence[str], *, threads: int = 2, devices: Sequence[str] | None = None,
                      batches: Sequence[int] = (1, 2), seconds: float = 2.0, min_iters: int = 5,
                      max_iters: int = 200, seed: int = 0) -> dict[str, Any]:
    """Time every (preset, device, precision, batch); cpu runs float32 + bfloat16, cuda float16 as well."""
    import numpy as np
    import torch

    from anytouch_policy.errors import ConfigError
    from anytouch_policy.model.config import load_preset
    from anytouch_policy.model.encoder import AnyTouchEncoder
    from anytouch_policy.model.runtime import EncoderRuntime, Precision, resolve_device, stack_windows
    from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
    from anytouch_policy.threads import set_torch_threads, thread_report

    if threads < 1 or not batches or min(batches) < 1 or min_iters < 1 or max_iters < min_iters:
        raise ConfigError("bench needs threads >= 1, batches >= 1 and 1 <= min_iters <= max_iters")
    set_torch_threads(threads)
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [resolve_device(d) for d in devices]
    configs = [load_preset(p) for p in presets]  # fail on a bad name before spending time

    rng = np.random.default_rng(seed)
    sensors = [SensorType.GELSIGHT_MINI, SensorType.DIGIT]
    native = {s: rng.integers(0, 256, (NATIVE_FORMATS[s].height, NATIVE_FORMATS[s].width, 3), dtype=np.uint8)
              for s in sensors}

    results: list[dict[str, Any]] = []
    for name, config in zip(presets, configs, strict=True):
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        encoder = AnyTouchEncoder(config)
        build_s = time.perf_counter() - t0
        params = sum(p.numel() for p in encoder.parameters())
        for batch in batches:
            windows = [[native[sensors[i % 2]]] * config.frames for i in range(batch)]
            out = np.empty((batch, config.frames, 3, config.image_size, config.image_size), dtype=np.float32)
            prep = time_calls(partial(stack_windows, windows, frames=config.frames, size=config.image_size, out=out),
                               seconds=0.3, min_iters=min_iters, max_iters=max_iters)
            results.append({"preset": name, "stage": "preprocess", "batch": batch, **latency_summary(prep, batch)})
        for device in devices:
            precisions = [Precision.FLOAT32, Precision.BFLOAT16] + ([Precision.FLOAT16] if device.type == "cuda"
                                                                    else [])
            for precision in precisions:
                runtime = EncoderRuntime(encoder, device=device, precision=precision)
                for batch in batches:
                    windows = [[native[sensors[i % 2]]] * config.frames for i in range(batch)]
                    batch_sensors = [sensors[i % 2] for i in range(batch)]
                    runtime.warmup([batch])
                    times = time_calls(partial(runtime.embed, windows, batch_sensors), seconds=seconds,
                                        min_iters=min_iters, max_iters=max_iters)
                    results.append({"preset": name, "stage": "embed", "params_m": round(params / 1e6, 2),
                                    "build_s": round(build_s, 2), "device": device.type,
                                    "precision": precision.value, "batch": batch, **latency_summary(times, batch)})
        del encoder
    return {
        "bench": "encoder",
        "threads": threads,
        "thread_settings": thread_report(),
        "torch": torch.__version__,
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "frames": {s.label: [NATIVE_FORMATS[s].height, NATIVE_FORMATS[s].width] for s in sensors},
        "results": results,
    }
