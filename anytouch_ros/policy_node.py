"""5 Hz pouring policy: the newest embedding per sensor -> pour/action + pour/cartesian_step.

    ros2 run anytouch_ros policy_node --ros-args -p bundle:=models/policy -p target_g:=60.0

Each tick (a timer at control_rate_hz) takes the newest anytouch/embedding of every sensor the bundle names:
- one missing or older than max_age_s (ROS clock - embedding stamp = grab time of its newest frame): publish
  `wait`, and /diagnostics warns. Stale touch means stop.
- else the head decides (PolicyRuntime.decide_embeddings, conditioned on initial_g/target_g when the bundle wants
  them) in a worker thread (control.ticks.DecisionWorker): a decision later than half a period becomes `wait`, a
  tick that finds the worker busy publishes `wait`. Every tick publishes exactly one action on time.
The step is the tool-frame rotation of conversions.action_to_msgs (stamp = tick time). A policy that compares with
the start of the pour (reference mode episode_start) takes its reference from the first decision after start-up
and after every episode/event `start` (PolicyRuntime.reset()). Once the head decides `retract`, every decision is
`retract` until that reset, as the expert it learnt from does (stale-touch `wait`s still win).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import Image
from std_msgs.msg import String

from anytouch_policy.actions import CONTROL_RATE_HZ, CONTROL_RATE_RANGE, DEFAULT_DELTA_PHI_DEG, DELTA_PHI_RANGE, Action
from anytouch_policy.bounds import DIAGNOSTICS_PERIOD_S, MASS_G
from anytouch_policy.control.ticks import DecisionWorker, RollingStats, TickMonitor, stale_inputs
from anytouch_policy.data import topics
from anytouch_policy.errors import ConfigError, MessageError
from anytouch_policy.threads import threads_summary
from anytouch_ros import qos
from anytouch_ros.base import BaseNode, run_node
from anytouch_ros.conversions import action_to_msgs, embedding_from_msg, time_to_ns
from anytouch_ros.diagnostics import Diagnostics, Level, Status

if TYPE_CHECKING:  # the policy modules load torch: the node imports them when it starts, not at import
    from anytouch_policy.policy.head import Decision

#: Latched episode/event messages older than this are history, not a new pour.
EVENT_MAX_AGE_S = 5.0


@dataclass(frozen=True)
class _Job:
    embeddings: dict[str, np.ndarray]
    newest_frame_ns: int  # grab stamp of the newest frame behind these embeddings
    initial_g: float
    target_g: float


class PolicyNode(BaseNode):
    NAME = "policy"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        bundle = self.param("bundle", "", "policy bundle folder (config.json, model.safetensors, encoder/)")
        names = self.param("sensors", [], "sensor names ([] = the bundle's; else they must match it)")
        self.max_age_s = self.param("max_age_s", 0.3, "embeddings older than this -> wait (+ a warning), s",
                                    within="(0, 2]")
        rate = self.param("control_rate_hz", CONTROL_RATE_HZ, "tick rate, Hz", within=CONTROL_RATE_RANGE)
        self.delta_phi_deg = self.param("delta_phi_deg", DEFAULT_DELTA_PHI_DEG, "tilt step per pour/retract tick",
                                        within=DELTA_PHI_RANGE)
        self.tilt_axis = self.param("tilt_axis", "y", "tool-frame axis of the tilt rotation", choices=("x", "y", "z"))
        self.tool_frame = self.param("tool_frame", "tool", "frame_id of pour/cartesian_step")
        device = self.param("device", "cpu", "device of the head: auto | cpu | cuda")
        deadline = self.param("deadline", 0.5, "a decision taking longer than this fraction of a tick -> wait",
                              within="(0, 1)")
        for name, default, text in (("initial_g", 100.0, "beads in the cylinder at the start, g"),
                                    ("target_g", 60.0, "mass to pour, g")):
            self.param(name, default, text + " (conditioning, if the bundle uses it; settable between pours)",
                       within=MASS_G, read_only=False)
        period = self.param("diagnostics_period_s", 1.0, "period of the /diagnostics report, s",
                            within=DIAGNOSTICS_PERIOD_S)
        self.refuse_unknown_parameters()
        if not bundle:
            raise ConfigError("parameter bundle is required (a policy bundle folder)")
        grams = {n: self.get_parameter(n).value for n in ("initial_g", "target_g")}
        if not 0 < grams["target_g"] < grams["initial_g"]:
            raise ConfigError(f"parameters target_g ({grams['target_g']}) and initial_g ({grams['initial_g']}) need "
                              "0 < target_g < initial_g")
        try:
            from anytouch_policy.policy.runtime import PolicyRuntime
        except ImportError as exc:
            raise ConfigError(f"the policy runtime (anytouch_policy.policy) is not installed: {exc}") from None
        # one thread: the head is a small MLP (~0.1 ms a decision); a second thread only adds wake-ups (p99 measured
        # 0.34 ms on 1 thread vs 1.1 ms on 2) and a core the encoder could use
        self.runtime = PolicyRuntime.from_bundle(bundle, device=device, threads=1)
        self.sensors = [name for name, _ in self.runtime.sensors]
        if names and names != self.sensors:
            raise ConfigError(f"parameter sensors {names} contradicts policy bundle {bundle}, trained on sensors "
                              f"{self.sensors}: start the sensors it was trained with (or leave sensors empty)")
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[int, np.ndarray]] = {}
        self.unknown_sensors: set[str] = set()
        self.bad_embeddings = 0
        self.jitter, self.latency = RollingStats(), RollingStats()
        self.counts = dict.fromkeys((a.label for a in Action), 0)
        self.stale_ticks = self.errors = 0
        self.last_error = ""
        self.last_probs: np.ndarray | None = None
        self.last_remaining_g: float | None = None  # heads with a "remaining" output: their last estimate
        self._action_pub = self.create_publisher(String, topics.ACTION, qos.COMMAND)
        self._step_pub = self.create_publisher(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND)
        self.create_subscription(Image, topics.EMBEDDING, self._on_embedding, qos.IMAGE)
        self.create_subscription(String, topics.EPISODE_EVENT, self._on_event, qos.LATCHED)
        self._reset = threading.Event()  # a new pour: the next decision's embeddings become the reference
        self.resets = 0
        self.worker = DecisionWorker(self._decide, self._on_decision, period_s=1.0 / rate, deadline=deadline)
        self.ticks = TickMonitor(1.0 / rate, origin_s=self._now_ns() / 1e9)
        self.create_timer(1.0 / rate, self._tick)
        Diagnostics(self, period_s=period).add(self._status)
        self.get_logger().info(f"policy {bundle}: sensors {self.sensors}, conditioning "
                               f"{list(self.runtime.conditioning)}, {rate:g} Hz, max_age {self.max_age_s} s, "
                               f"{threads_summary()}")

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_embedding(self, msg: Image) -> None:
        sensor = msg.header.frame_id
        if sensor not in self.sensors:
            self.unknown_sensors.add(sensor)
            return
        try:
            vector = embedding_from_msg(msg)
        except MessageError:
            self.bad_embeddings += 1
            return
        with self._lock:
            self._latest[sensor] = (time_to_ns(msg.header.stamp), vector)

    def _on_event(self, msg: String, info: MessageInfo) -> None:
        if msg.data == "start" and (time.time_ns() - info["source_timestamp"]) / 1e9 <= EVENT_MAX_AGE_S:
            self._reset.set()

    def _publish(self, action: Action, tick_ns: int) -> None:
        label, step = action_to_msgs(action, tick_ns, delta_phi_deg=self.delta_phi_deg, frame_id=self.tool_frame,
                                     axis=self.tilt_axis)
        self._action_pub.publish(label)
        self._step_pub.publish(step)
        self.counts[action.label] += 1

    def _tick(self) -> None:
        now_ns = self._now_ns()
        self.jitter.add(self.ticks.tick(now_ns / 1e9).jitter_s)
        with self._lock:
            latest = dict(self._latest)
        stale = stale_inputs({s: latest[s][0] if s in latest else None for s in self.sensors}, now_ns,
                             max_age_s=self.max_age_s)
        if stale:
            self.stale_ticks += 1
            self._publish(Action.WAIT, now_ns)
            return
        job = _Job({s: latest[s][1] for s in self.sensors}, max(latest[s][0] for s in self.sensors),
                   self.get_parameter("initial_g").value, self.get_parameter("target_g").value)
        if not self.worker.submit(now_ns, job):
            self._publish(Action.WAIT, now_ns)

    def _decide(self, job: _Job) -> tuple[_Job, Decision]:
        if self._reset.is_set():  # in the worker: never between a decision's reads of the reference
            self._reset.clear()
            self.runtime.reset()
            self.resets += 1
        return job, self.runtime.decide_embeddings(job.embeddings, initial_g=job.initial_g, target_g=job.target_g)

    def _on_decision(self, tick_ns: float, result: tuple[_Job, Decision] | Exception, late: bool) -> None:
        """`tick_ns`: the stamp this node submitted with the job (the worker passes it back as a number)."""
        try:
            if isinstance(result, Exception):
                self.errors += 1
                self.last_error = f"{type(result).__name__}: {result}"
                self._publish(Action.WAIT, int(tick_ns))
                return
            job, decision = result
            self.last_probs = decision.probs
            self.last_remaining_g = decision.remaining_g
            self._publish(Action.WAIT if late else decision.action, int(tick_ns))
            self.latency.add((self._now_ns() - job.newest_frame_ns) / 1e9)
        except Exception as exc:  # the context is going down while the worker publishes
            self.last_error = f"{type(exc).__name__}: {exc}"

    def _status(self) -> Status:
        w = self.worker
        values: dict[str, object] = {"ticks": self.ticks.ticks, "missed_ticks": self.ticks.missed,
                                     "resets": self.resets, "stale_ticks": self.stale_ticks, "busy_ticks": w.busy_ticks,
                                     "late_decisions": w.late, "dropped_decisions": w.dropped, "errors": self.errors,
                                     "bad_embeddings": self.bad_embeddings}
        values.update(self.jitter.summary(1000.0, "_jitter_ms"))
        values.update(w.compute.summary(1000.0, "_compute_ms"))
        values.update(self.latency.summary(1000.0, "_latency_ms"))
        values.update({f"actions {k}": v for k, v in self.counts.items()})
        if self.last_probs is not None:
            values["probs"] = " ".join(f"{a.label}={p:.3f}" for a, p in zip(Action, self.last_probs, strict=True))
        if self.last_remaining_g is not None:
            values["remaining_g"] = f"{self.last_remaining_g:.1f}"
        now_ns = self._now_ns()
        with self._lock:
            stamps = {sensor: stamp for sensor, (stamp, _) in self._latest.items()}
        values.update({f"{sensor} age_s": (now_ns - stamp) / 1e9 for sensor, stamp in stamps.items()})
        if self.unknown_sensors:
            values["unknown sensors"] = ", ".join(sorted(self.unknown_sensors))
        stale = stale_inputs({s: stamps.get(s) for s in self.sensors}, now_ns, max_age_s=self.max_age_s)
        level, message = Level.OK, "deciding"
        if stale:
            ages = ", ".join(f"{s}: {'never received' if a is None else f'{a:.2f} s old'}" for s, a in stale.items())
            level, message = Level.WARN, f"stale embeddings ({ages}): publishing wait"
        if self.errors:
            level, message = Level.ERROR, self.last_error
        return Status("policy", level, message, values)

    def stop_workers(self) -> None:
        self.worker.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    sys.exit(main())
