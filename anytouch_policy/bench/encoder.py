"""Encoder throughput and latency (JSON on stdout):

    anytouch bench encoder --presets anytouch-small --threads 2 > encoder_bench.json

Times EncoderRuntime.embed end to end, as the encoder node calls it: native-size RGB frames in (GelSight Mini
240x320, DIGIT 320x240), resize + normalise + one batched forward + embeddings out. Batch 1 = one sensor's
window, batch 2 = two sensors' windows in one pass. Weights are random (timing does not depend on them).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

from pydantic import Field, model_validator

from anytouch_policy.bounds import AT_LEAST_1, NONNEGATIVE
from anytouch_policy.cli.args import Flag, Flags
from anytouch_policy.schema import config

Count = Annotated[int, AT_LEAST_1]


@config
class EncoderBench:
    """What `anytouch bench encoder` times."""

    presets: tuple[str, ...] = Field(default=("anytouch-small", "anytouch-large"), description="encoder presets")
    threads: Count = Field(default=2, description="torch CPU threads")
    devices: tuple[str, ...] = Field(
        default=(), description="devices, e.g. cpu,cuda (default: cpu, plus cuda if present)")
    batches: Annotated[tuple[Count, ...], Field(min_length=1)] = Field(default=(1, 2), description="batch sizes")
    seconds: Annotated[float, NONNEGATIVE] = Field(default=2.0, description="time budget per case")
    min_iters: Count = Field(default=5, description="timed calls per case, at least")
    max_iters: Count = Field(default=200, description="timed calls per case, at most")
    seed: Annotated[int, NONNEGATIVE] = 0

    @model_validator(mode="after")
    def _iters(self) -> EncoderBench:
        if self.max_iters < self.min_iters:
            raise ValueError(f"max_iters ({self.max_iters}) is below min_iters ({self.min_iters})")
        return self


FLAGS = Flags(EncoderBench, Flag("presets", sep=","), "threads", Flag("devices", sep=","), Flag("batches", sep=","),
              "seconds", "min_iters", "max_iters")


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


def run(bench: EncoderBench) -> dict[str, Any]:
    """Time every (preset, device, precision, batch); cpu runs float32 + bfloat16, cuda float16 as well."""
    import numpy as np
    import torch

    from anytouch_policy.model.config import load_preset
    from anytouch_policy.model.encoder import AnyTouchEncoder
    from anytouch_policy.model.runtime import EncoderRuntime, Precision, resolve_device, stack_windows
    from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
    from anytouch_policy.threads import set_torch_threads, thread_report

    threads, presets, batches, seconds, seed = bench.threads, bench.presets, bench.batches, bench.seconds, bench.seed
    min_iters, max_iters = bench.min_iters, bench.max_iters
    set_torch_threads(threads)
    devices = [resolve_device(d) for d in bench.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])]
    archs = [load_preset(p) for p in presets]  # fail on a bad name before spending time

    rng = np.random.default_rng(seed)
    sensors = [SensorType.GELSIGHT_MINI, SensorType.DIGIT]
    native = {s: rng.integers(0, 256, (NATIVE_FORMATS[s].height, NATIVE_FORMATS[s].width, 3), dtype=np.uint8)
              for s in sensors}

    results: list[dict[str, Any]] = []
    for name, arch in zip(presets, archs, strict=True):
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        encoder = AnyTouchEncoder(arch)
        build_s = time.perf_counter() - t0
        params = sum(p.numel() for p in encoder.parameters())
        for batch in batches:
            windows = [[native[sensors[i % 2]]] * arch.frames for i in range(batch)]
            out = np.empty((batch, arch.frames, 3, arch.image_size, arch.image_size), dtype=np.float32)
            prep = time_calls(partial(stack_windows, windows, frames=arch.frames, size=arch.image_size, out=out),
                               seconds=0.3, min_iters=min_iters, max_iters=max_iters)
            results.append({"preset": name, "stage": "preprocess", "batch": batch, **latency_summary(prep, batch)})
        for device in devices:
            precisions = [Precision.FLOAT32, Precision.BFLOAT16] + ([Precision.FLOAT16] if device.type == "cuda"
                                                                    else [])
            for precision in precisions:
                runtime = EncoderRuntime(encoder, device=device, precision=precision)
                for batch in batches:
                    windows = [[native[sensors[i % 2]]] * arch.frames for i in range(batch)]
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
