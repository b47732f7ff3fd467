"""Episode recorder: one rosbag2 MCAP directory per demonstration or rollout, written off the executor thread.

    ros2 run anytouch_ros recorder_node --ros-args -p output_dir:=episodes \\
        -p "sensors:=[left]" -p "sensor_types:=[gelsight_mini]" -p target_g:=60.0

    tactile/<sensor>/image_raw ─┐  raw=True subscriptions: CDR bytes, never deserialised;
    pour/action, pour/cartesian_step, arm/tilt, arm/pose,      log time = receive time on the node clock
    scale/mass, sim/state, arm/estop ──────────────────────┴─> EpisodeRecorder.submit ─ bounded queue ─> writer thread
    episode/event (start | end | abort, latched) ──────────────> EpisodeRecorder.start / finish         │
                                                      <output_dir>/<prefix>_<YYYYmmdd-HHMMSS>_<k>[.incomplete]/ <┘

Episode metadata comes from parameters read when the episode starts (so `ros2 param set` between episodes works),
plus the last scale/mass reading of the episode as final_g. SIGINT/SIGTERM closes an open episode as incomplete
(readable, still named .incomplete); SIGKILL leaves it .incomplete without metadata.yaml. Finished ones are final.
"""

from __future__ import annotations

import importlib
import sys
import time
from functools import partial
from pathlib import Path
from typing import TypedDict

from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.serialization import deserialize_message
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String

from anytouch_policy.actions import CONTROL_RATE_HZ, CONTROL_RATE_RANGE, DEFAULT_DELTA_PHI_DEG, DELTA_PHI_RANGE
from anytouch_policy.bounds import DIAGNOSTICS_PERIOD_S, EVENT_AGE_S, MASS_G
from anytouch_policy.data import EpisodeMeta, topics
from anytouch_policy.data.recording import EpisodeRecorder
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.sensors import SensorType
from anytouch_ros import qos
from anytouch_ros.base import BaseNode, run_node
from anytouch_ros.diagnostics import Diagnostics, Level, Status

#: Topics recorded besides the tactile images (each only if someone publishes it).
RECORDED = (topics.ACTION, topics.CARTESIAN_STEP, topics.ARM_TILT, topics.ARM_POSE, topics.SCALE_MASS,
            topics.SIM_STATE, topics.ARM_ESTOP)


def _message_class(msgtype: str) -> type:
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)



class _EndMeta(TypedDict, total=False):
    """EpisodeMeta fields a recording gets when it ends."""

    final_g: float | None
    extra: dict[str, str]
    seed: int

