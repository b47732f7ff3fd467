"""AnyTouch encoder: tactile/<sensor>/image_raw windows -> anytouch/embedding (32FC1, 1 x D, one message per sensor).

    ros2 run anytouch_ros encoder_node --ros-args -p policy:=models/policy               # everything from the policy
    ros2 run anytouch_ros encoder_node --ros-args -p bundle:=models/anytouch-small \\
        -p "sensors:=[left]" -p "sensor_types:=[gelsight_mini]"

With `policy` (a policy bundle) the bundle is the single source of truth: sensors and their types, frames (3
dynamic, 1 static), stride, token mode and the (fine-tuned) encoder it was trained with; parameters that disagree
with it are refused at start-up, naming them. One exception: a policy trained with the universal token (`anytouch
train --token universal`) gives every window the same token whatever its sensor, so `sensor_types` may name other
sensors than those it was trained on (a DIGIT under the name of the GelSight Mini it learnt from). With `bundle`
(an encoder bundle) they come from the parameters.
Subscription callbacks only push frames into anytouch_policy.control.stream_encoder.StreamEncoder, whose worker thread
embeds the newest window of every sensor with new frames in one forward pass and publishes.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import TypedDict

from sensor_msgs.msg import Image

from anytouch_policy.bounds import DIAGNOSTICS_PERIOD_S
from anytouch_policy.control.stream_encoder import Embedded, StreamEncoder
from anytouch_policy.control.ticks import RollingStats
from anytouch_policy.data import topics
from anytouch_policy.errors import ConfigError, MessageError
from anytouch_policy.model.runtime import EncoderRuntime, Precision, TokenMode
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import WINDOW_FRAMES, StampedFrame
from anytouch_policy.threads import threads_summary
from anytouch_ros import qos
from anytouch_ros.base import BaseNode, run_node
from anytouch_ros.conversions import embedding_to_msg, image_from_msg, time_to_ns
from anytouch_ros.diagnostics import Diagnostics, Level, Status


class _RuntimeOptions(TypedDict):
    """How the encoder runs, for whichever bundle it comes from."""

    device: str
    precision: str
    threads: int | None

class EncoderNode(BaseNode):
    NAME = "encoder"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        bundle = self.param("bundle", "", "encoder bundle folder (config.json + model.safetensors)")
        policy = self.param("policy", "", "policy bundle folder: sensors, frames, stride, token mode and encoder")
        device = self.param("device", "auto", "auto | cpu | cuda | cuda:N")
        dtype = self.param("dtype", "float32", "compute precision", choices=[p.value for p in Precision])
        token_mode = self.param("token_mode", "", "specific | universal ('' = the policy's, or specific)",
                                choices=["", *(m.value for m in TokenMode)])
        stride = self.param("stride", 0, "frames between the frames of a window (0 = the policy's, or 1)",
                            within="[0, 60]")
        threads = self.param("threads", 0, "torch CPU threads (0 = torch's default)", within="[0, 1024]")
        names = self.param("sensors", [], "sensor names ([] = the policy's); topics tactile/<name>/image_raw")
        kinds = self.param("sensor_types", [], "sensor type of each name ([] = the policy's)")
        period = self.param("diagnostics_period_s", 1.0, "period of the /diagnostics report, s",
                            within=DIAGNOSTICS_PERIOD_S)
        self.refuse_unknown_parameters()
        if bool(bundle) == bool(policy):
            raise ConfigError("set exactly one of parameters bundle (an encoder bundle) and policy (a policy bundle, "
                              f"which brings its own encoder); got bundle={bundle!r}, policy={policy!r}")
        if len(names) != len(kinds) and not policy:  # with a policy each list is compared with the bundle
            raise ConfigError(f"parameters sensors ({names}) and sensor_types ({kinds}) must have the same length")
        options: _RuntimeOptions = {"device": device, "precision": dtype, "threads": threads or None}
        if policy:
            from anytouch_policy.policy.runtime import PolicyRuntime

            bundled = PolicyRuntime.from_bundle(policy, **options)
            bundled_types = [t.label for _, t in bundled.sensors]
            universal = bundled.token_mode is TokenMode.UNIVERSAL
            self._agree(policy, sensors=(names, [n for n, _ in bundled.sensors]),
                        sensor_types=([] if universal else kinds, bundled_types),
                        token_mode=(token_mode, str(bundled.token_mode)), stride=(stride, bundled.stride))
            sensors, frames, stride = list(bundled.sensors), bundled.frames, bundled.stride
            if universal and kinds and kinds != bundled_types:  # every window gets the universal token anyway
                if len(kinds) != len(sensors):
                    raise ConfigError(f"parameter sensor_types {kinds} must list one type per sensor of policy "
                                      f"bundle {policy} ({[n for n, _ in sensors]})")
                sensors = [(n, SensorType.from_name(k)) for (n, _), k in zip(sensors, kinds, strict=True)]
                self.get_logger().info(f"universal token: sensors {[n for n, _ in sensors]} are {kinds}, the policy "
                                       f"was trained on {bundled_types}")
            self.runtime = bundled.encoder_runtime(**options)
        else:
            if not names:
                raise ConfigError("parameter sensors is empty: name the sensors to encode (and sensor_types)")
            sensors = [(n, SensorType.from_name(k)) for n, k in zip(names, kinds, strict=True)]
            frames, stride = WINDOW_FRAMES, stride or 1
            self.runtime = EncoderRuntime.from_bundle(bundle, token_mode=token_mode or TokenMode.SPECIFIC, **options)
        for name, kind in sensors:  # specific mode: refuse a type whose token the model never trained
            try:
                self.runtime.slot_for(kind)
            except ConfigError as exc:
                raise ConfigError(f"sensor {name!r}: {exc}") from None
        self.runtime.warmup(batch_sizes=range(1, len(sensors) + 1))
        self.stream = StreamEncoder(self.runtime.embed, sensors, frames=frames, stride=stride,
                                    clip_frames=self.runtime.frames, on_embeddings=self._publish)
        self._pub = self.create_publisher(Image, topics.EMBEDDING, qos.IMAGE)
        for name, _ in sensors:
            self.create_subscription(Image, topics.tactile_topic(name), partial(self._on_image, name),
                                     qos.IMAGE_LATEST)
        self.bad_frames = self.publish_errors = 0
        self.latency = RollingStats()  # grab stamp of a window's newest frame -> its embedding published, s
        self.last_publish_error = ""
        self.stream.start()
        Diagnostics(self, period_s=period).add(self._status)
        self.get_logger().info(
            f"encoding {[n for n, _ in sensors]} ({frames} frame(s), stride {stride}, token mode "
            f"{self.runtime.token_mode}, dim {self.runtime.output_dim}) on {self.runtime.device} "
            f"{self.runtime.precision}, {threads_summary()}")

    def _agree(self, policy: str, **pairs: tuple[object, object]) -> None:
        """Refuse parameters that are set (non-empty, non-zero) and differ from what the policy bundle says."""
        clashes = [f"{name} {given!r} (bundle: {bundled!r})" for name, (given, bundled) in pairs.items()
                   if given not in ("", 0, []) and given != bundled]
        if clashes:
            raise ConfigError(f"parameters contradict policy bundle {policy}: {'; '.join(clashes)}; leave them "
                              "empty/0 to take the bundle's, or start the sensors the policy was trained with")

    def _on_image(self, sensor: str, msg: Image) -> None:
        try:
            image = image_from_msg(msg)
        except MessageError:
            self.bad_frames += 1
            return
        self.stream.push(sensor, StampedFrame(image, time_to_ns(msg.header.stamp)))

    def _publish(self, embedded: list[Embedded]) -> None:
        try:
            for item in embedded:
                self._pub.publish(embedding_to_msg(item.vector, item.stamp_ns, sensor=item.sensor))
                self.latency.add((self.get_clock().now().nanoseconds - item.stamp_ns) / 1e9)
        except Exception as exc:  # the context is going down (Ctrl-C) while the worker publishes
            self.publish_errors += 1
            self.last_publish_error = f"{type(exc).__name__}: {exc}"

    def _status(self) -> Status:
        s = self.stream
        counts = s.counts()
        values: dict[str, object] = {"passes": s.passes, "rate_hz": s.rate_hz, "errors": s.errors,
                                     "bad_frames": self.bad_frames,
                                     "publish_errors": self.publish_errors,
                                     "device": str(self.runtime.device), "dtype": str(self.runtime.precision)}
        values.update(s.compute.summary(1000.0, "_compute_ms"))
        values.update(self.latency.summary(1000.0, "_latency_ms"))
        values["p50_batch"] = s.batch.percentiles(50)[0]
        if self.last_publish_error:
            values["last_publish_error"] = self.last_publish_error
        for name, c in counts.items():
            values.update({f"{name} frames": c.frames, f"{name} embedded": c.embedded,
                           f"{name} skipped": c.skipped, f"{name} out_of_order": c.out_of_order})
        level, message = Level.OK, f"{s.rate_hz:.1f} forward passes/s"
        if s.errors:
            level, message = Level.ERROR, s.last_error
        elif not s.passes:
            level, message = Level.WARN, "no complete window yet"
        return Status("encoder", level, message, values)

    def stop_workers(self) -> None:
        self.stream.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(EncoderNode, args)


if __name__ == "__main__":
    sys.exit(main())
