"""Frame-to-command latency, tick jitter, missed ticks and CPU per node of the sim pour pipeline (JSON on stdout).

    .venv/bin/python bench/pipeline.py --seconds 60 > pipeline_bench.json
    .venv/bin/python bench/pipeline.py --seconds 60 --busy-neighbour          # beside a process pinned to a core
    .venv/bin/python bench/pipeline.py --policy models/policy --sensors left:gelsight_mini --seconds 30
    .venv/bin/python bench/pipeline.py --preset anytouch-large --device cuda --dtype bfloat16   # a GPU's figures

Starts the `anytouch bringup pour --sim` node set as separate processes (sensor nodes at their native rates, sim
arm, encoder on CPU, 5 Hz policy) on a private ROS domain, waits until the policy decides on fresh embeddings, then
measures for --seconds:
- frame_to_command_latency_ms: grab stamp of the newest frame behind a decision -> publish time of the action that
  used it (measured by the policy node, which alone knows both; its /diagnostics percentiles cover its last 1000
  decisions, i.e. the run and its short warm-up);
- frame_to_embedding_latency_ms: grab stamp of a window's newest frame -> its embedding published (the encoder
  node's /diagnostics, its last 1000 embeddings);
- policy_tick_jitter_ms (timer callback start - its grid slot) and missed_ticks (grid slots with no callback) from
  the policy node (counts: differences of its reports around the window, i.e. the window plus about a second);
  action_rate_hz and the largest gap between actions as received by this process;
- cpu_percent per node (psutil, user + system over the measured window; 100 = one core).
Without --policy a policy bundle is built with random weights (encoder --preset, an untrained head): timing does
not depend on the weights. With --busy-neighbour a pure-Python busy loop pinned to one CPU runs through the
measured window (anytouch_policy.bench.contention.busy_neighbour): what a driver or a build beside the robot's nodes
does. Shared machines disturb the figures: rerun on a quiet one before quoting them. The nodes' logs go to a
temporary folder removed at the end; `--logs DIR` keeps them there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's packages, not an installed copy

DEFAULT_SENSORS = "left:gelsight_mini,right:digit"


def build_policy(path: Path, *, preset: str, sensors: list[tuple[str, str]]) -> Path:
    """A policy bundle with random weights: a `preset` encoder and an untrained head over `sensors`."""
    import torch

    from anytouch_policy.model import AnyTouchEncoder, save_encoder_bundle
    from anytouch_policy.model.runtime import TokenMode
    from anytouch_policy.policy.bundle import save_policy_bundle
    from anytouch_policy.policy.config import HeadConfig, PolicySensor, PolicySpec, ReferenceMode
    from anytouch_policy.policy.head import PolicyHead
    from anytouch_policy.sensors import SensorType

    torch.manual_seed(0)
    encoder = AnyTouchEncoder.from_preset(preset)
    save_encoder_bundle(path.with_name(path.name + "-encoder"), encoder)
    kinds = [(name, SensorType.from_name(kind)) for name, kind in sensors]
    head_config = HeadConfig(sensors=len(kinds), embed_dim=encoder.config.output_dim, reference=True, conditioning=2)
    config = PolicySpec(sensors=[PolicySensor(n, k) for n, k in kinds], frames=3, stride=1,
                        token_mode=TokenMode.SPECIFIC, reference=ReferenceMode.EPISODE_START,
                        conditioning=("initial_g", "target_g"), head=head_config,
                        variant={"mode": "frozen", "dynamic": True},
                        training={"note": "random weights for timing (bench/pipeline.py)"})
    head = PolicyHead(head_config)
    save_policy_bundle(path, config=config, head=head, encoder_bundle=path.with_name(path.name + "-encoder"))
    return path


class Probe:
    """An rclpy node in this process: pour/action receive times and the newest /diagnostics status per name."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String

        from anytouch_policy.data import topics
        from anytouch_ros import qos

        rclpy.init()
        self.node = rclpy.create_node("pipeline_bench")
        self.actions: list[tuple[float, str]] = []
        self.status: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.node.create_subscription(String, topics.ACTION, self._on_action, qos.COMMAND)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos.DIAGNOSTICS)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_action(self, msg) -> None:
        with self.lock:
            self.actions.append((time.monotonic(), msg.data))

    def _on_diagnostics(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                self.status[status.name] = {kv.key: kv.value for kv in status.values} | {"_message": status.message}

    def get(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self.status.get(name, {}))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.thread.join(5)
        self.node.destroy_node()
        rclpy.try_shutdown()


def _cpu_seconds(procs: dict[str, object]) -> dict[str, float]:
    out = {}
    for name, proc in procs.items():
        times = proc.cpu_times()
        out[name] = times.user + times.system
    return out


def _floats(status: dict[str, str], *keys: str) -> dict[str, float]:
    return {k: float(status[k]) for k in keys if k in status}


def run_pipeline_bench(*, seconds: float, policy: str, sensors: str, threads: int, domain_id: int,
                       preset: str = "anytouch-small", device: str = "cpu", dtype: str = "float32",
                       busy_neighbour: bool = False, busy_cpu: int | None = None, warmup_timeout_s: float = 120.0,
                       logs_dir: str | None = None, log=print) -> dict:
    """The figures as a dict (module docstring). The nodes' logs (and a built policy) go to `logs_dir`, kept; without
    it to a temporary folder removed at the end (a failed start quotes the logs' tails in its error)."""
    from anytouch_policy.bench.contention import neighbour_cpu
    from anytouch_policy.bringup.plan import parse_sensors

    pairs = parse_sensors(sensors)
    if busy_neighbour:
        busy_cpu = neighbour_cpu(busy_cpu)  # refuse a bad CPU before starting anything
    folder = (contextlib.nullcontext(logs_dir) if logs_dir
              else tempfile.TemporaryDirectory(prefix="pipeline_bench_", ignore_cleanup_errors=True))
    with folder as work:
        Path(work).mkdir(parents=True, exist_ok=True)
        result = _run(Path(work), seconds=seconds, policy=policy, sensors=sensors, pairs=pairs, threads=threads,
                      domain_id=domain_id, preset=preset, device=device, dtype=dtype, busy_neighbour=busy_neighbour,
                      busy_cpu=busy_cpu, warmup_timeout_s=warmup_timeout_s, log=log)
    if not policy and not logs_dir:  # the built bundle went with the folder
        result["policy"] = f"random weights ({preset} encoder), not kept"
    return result | {"logs": logs_dir or None}


def _run(work: Path, *, seconds: float, policy: str, sensors: str, pairs: list[tuple[str, str]], threads: int,
         domain_id: int, preset: str, device: str, dtype: str, busy_neighbour: bool, busy_cpu: int | None,
         warmup_timeout_s: float, log) -> dict:
    import psutil

    from anytouch_policy.bench.contention import busy_neighbour as neighbour
    from anytouch_policy.bringup.plan import Mode, make_plan, package_config

    if not policy:
        log(f"building a random-weight policy bundle ({preset} encoder)")
        policy = str(build_policy(work / "policy", preset=preset, sensors=pairs))
    overrides = work / "bench.yaml"
    overrides.write_text(json.dumps({"/**/encoder": {"ros__parameters": {"device": device, "dtype": dtype,
                                                                         "threads": threads}},
                                     "/**/policy": {"ros__parameters": {"diagnostics_period_s": 0.5}}}))
    plan = make_plan(Mode.POUR, sim=True, sensors=sensors, policy=policy,
                     config=[str(package_config("pour.yaml")), str(overrides)])
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)  # default transports (shared memory): what a robot PC runs
    os.environ.update({"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    logs = {n.name: open(work / f"{n.name}.log", "wb") for n in plan.nodes}  # noqa: SIM115 - closed below
    procs = {n.name: subprocess.Popen(n.argv(), env=env, stdout=logs[n.name], stderr=subprocess.STDOUT,
                                      start_new_session=True) for n in plan.nodes}
    probe = Probe()
    try:
        deadline = time.monotonic() + warmup_timeout_s
        while True:  # warm-up: models loaded, every node discovered, decisions on fresh embeddings
            policy_status = probe.get("/policy: policy")
            reported = [probe.get("/encoder: encoder").get("passes")] + [
                probe.get(f"/sensor_{name}: /tactile/{name}/image_raw").get("frames") for name, _ in pairs]
            if (policy_status.get("_message") == "deciding" and float(policy_status.get("p50_latency_ms", "nan")) > 0
                    and None not in reported):  # every node has reported once
                break
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tails = {n: (work / f"{n}.log").read_text()[-1500:] for n in (dead or procs)}
                raise RuntimeError(f"pipeline did not start (exited: {dead}): {json.dumps(tails, indent=1)}")
            time.sleep(0.5)
        with neighbour(busy_cpu) if busy_neighbour else contextlib.nullcontext():
            time.sleep(2.0)  # let the first samples through the statistics (and the neighbour settle in)
            handles = {n: psutil.Process(p.pid) for n, p in procs.items()}
            first, encoder0 = probe.get("/policy: policy"), probe.get("/encoder: encoder")
            cpu0, t0 = _cpu_seconds(handles), time.monotonic()
            log(f"measuring for {seconds:g} s" + (f" beside a busy process on CPU {busy_cpu}" if busy_neighbour
                                                  else ""))
            time.sleep(seconds)
            cpu1, t1 = _cpu_seconds(handles), time.monotonic()
            time.sleep(1.0)  # one more diagnostics period, so the last report covers the window
            final = probe.get("/policy: policy")
            encoder = probe.get("/encoder: encoder")
        with probe.lock:
            window = [(t, a) for t, a in probe.actions if t0 <= t <= t1]
        actions = [t for t, _ in window]
        action_counts = Counter(a for _, a in window)
        sensor_status = {name: probe.get(f"/sensor_{name}: /tactile/{name}/image_raw") for name, _ in pairs}
        arm = probe.get("/arm: arm")
    finally:
        probe.close()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for fh in logs.values():
            fh.close()
    gaps = [b - a for a, b in zip(actions, actions[1:], strict=False)]
    wall = t1 - t0
    return {
        "bench": "pipeline",
        "seconds": round(wall, 2),
        "sensors": dict(pairs),
        "policy": policy,
        "encoder_threads": threads,
        "encoder_device": device,
        "encoder_dtype": dtype,
        "busy_neighbour_cpu": busy_cpu if busy_neighbour else None,
        "frame_to_command_latency_ms": _floats(final, "p50_latency_ms", "p99_latency_ms", "max_latency_ms"),
        "frame_to_embedding_latency_ms": _floats(encoder, "p50_latency_ms", "p99_latency_ms", "max_latency_ms"),
        "policy_tick_jitter_ms": _floats(final, "p50_jitter_ms", "p99_jitter_ms", "max_jitter_ms"),
        "missed_ticks": int(final["missed_ticks"]) - int(first["missed_ticks"]),
        "actions_received": len(actions),
        "action_counts": dict(action_counts),  # the default head is untrained: what it chose, not how well
        "stale_ticks": int(final["stale_ticks"]) - int(first["stale_ticks"]),
        "busy_or_late_decisions": int(final["busy_ticks"]) + int(final["late_decisions"]),
        "policy_compute_ms": _floats(final, "p50_compute_ms", "p99_compute_ms"),
        "action_rate_hz": round(len(actions) / wall, 3),
        "max_action_gap_ms": round(1000 * max(gaps), 1) if gaps else None,
        "encoder": _floats(encoder, "p50_compute_ms", "p99_compute_ms", "p50_batch")
        | {"passes_per_s": round((float(encoder["passes"]) - float(encoder0["passes"])) / (wall + 1.0), 1)}
        | {f"{name}_skipped_per_s": round((int(encoder[f"{name} skipped"]) - int(encoder0[f"{name} skipped"]))
                                         / (wall + 1.0), 1) for name, _ in pairs},
        "sensor_rate_hz": {name: float(s.get("rate_hz", "nan")) for name, s in sensor_status.items()},
        "sensor_dropped": {name: int(s.get("dropped", -1)) for name, s in sensor_status.items()},
        "arm_steps_applied": int(arm.get("steps_applied", -1)),
        "cpu_percent": {name: round(100 * (cpu1[name] - cpu0[name]) / wall, 1) for name in cpu0},
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window (default %(default)s)")
    parser.add_argument("--policy", default="", help="policy bundle (default: random weights, anytouch-small)")
    parser.add_argument("--sensors", default=DEFAULT_SENSORS, help="name:type,... (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="encoder torch threads (default %(default)s)")
    parser.add_argument("--preset", default="anytouch-small", help="encoder of the random-weight policy (no --policy)")
    parser.add_argument("--device", default="cpu", help="encoder device: cpu | cuda (default %(default)s)")
    parser.add_argument("--dtype", default="float32", help="encoder precision: float32 | bfloat16 | float16")
    parser.add_argument("--busy-neighbour", action="store_true",
                        help="measure beside a pure-Python busy loop pinned to one CPU")
    parser.add_argument("--busy-cpu", type=int, default=None, help="its CPU (default: the last this process may use)")
    parser.add_argument("--domain-id", type=int, default=random.randrange(100, 200), help="private ROS_DOMAIN_ID")
    parser.add_argument("--logs", default=None, metavar="DIR",
                        help="keep the nodes' logs (and a built policy) in DIR (default: a temporary folder, removed)")
    args = parser.parse_args()
    result = run_pipeline_bench(seconds=args.seconds, policy=args.policy, sensors=args.sensors,
                                threads=args.threads, domain_id=args.domain_id, preset=args.preset,
                                device=args.device, dtype=args.dtype, busy_neighbour=args.busy_neighbour,
                                busy_cpu=args.busy_cpu, logs_dir=args.logs,
                                log=lambda msg: print(f"[bench pipeline] {msg}", file=sys.stderr))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
