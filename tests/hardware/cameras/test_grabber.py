"""The grab thread on its own, with a scripted reader: stamps, newest-only accounting, failures, reconnect, stop."""

import threading
import time

import numpy as np
import pytest

from anytouch_policy.errors import DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import SourceState
from anytouch_policy.hardware.cameras.grabber import CameraGrabber


class ScriptedReader:
    """Hands out frames whose pixel value is their index; fails when told to."""

    def __init__(self, owner: "Script") -> None:
        self.owner = owner
        self.released = False

    def read(self, clock):
        time.sleep(self.owner.period_s)
        if self.owner.failing.is_set():
            return None
        index = self.owner.next_index
        self.owner.next_index += 1
        stamp = clock()
        self.owner.grab_stamps.append(stamp)
        return np.full((2, 2, 3), index % 256, np.uint8), stamp

    def release(self):
        self.released = True


class Script:
    def __init__(self, period_s=0.002):
        self.period_s = period_s
        self.failing = threading.Event()
        self.refuse_open = threading.Event()
        self.next_index = 0
        self.grab_stamps: list[int] = []
        self.readers: list[ScriptedReader] = []
        self.open_attempts: list[float] = []

    def open(self):
        self.open_attempts.append(time.monotonic())
        if self.refuse_open.is_set():
            raise DeviceError("scripted: camera unplugged")
        reader = ScriptedReader(self)
        self.readers.append(reader)
        return reader


def _grabber(script, process=lambda im: im, **kw):
    settings = dict(warmup_frames=0, max_consecutive_failures=3, backoff_s=0.02, backoff_max_s=0.08)
    settings.update(kw)
    return CameraGrabber("test", open_reader=script.open, process=process, **settings)


def test_read_before_start_is_an_error():
    with pytest.raises(DeviceNotConnectedError):
        _grabber(Script()).read()


def test_stamps_are_taken_at_grab_time_before_processing():
    script = Script()

    def slow(image):
        time.sleep(0.03)
        return image

    grabber = _grabber(script, process=slow)
    grabber.start()
    try:
        frames = [grabber.read(timeout_s=1.0) for _ in range(5)]
        handed_at = time.time_ns()
    finally:
        grabber.stop()
    stamps = [f.stamp_ns for f in frames]
    assert stamps == sorted(set(stamps))  # strictly increasing
    assert all(s in script.grab_stamps for s in stamps)  # the reader's grab stamp, not a later one
    assert handed_at - stamps[-1] >= 30e6  # processing (30 ms) happened after the stamp


def test_only_the_newest_frame_is_handed_out_and_the_rest_are_counted_as_dropped():
    script = Script(period_s=0.001)
    grabber = _grabber(script)
    grabber.start()
    handed = []
    try:
        for _ in range(8):
            time.sleep(0.03)  # the consumer is much slower than the camera
            frame = grabber.read(timeout_s=1.0)
            handed.append(int(frame.image[0, 0, 0]))
        assert grabber.read() is None  # nothing new since the last read
    finally:
        grabber.stop()
    stats = grabber.stats()
    assert handed == sorted(handed) and len(set(handed)) == len(handed)
    assert stats.dropped > 0
    unread = stats.frames - len(handed) - stats.dropped
    assert unread in (0, 1)  # frames = handed out + dropped (+ one still waiting)
    assert stats.fps > 50


def test_failures_reconnect_with_backoff_and_stop_releases_the_capture():
    script = Script()
    grabber = _grabber(script, warmup_frames=2)
    grabber.start()
    try:
        assert grabber.read(timeout_s=1.0) is not None
        script.refuse_open.set()
        script.failing.set()
        deadline = time.monotonic() + 2.0
        while grabber.stats().state != SourceState.RECONNECTING and time.monotonic() < deadline:
            time.sleep(0.005)
        assert grabber.stats().state == SourceState.RECONNECTING
        assert script.readers[0].released
        time.sleep(0.35)
        attempts = script.open_attempts[1:]
        gaps = np.diff(attempts)
        assert len(attempts) >= 3 and gaps[-1] > gaps[0]  # backoff grows (0.02, 0.04, 0.08, 0.08 ...)
        assert gaps.max() < 0.08 + 0.05  # and is capped
        assert "unplugged" in grabber.last_error
        script.failing.clear()
        script.refuse_open.clear()
        before = script.next_index
        frame = grabber.read(timeout_s=1.0)
        assert grabber.stats().state == SourceState.OPEN
        assert int(frame.image[0, 0, 0]) >= before + 2  # warm-up frames dropped again after the reopen
        stats = grabber.stats()
        assert stats.reconnects == 1 and stats.read_failures >= 3
    finally:
        grabber.stop()
    assert not grabber.running
    assert all(reader.released for reader in script.readers)
    assert grabber.stats().state == SourceState.CLOSED
    assert not any(t.name == "grab-test" for t in threading.enumerate())
