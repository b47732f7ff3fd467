"""CPU threads of every anytouch process: OpenMP threads that sleep when idle, torch thread counts set in one place.

Why. torch runs its CPU kernels on libgomp (OpenMP) threads. Unless told otherwise, a thread that finishes its share
of a parallel region spins for GOMP_SPINCOUNT = 300000 iterations before it sleeps, waiting for the next region. On
a machine where anything else runs (a robot PC: sensor drivers, the recorder, a desktop) the spinning threads hold
the cores that the thread still working needs, and every region waits for a scheduler time slice: on 2 cores,
`anytouch bench encoder` fell from 105 to 2.6 windows/s beside a build, and fine-tuning from 2.8 to 0.3 batches/s.
With OMP_WAIT_POLICY=PASSIVE the threads sleep at once; `anytouch bench contention` measures the difference.

libgomp reads its environment once, when it is loaded (at `import torch`), so `anytouch_policy/__init__.py` imports
this module first and `apply_env_defaults()` sets the defaults before anything can import torch. A setting in the
user's environment is kept (export OMP_WAIT_POLICY=ACTIVE to spin on a dedicated machine). If torch was imported
before anytouch_policy, the default comes too late and a RuntimeWarning says so.

Thread counts are chosen where the work is (a --threads flag, a node parameter, the demo's setting) and set through
`set_torch_threads`, the one place that calls torch.set_num_threads.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from anytouch_policy.errors import ConfigError

#: What every anytouch process sets unless its environment already does.
ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}

#: The OpenMP runtimes torch wheels load (GNU on Linux, Intel or LLVM in other builds); all read OMP_WAIT_POLICY.
_OPENMP_LIBRARIES = ("libgomp", "libiomp", "libomp")


def openmp_loaded() -> bool:
    """Whether an OpenMP runtime is already mapped into this process (it then ignores environment changes)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: torch is what would have loaded one
        return "torch" in sys.modules
    return any(name in maps for name in _OPENMP_LIBRARIES)


def apply_env_defaults() -> dict[str, str]:
    """Put ENV_DEFAULTS into os.environ where the user set nothing; returns what was set.

    Child processes (DataLoader workers, torchrun ranks, evaluation workers, ROS nodes started by bringup) inherit
    the environment, so they get the same defaults even before they import anytouch_policy.
    """
    added = {name: value for name, value in ENV_DEFAULTS.items() if not os.environ.get(name)}  # "" = unset
    os.environ.update(added)
    if added and openmp_loaded():
        warnings.warn(f"anytouch_policy was imported after torch, too late for {', '.join(added)}: torch's OpenMP "
                      "threads will spin while idle, which makes torch many times slower when another process uses "
                      f"the CPU; import anytouch_policy before torch, or export {_exports(added)}", RuntimeWarning,
                      stacklevel=2)
    return added


def _exports(values: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in values.items())


def set_torch_threads(threads: int | None) -> None:
    """Use `threads` intra-op threads in this process (None: keep torch's default, one per core it may use)."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    import torch

    torch.set_num_threads(threads)


def threads_summary() -> str:
    """One line for a start-up log: torch's intra-op threads and the OpenMP wait policy."""
    import torch

    n = torch.get_num_threads()
    return f"{n} torch thread{'s' if n != 1 else ''}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY') or 'unset'}"


def thread_report() -> dict[str, object]:
    """What governs this process's CPU threads (for bench JSON and node start-up logs)."""
    report: dict[str, object] = {name: os.environ.get(name) for name in (*ENV_DEFAULTS, "GOMP_SPINCOUNT",
                                                                          "OMP_NUM_THREADS")}
    if "torch" in sys.modules:
        import torch

        report["torch_threads"] = torch.get_num_threads()
        report["torch_interop_threads"] = torch.get_num_interop_threads()
    report["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return report