class RecorderNode(BaseNode):
    NAME = "recorder"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        output_dir = self.param("output_dir", "episodes", "directory that receives one folder per episode")
        prefix = self.param("prefix", "episode", "episode folder names: <prefix>_<YYYYmmdd-HHMMSS>_<k>")
        names = self.param("sensors", [], "sensor names; records tactile/<name>/image_raw of each")
        kinds = self.param("sensor_types", [], "sensor type of each name in `sensors` (gelsight_mini, digit, ...)")
        storage = self.param("storage", "mcap", "rosbag2 storage plugin", choices=("mcap", "sqlite3"))
        compress = self.param("compress", False, "zstd chunk compression (costs CPU; tactile frames compress little)")
        max_queue_mb = self.param("max_queue_mb", 256.0, "writer queue bound; beyond it messages are dropped+counted",
                                  within="(0, 65536]")
        depth = self.param("qos_depth", 50, "reader queue depth of each recorded topic", within="[1, 10000]")
        auto_start = self.param("auto_start", False, "start an episode at once (scripted runs without teleop)")
        self.event_max_age_s = self.param("event_max_age_s", 5.0, "ignore latched episode events older than this",
                                          within=EVENT_AGE_S)
        period = self.param("diagnostics_period_s", 1.0, "period of the /diagnostics report, s",
                            within=DIAGNOSTICS_PERIOD_S)
        meta = " (episode metadata, read at each episode start)"
        self.param("initial_g", 100.0, "beads in the cylinder at the start, g" + meta, within=MASS_G, read_only=False)
        self.param("target_g", 60.0, "mass to pour, g" + meta, within=MASS_G, read_only=False)
        self.param("rig", "sim", "'sim' or the name of the real rig" + meta, read_only=False)
        self.param("source", "teleop", "teleop | expert | policy" + meta, read_only=False)
        self.param("note", "", "free text stored with each episode" + meta, read_only=False)
        self.param("seed", -1, "sim rig seed (-1: the episode seed sim/state reports, if any)" + meta,
                   within=f"[-1, {2**31 - 1}]", read_only=False)
        self.param("delta_phi_deg", DEFAULT_DELTA_PHI_DEG, "tilt step of the recorded actions, deg" + meta,
                   within=DELTA_PHI_RANGE, read_only=False)
        self.param("control_rate_hz", CONTROL_RATE_HZ, "rate of the recorded actions, Hz" + meta,
                   within=CONTROL_RATE_RANGE, read_only=False)
        self.refuse_unknown_parameters()
        if not prefix or "/" in prefix:
            raise ConfigError(f"parameter prefix must be a non-empty file name part, got {prefix!r}")
        if len(names) != len(kinds):
            raise ConfigError(f"parameters sensors ({names}) and sensor_types ({kinds}) must have the same length")
        if len(set(names)) != len(names):
            raise ConfigError(f"parameter sensors lists a name twice: {names}")
        for kind in kinds:
            SensorType.from_name(kind)  # ConfigError lists the valid types
        self.sensors = dict(zip(names, kinds, strict=True))
        try:  # the episode metadata parameters as the first episode would store them (target_g < initial_g, ...)
            self._meta()
        except EpisodeError as exc:
            raise ConfigError(f"parameters of node {self.get_fully_qualified_name()}: {exc}") from None
        try:
            self.recorder = EpisodeRecorder(
                output_dir, prefix=prefix, namespace=self.get_namespace().strip("/"), storage=storage,
                compress=compress, max_queue_bytes=int(max_queue_mb * 1024 * 1024), on_closed=self._on_closed,
                on_error=self._on_error)
        except EpisodeError as exc:
            raise ConfigError(f"parameter output_dir ({output_dir!r}): {exc}") from None
        self.last_mass_g: float | None = None
        self.sim_seed: int | None = None  # episode seed of the open episode, from the newest sim/state
        self.incompatible: dict[str, int] = {}
        recorded = {topics.tactile_topic(n): topics.MSGTYPES[topics.TACTILE_IMAGE] for n in names}
        recorded.update({t: topics.MSGTYPES[t] for t in RECORDED})
        for topic, msgtype in recorded.items():
            self.create_subscription(
                _message_class(msgtype), topic, partial(self._on_message, topic, msgtype), qos.record(depth), raw=True,
                event_callbacks=SubscriptionEventCallbacks(incompatible_qos=partial(self._on_incompatible, topic)))
        self.create_subscription(String, topics.EPISODE_EVENT, self._on_event, qos.LATCHED)
        Diagnostics(self, period_s=period).add(self._status)
        self.get_logger().info(f"recording {sorted(recorded)} into {self.recorder.root.resolve()} on episode/event")
        if auto_start:
            self.start_episode()

    # --- episode control -----------------------------------------------------------------------------------------
    def _meta(self) -> EpisodeMeta:
        p = {name: self.get_parameter(name).value for name in (
            "initial_g", "target_g", "rig", "source", "note", "seed", "delta_phi_deg", "control_rate_hz")}
        return EpisodeMeta(initial_g=p["initial_g"], target_g=p["target_g"], sensors=dict(self.sensors),
                           rig=p["rig"], source=p["source"], note=p["note"], delta_phi_deg=p["delta_phi_deg"],
                           control_rate_hz=p["control_rate_hz"], seed=None if p["seed"] < 0 else p["seed"])

    def start_episode(self) -> None:
        try:
            path = self.recorder.start(self._meta())
        except EpisodeError as exc:
            self.get_logger().warning(f"episode start ignored: {exc}")
            return
        self.last_mass_g = self.sim_seed = None
        self.get_logger().info(f"episode started: {path}.incomplete")

    def _end_meta(self, reason: str) -> _EndMeta:
        meta: _EndMeta = {"final_g": self.last_mass_g, "extra": {"end_reason": reason}}
        if self.get_parameter("seed").value < 0 and self.sim_seed is not None:
            meta["seed"] = self.sim_seed
        return meta

    def finish_episode(self, *, complete: bool, reason: str) -> None:
        if not self.recorder.finish(complete=complete, **self._end_meta(reason)):
            self.get_logger().warning(f"episode {reason} ignored: no episode is being recorded")

    def _on_event(self, msg: String, info: MessageInfo) -> None:
        age_s = (time.time_ns() - info["source_timestamp"]) / 1e9
        if age_s > self.event_max_age_s:
            self.get_logger().info(f"ignoring episode event {msg.data!r} published {age_s:.1f} s ago (latched history)")
            return
        if msg.data == "start":
            self.start_episode()
        elif msg.data in ("end", "abort"):
            self.finish_episode(complete=msg.data == "end", reason=msg.data)
        else:
            self.get_logger().warning(f"unknown episode event {msg.data!r} (expected start, end or abort)")

    def _on_closed(self, path: Path, meta: EpisodeMeta, count: int) -> None:
        state = "saved" if meta.complete else "kept as incomplete"
        self.get_logger().info(f"episode {state}: {path} ({count} messages, final_g={meta.final_g})")

    def _on_error(self, text: str) -> None:
        self.get_logger().error(text)

    # --- data --------------------------------------------------------------------------------------------------
    def _on_message(self, topic: str, msgtype: str, data: bytes) -> None:
        t_ns = self.get_clock().now().nanoseconds
        if topic == topics.SCALE_MASS and self.recorder.recording:
            self.last_mass_g = deserialize_message(data, Float64).data
        elif topic == topics.SIM_STATE and self.recorder.recording:  # the last seen: the arm starts its new
            state = deserialize_message(data, JointState)          # episode a moment after the recorder
            if "episode_seed" in state.name:
                self.sim_seed = int(state.position[list(state.name).index("episode_seed")])
        self.recorder.submit(topic, msgtype, t_ns, data)

    def _on_incompatible(self, topic: str, event: QoSRequestedIncompatibleQoSInfo) -> None:
        self.incompatible[topic] = self.incompatible.get(topic, 0) + 1
        self.get_logger().warning(f"{topic}: a publisher offers QoS the recorder cannot match (policy "
                                  f"{event.last_policy_kind}); its messages are NOT recorded")

    def _status(self) -> Status:
        s = self.recorder.stats()
        dropped = sum(s.dropped.values())
        level, message = Level.OK, "recording" if s.recording else "idle"
        if dropped or self.incompatible:
            level, message = Level.WARN, f"{message}; {dropped} dropped, {len(self.incompatible)} topics unmatched"
        if s.last_error:
            level, message = Level.ERROR, s.last_error
        values: dict[str, object] = {"episode": s.episode or "-", "episodes_closed": s.episodes_closed,
                                     "messages_written": s.messages_written, "queued_messages": s.queued_messages,
                                     "queued_mb": s.queued_bytes / 2**20, "dropped": dropped}
        values.update({f"written {t}": n for t, n in sorted(s.episode_written.items())})
        values.update({f"dropped {t}": n for t, n in sorted(s.dropped.items())})
        values.update({f"incompatible qos {t}": n for t, n in sorted(self.incompatible.items())})
        return Status("recorder", level, message, values)

    def close(self) -> None:
        self.recorder.close(**self._end_meta("shutdown"))


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    sys.exit(main())
