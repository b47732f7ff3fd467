"""Replay one sensor of a recorded episode as if it were live: original frame spacing, stamps shifted to now.

    source = make_tactile_source("replay", episode="episodes/demo_20260101-120000_0", name="left", loop=True)

A thread decodes the episode's frames of that sensor one at a time (a long episode is never held in memory) and
releases each at `start + (stamp - first stamp)` on the wall clock, stamped with that time; `read()` hands out the
newest released frame once, like the camera backends (a frame nobody read before the next one counts as dropped).
With `loop` the episode starts over one mean frame period after its last frame; without, the source reports
`finished` and returns no more frames. The image bytes are the recorded ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from anytouch_policy.data.episode import Episode, read_episode
from anytouch_policy.errors import ConfigError, DeviceNotConnectedError, EpisodeError
from anytouch_policy.hardware.base import NewestFrame, SourceState, SourceStats, TactileSource
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import StampedFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    """Which recorded frames to re-publish."""

    episode: str  # episode directory (a finished one, or a readable .incomplete one)
    name: str = ""  # sensor name of the replayed frames; defaults to `sensor`
    sensor: str = ""  # sensor of the episode to replay; defaults to `name`, or the episode's only sensor
    loop: bool = False  # start over after the last frame

    def __post_init__(self) -> None:
        if not self.episode:
            raise ConfigError("replay episode is required (an episode directory written by the recorder)")


class ReplaySource(TactileSource):
    """The frames of one sensor of an episode, paced by their recorded stamps."""

    def __init__(self, config: ReplayConfig, *, clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.episode: Episode = read_episode(Path(config.episode), allow_incomplete=True, require_actions=False)
        sensors = self.episode.meta.sensors
        sensor = config.sensor or config.name
        if not sensor:
            if len(sensors) != 1:
                raise ConfigError(f"replay of {config.episode}: the episode has sensors {sorted(sensors)}; "
                                  "say which one (sensor)")
            sensor = next(iter(sensors))
        if sensor not in sensors or sensor not in self.episode.frame_stamps:
            raise ConfigError(f"replay of {config.episode}: no frames of sensor {sensor!r}; "
                              f"the episode has {sorted(self.episode.frame_stamps)}")
        self.sensor = sensor
        self.name = config.name or sensor
        self.sensor_type = SensorType.from_name(sensors[sensor])
        stamps = self.episode.frame_stamps[sensor]
        self.period_ns = int((stamps[-1] - stamps[0]) // max(1, len(stamps) - 1)) if len(stamps) > 1 else 40_000_000
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._newest = NewestFrame()
        self._state = SourceState.CLOSED
        self.out_of_order = self.loops = 0
        self.last_error = ""

    def open(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._state = SourceState.OPEN
        self._thread = threading.Thread(target=self._run, name=f"replay-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._newest.wake()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)
        self._state = SourceState.CLOSED

    def _run(self) -> None:
        start_ns = self._clock()
        try:
            while not self._stop.is_set():
                first = last = None
                for frame in self.episode.iter_frames(self.sensor):
                    if last is not None and frame.stamp_ns <= last:
                        self.out_of_order += 1  # a window must never fold back in time
                        continue
                    first = frame.stamp_ns if first is None else first
                    last = frame.stamp_ns
                    due_ns = start_ns + (frame.stamp_ns - first)
                    if self._stop.wait(max(0.0, (due_ns - self._clock()) / 1e9)):
                        return
                    self._newest.put(StampedFrame(frame.image, due_ns))
                if not self.config.loop or first is None:
                    break
                self.loops += 1
                start_ns += last - first + self.period_ns
        except EpisodeError as exc:
            self.last_error = str(exc)
            log.error("replay %s: %s", self.name, exc)
        self._state = SourceState.FINISHED
        self._newest.wake()

    def read(self, timeout_s: float = 0.0) -> StampedFrame | None:
        if self._thread is None and self._state is not SourceState.FINISHED:
            raise DeviceNotConnectedError(f"replay {self.name}: read() before open()")
        return self._newest.take(timeout_s, live=lambda: self._state is SourceState.OPEN)

    def stats(self) -> SourceStats:
        newest = self._newest
        return SourceStats(frames=newest.frames, dropped=newest.dropped, read_failures=0, reconnects=0,
                           fps=newest.rate.rate(), state=str(self._state))

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics next to stats()."""
        return {"episode": str(self.episode.path), "sensor": self.sensor, "loops": str(self.loops),
                "out_of_order": str(self.out_of_order), "last_error": self.last_error}
