"""A background grab thread shared by the camera backends: newest frame only, stamped at grab time.

The GelSight Mini gives 15-19 fps on Linux with intermittent read failures ("select() timeout", gsrobotics#6, #16,
#36). Reading in the consumer's thread would stall a ROS callback and hand out stale frames, so a thread grabs
continuously and keeps only the newest processed frame: a frame nobody read before the next one arrived is
counted as dropped. Frames are stamped when the grab returns, before decoding. After `max_consecutive_failures`
failed reads the capture is released and reopened with exponential backoff, and the first `warmup_frames` after
every (re)open are discarded (the Mini sends dark frames after opening).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from anytouch_policy.errors import DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import NewestFrame, SourceState, SourceStats, TactileSource
from anytouch_policy.tactile import StampedFrame

log = logging.getLogger(__name__)


class FrameReader(Protocol):
    """One open capture, as the grab thread sees it."""

    def read(self, clock: Callable[[], int]) -> tuple[np.ndarray, int] | None:
        """Block for the next frame; (image, stamp taken with `clock` right after the grab) or None on failure."""

    def release(self) -> None: ...


class CameraGrabber:
    """Runs `open_reader()` then grabs in a thread; `read()` hands out the newest processed frame once."""

    def __init__(
        self,
        name: str,
        *,
        open_reader: Callable[[], FrameReader],
        process: Callable[[np.ndarray], np.ndarray],
        warmup_frames: int,
        max_consecutive_failures: int,
        backoff_s: float,
        backoff_max_s: float,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self._open_reader = open_reader
        self._process = process
        self._warmup_frames = warmup_frames
        self._max_failures = max_consecutive_failures
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._clock = clock
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: FrameReader | None = None
        self._newest = NewestFrame()
        self._state = SourceState.CLOSED
        self._failures = self._reconnects = 0
        self.last_error = ""

    # -- consumer side ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the capture (DeviceError if that fails) and start grabbing."""
        if self._thread is not None:
            return
        self._reader = self._open_reader()
        self._stop.clear()
        self._set_state(SourceState.OPEN)
        self._thread = threading.Thread(target=self._run, name=f"grab-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and release the capture; safe to call twice."""
        self._stop.set()
        self._newest.wake()
        thread, self._thread = self._thread, None
        try:
            if thread is not None:
                thread.join(timeout_s)
                if thread.is_alive():
                    log.error("%s: grab thread did not stop within %.1f s", self.name, timeout_s)
        finally:
            self._release()
            self._set_state(SourceState.CLOSED)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def read(self, timeout_s: float = 0.0) -> StampedFrame | None:
        """The newest frame not handed out before; waits up to `timeout_s` for one, None if none came."""
        if self._thread is None:
            raise DeviceNotConnectedError(f"{self.name}: read() before open()")
        return self._newest.take(timeout_s, live=lambda: not self._stop.is_set())

    def stats(self) -> SourceStats:
        newest = self._newest
        with self._cond:
            return SourceStats(frames=newest.frames, dropped=newest.dropped, read_failures=self._failures,
                               reconnects=self._reconnects, fps=newest.rate.rate(), state=str(self._state))

    # -- grab thread -----------------------------------------------------------------------------------------

    def _set_state(self, state: SourceState) -> None:
        with self._cond:
            self._state = state

    def _release(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.release()
            except Exception as exc:  # a capture that fails to close must not keep the thread alive
                log.warning("%s: release failed: %s", self.name, exc)

    def _run(self) -> None:
        warmup = self._warmup_frames
        consecutive = 0
        while not self._stop.is_set():
            try:
                result = self._reader.read(self._clock) if self._reader is not None else None
            except Exception as exc:  # vendor readers (digit-interface) raise bare Exception on a failed grab
                self.last_error = str(exc)
                result = None
            if result is None:
                consecutive += 1
                with self._cond:
                    self._failures += 1
                if consecutive >= self._max_failures:
                    if not self._reconnect():
                        return
                    consecutive, warmup = 0, self._warmup_frames
                else:
                    self._stop.wait(0.01)
                continue
            consecutive = 0
            image, stamp_ns = result
            if warmup > 0:
                warmup -= 1
                continue
            self._newest.put(StampedFrame(image=self._process(image), stamp_ns=stamp_ns))

    def _reconnect(self) -> bool:
        """Release and reopen with exponential backoff until it works (True) or stop() is called (False)."""
        self._set_state(SourceState.RECONNECTING)
        self._release()
        delay = self._backoff_s
        while not self._stop.wait(delay):
            try:
                self._reader = self._open_reader()
            except DeviceError as exc:
                self.last_error = str(exc)
                log.warning("%s: reopen failed (%s); next try in %.2f s", self.name, exc, delay)
                delay = min(delay * 2.0, self._backoff_max_s)
                continue
            with self._cond:
                self._reconnects += 1
            self._newest.rate.clear()
            self._set_state(SourceState.OPEN)
            log.info("%s: reopened after read failures", self.name)
            return True
        return False


class GrabbedSource(TactileSource):
    """A camera-backed tactile source whose `_grabber` thread does the device work: open/close start and stop it,
    read/stats hand out its newest frame and counters (GelSight Mini and DIGIT differ only in how they open)."""

    _grabber: CameraGrabber

    def open(self) -> None:
        self._grabber.start()

    def close(self) -> None:
        self._grabber.stop()

    def read(self, timeout_s: float = 0.0) -> StampedFrame | None:
        return self._grabber.read(timeout_s)

    def stats(self) -> SourceStats:
        return self._grabber.stats()
