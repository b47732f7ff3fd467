"""Tactile sensor driver: publishes tactile/<sensor_name>/image_raw (rgb8, stamped at grab time) from a backend.

    ros2 run anytouch_ros sensor_node --ros-args -p sensor_name:=left -p sensor_type:=gelsight_mini -p backend:=sim
    ros2 run anytouch_ros sensor_node --ros-args -p sensor_name:=left -p backend:=gelsight_mini -p serial:=2BG8-FH59 \\
        -p gelsight_mini.exposure:=180

Backends (anytouch_policy.bringup.backends): `gelsight_mini` and `digit` (cameras grabbed in the backend's own
thread), `sim` (renders a sensor model, `sim_model` or the shipped one of `sensor_type`, at its rate from the
sim/state snapshots of the sim arm node), `replay` (a recorded episode's frames of one sensor, original spacing,
stamps shifted to now). A worker thread reads the backend and publishes; the executor thread only receives sim/state
and runs the /diagnostics timer.
"""

from __future__ import annotations

import sys
import threading

from sensor_msgs.msg import Image, JointState

from anytouch_policy.bounds import DIAGNOSTICS_PERIOD_S
from anytouch_policy.bringup.backends import TACTILE_SOURCES, make_tactile_source
from anytouch_policy.data import topics
from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.base import RateMeter
from anytouch_policy.hardware.cameras.digit import DigitConfig
from anytouch_policy.hardware.cameras.gelsight_mini import GelSightMiniConfig
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.live import MAX_SIM_SENSORS
from anytouch_ros import qos
from anytouch_ros.base import BaseNode, run_node
from anytouch_ros.conversions import image_to_msg, named_values_from_msg, time_to_ns
from anytouch_ros.diagnostics import Diagnostics, Level, Status

#: Backend config fields set from the node's own parameters, not from `<backend>.<field>`.
_OWN = ("name", "device", "serial", "capture_fps", "fps")


class SensorNode(BaseNode):
    NAME = "sensor"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        name = self.param("sensor_name", "", "sensor name: topic tactile/<name>/image_raw, frame_id <name>_gel "
                          "('' = the node name less sensor_)")
        kind = self.param("sensor_type", "gelsight_mini", "sensor type (token slot): gelsight_mini, digit, ...")
        backend = self.param("backend", "sim", "where frames come from", choices=tuple(TACTILE_SOURCES))
        device = self.param("device", "", "gelsight_mini: capture device (/dev/v4l/by-id/... or /dev/videoN)")
        serial = self.param("serial", "", "gelsight_mini / digit: serial number printed on the sensor")
        rate = self.param("rate_hz", 0.0, "frame rate; 0 = the sensor's native rate (replay: the recorded one)",
                          within="[0, 240]")
        replay_bag = self.param("replay_bag", "", "replay: episode directory whose frames are re-published")
        replay_sensor = self.param("replay_sensor", "", "replay: sensor of that episode ('' = sensor_name)")
        replay_loop = self.param("replay_loop", False, "replay: start over after the last frame")
        sim_index = self.param("sim_index", 0, "sim: position in the rig's sensor list (seeds look and noise)",
                               within=f"[0, {MAX_SIM_SENSORS})")
        finger = self.param("sim_finger", "left", "sim: finger pad (right = mirrored)", choices=("left", "right"))
        sim_model = self.param("sim_model", "", "sim: sensor model, a shipped name or a model file path "
                               "('' = the shipped model of sensor_type, whose slot it must fill)")
        period = self.param("diagnostics_period_s", 1.0, "period of the /diagnostics report, s",
                            within=DIAGNOSTICS_PERIOD_S)
        extra = {b: self.backend_params(b, cfg, skip=_OWN)
                 for b, cfg in (("gelsight_mini", GelSightMiniConfig), ("digit", DigitConfig))}
        self.refuse_unknown_parameters()
        name = name or self.get_name().removeprefix("sensor_") * self.get_name().startswith("sensor_")
        if not name:
            raise ConfigError("parameter sensor_name is required (the topic segment, e.g. left) unless the node is "
                              "named sensor_<name>")
        sensor_type = SensorType.from_name(kind)
        if backend == "sim":
            params = {"sensor_type": kind, "model": sim_model, "name": name, "index": sim_index, "finger": finger,
                      "fps": rate}
        elif backend == "replay":
            if rate:
                raise ConfigError(f"parameter rate_hz ({rate}) contradicts backend replay, which keeps the recorded "
                                  "frame spacing; set rate_hz 0.0")
            params = {"episode": replay_bag, "name": name, "sensor": replay_sensor, "loop": replay_loop}
        elif backend == "digit":
            if device:
                raise ConfigError(f"parameter device ({device!r}): a DIGIT is selected by its serial; set serial")
            params = {"name": name, "serial": serial, **extra["digit"]}
            if rate:
                params["fps"] = round(rate)
        else:
            params = {"name": name, "device": device, "serial": serial, **extra["gelsight_mini"]}
            if rate:
                params["capture_fps"] = rate
        self.source = make_tactile_source(backend, **params)
        if self.source.sensor_type != sensor_type:
            raise ConfigError(f"parameter sensor_type {kind!r} contradicts backend {backend}, which delivers "
                              f"{self.source.sensor_type.label} frames")
        self.frame_id = f"{name}_gel"
        self._pub = self.create_publisher(Image, topics.tactile_topic(name), qos.IMAGE)
        if backend == "sim":
            self.create_subscription(JointState, topics.SIM_STATE, self._on_sim_state, qos.SIM_STATE)
        self.source.open()
        self._published = RateMeter()
        self.publish_errors = 0
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name=f"publish-{name}", daemon=True)
        self._worker.start()
        Diagnostics(self, period_s=period).add(self._status)
        self.get_logger().info(f"publishing {self._pub.topic_name} from backend {backend}")

    def _on_sim_state(self, msg: JointState) -> None:
        self.source.feed(named_values_from_msg(msg), time_to_ns(msg.header.stamp))

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.source.read(timeout_s=0.1)
            if frame is None:
                continue
            try:
                self._pub.publish(image_to_msg(frame.image, frame.stamp_ns, frame_id=self.frame_id))
            except Exception as exc:  # the context went down under us (Ctrl-C, SIGTERM) or a bad frame
                if self._stop.is_set() or not self.context.ok():
                    return
                self.publish_errors += 1
                self.get_logger().error(f"publishing a frame failed: {type(exc).__name__}: {exc}")
                continue
            self._published.tick()

    def _status(self) -> Status:
        stats = self.source.stats()
        rate = self._published.rate()
        values: dict[str, object] = {"state": stats.state, "rate_hz": rate, "frames": stats.frames,
                                     "dropped": stats.dropped, "read_failures": stats.read_failures,
                                     "reconnects": stats.reconnects, "publish_errors": self.publish_errors}
        values.update(self.source.diagnostics())
        level, message = Level.OK, f"{rate:.1f} Hz"
        if stats.state != "open" or rate == 0.0:
            level, message = Level.WARN, f"{stats.state}, {rate:.1f} Hz"
        return Status(self._pub.topic_name, level, message, values)

    def stop_workers(self) -> None:
        self._stop.set()
        self._worker.join(timeout=5.0)

    def close(self) -> None:
        self.source.close()


def main(args: list[str] | None = None) -> int:
    return run_node(SensorNode, args)


if __name__ == "__main__":
    sys.exit(main())
