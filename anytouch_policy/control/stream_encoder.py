"""Live embeddings of tactile streams without ROS: a FrameRing per sensor, the newest windows of every sensor with
new frames embedded together in one forward pass, in a worker thread.

    stream = StreamEncoder(runtime.embed, [("left", SensorType.GELSIGHT_MINI), ("right", SensorType.DIGIT)],
                           frames=3, stride=1, on_embeddings=publish)
    stream.start()
    stream.push("left", StampedFrame(image, grab_stamp_ns))    # from a subscription callback: never blocks on torch

    push() ──> FrameRing per sensor (+ "new frames" flag) ──> worker: windows ending at each flagged sensor's newest
                                                                frame -> embed(B windows) -> on_embeddings([...])

The worker never queues a backlog: whenever it is free it embeds the newest window of each sensor that received
frames since its last pass; frames that arrived in between never end a window and are counted as skipped. A static
policy (frames=1) gets the newest frame repeated to the encoder's clip length, as AnyTouch feeds images.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from anytouch_policy.control.ticks import RollingStats
from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import WINDOW_FRAMES, FrameRing, StampedFrame, static_window

Embed = Callable[[Sequence[Sequence[np.ndarray]], Sequence[SensorType]], np.ndarray]


@dataclass(frozen=True)
class Embedded:
    """One sensor's embedding: stamped with the grab time of the newest frame of its window."""

    sensor: str
    stamp_ns: int
    vector: np.ndarray  # (D,) float32


@dataclass(frozen=True)
class SensorCounts:
    frames: int  # pushed and accepted
    embedded: int  # windows embedded
    skipped: int  # complete windows passed over for a newer one (the worker was busy)
    out_of_order: int  # frames refused for a stamp not newer than the newest


class StreamEncoder:
    """Owns the rings and the worker; push() from any thread."""

    def __init__(self, embed: Embed, sensors: Sequence[tuple[str, SensorType]], *, frames: int = WINDOW_FRAMES,
                 stride: int = 1, clip_frames: int = WINDOW_FRAMES,
                 on_embeddings: Callable[[list[Embedded]], None]) -> None:
        names = [name for name, _ in sensors]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"StreamEncoder needs distinct sensor names, got {names}")
        if frames not in (1, clip_frames):
            raise ConfigError(f"frames must be 1 (static) or {clip_frames} (dynamic), got {frames}")
        self._embed = embed
        self.types = dict(sensors)
        self.frames, self.clip_frames = frames, clip_frames
        self._on_embeddings = on_embeddings
        self._rings = {name: FrameRing(frames=frames, stride=stride) for name in names}
        self._new = dict.fromkeys(names, 0)  # complete windows since the sensor's last embedded one
        self._ready: set[str] = set()  # sensors with new frames and a complete window
        self._counts = {name: [0, 0, 0] for name in names}  # frames, embedded, skipped
        self._cond = threading.Condition()
        self._stop = False
        self.compute = RollingStats()  # seconds per forward pass (preprocessing included)
        self.batch = RollingStats()
        self.passes = 0
        self._pass_times: deque[float] = deque(maxlen=100)
        self.errors = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="stream-encoder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def push(self, sensor: str, frame: StampedFrame) -> bool:
        """Add a frame of `sensor`; False for an unknown sensor or a stamp not newer than its newest frame."""
        with self._cond:
            ring = self._rings.get(sensor)
            if ring is None or not ring.push(frame):
                return False
            self._counts[sensor][0] += 1
            if ring.window() is not None:  # this frame ends a complete window
                self._new[sensor] += 1
                if sensor not in self._ready:
                    self._ready.add(sensor)
                    self._cond.notify()
            return True

    @property
    def rate_hz(self) -> float:
        """Forward passes per second over the last 100 (0 when none in the last second)."""
        times = list(self._pass_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def counts(self) -> dict[str, SensorCounts]:
        with self._cond:
            return {name: SensorCounts(c[0], c[1], c[2], self._rings[name].dropped_out_of_order)
                    for name, c in self._counts.items()}

    def _take(self) -> list[tuple[str, list[StampedFrame]]]:
        """Newest windows of the ready sensors, in sensor order (caller holds _cond); clears their flags."""
        out = []
        for name in self._rings:
            if name in self._ready:
                self._counts[name][2] += self._new[name] - 1
                self._new[name] = 0
                out.append((name, self._rings[name].window()))
        self._ready.clear()
        return out

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._ready)
                if self._stop:
                    return
                windows = self._take()
            clips = [[f.image for f in w] if self.frames > 1 else static_window(w[-1].image, self.clip_frames)
                     for _, w in windows]
            started = time.perf_counter()
            try:
                vectors = self._embed(clips, [self.types[name] for name, _ in windows])
            except Exception as exc:  # reported on /diagnostics; the next frames try again
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            self.compute.add(time.perf_counter() - started)
            self.batch.add(len(windows))
            self.passes += 1
            self._pass_times.append(time.monotonic())
            with self._cond:
                for name, _ in windows:
                    self._counts[name][1] += 1
            self._on_embeddings([Embedded(name, w[-1].stamp_ns, vectors[i]) for i, (name, w) in enumerate(windows)])
