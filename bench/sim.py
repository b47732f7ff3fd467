"""Figures of the simulated pouring rig as JSON (expert errors, dynamics R^2, render speed, determinism).

    .venv/bin/python bench/sim.py [--episodes 20] [--probe-episodes 24] > sim_bench.json

The logic lives in anytouch_policy.sim.bench.sim_figures (what `anytouch bench sim` calls).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: every figure is a one-core figure

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from anytouch_policy.sim.bench import sim_figures  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes per (initial, target) pair")
    parser.add_argument("--probe-episodes", type=int, default=24, help="expert episodes for the dynamics probe")
    parser.add_argument("--fps-frames", type=int, default=400, help="frames rendered per sensor for the speed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    figures = sim_figures(episodes=args.episodes, probe_episodes=args.probe_episodes, fps_frames=args.fps_frames,
                          seed=args.seed, log=lambda msg: print(f"[bench sim] {msg}", file=sys.stderr))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
