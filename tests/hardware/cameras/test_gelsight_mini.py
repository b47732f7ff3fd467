"""GelSight Mini backend reading real MJPG streams through OpenCV (video files; no /dev/video here)."""

import shutil
import threading
import time

import numpy as np
import pytest

from anytouch_policy.bringup.backends import make_tactile_source
from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.hardware.base import SourceState
from anytouch_policy.hardware.cameras.gelsight_mini import GelSightMiniConfig, GelSightMiniSource
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
from tests.hardware.cameras.mjpg_video import decode_index, marker_rgb

FAST = dict(allow_file=True, reconnect_backoff_s=0.05, reconnect_backoff_max_s=0.2, max_consecutive_failures=2)


def _collect(source, seconds):
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = source.read(timeout_s=0.05)
        if frame is not None:
            frames.append(frame)
    return frames


def test_frames_are_cropped_resized_rgb_in_the_native_layout(mjpg):
    video = mjpg("mini.avi", frames=40, width=410, height=308)  # the Mini's 3280x2464 aspect, scaled down
    with make_tactile_source("gelsight_mini", device=str(video), replay_fps=100.0, **FAST) as source:
        frame = source.read(timeout_s=2.0)
    fmt = NATIVE_FORMATS[SensorType.GELSIGHT_MINI]
    assert frame.image.shape == (fmt.height, fmt.width, 3) and frame.image.dtype == np.uint8
    red = marker_rgb(frame.image, width=410, height=308, border=0.15)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60  # RGB order, marker where the crop maps it
    assert source.sensor_type is SensorType.GELSIGHT_MINI


def test_warm_up_frames_are_never_handed_out(mjpg):
    video = mjpg("warm.avi", frames=14)
    source = GelSightMiniSource(GelSightMiniConfig(device=str(video), replay_fps=50.0, **FAST))
    with source:
        frames = _collect(source, 0.45)  # one pass of the file, before EOF forces a reopen
    indices = [decode_index(f.image, border=0.15) for f in frames]
    assert indices and min(indices) >= 10  # default warmup_frames=10
    assert source.stats().frames >= len(indices)


def test_newest_frame_only_with_drops_and_monotonic_grab_stamps(mjpg):
    video = mjpg("fast.avi", frames=60)
    source = GelSightMiniSource(GelSightMiniConfig(device=str(video), replay_fps=100.0, warmup_frames=0, **FAST))
    with source:
        handed = []
        for _ in range(6):
            time.sleep(0.04)  # a consumer slower than the camera
            handed.append(source.read(timeout_s=1.0))
        stats = source.stats()
    indices = [decode_index(f.image, border=0.15) for f in handed]
    stamps = [f.stamp_ns for f in handed]
    assert stamps == sorted(set(stamps))
    assert indices == sorted(set(indices))
    assert stats.dropped >= sum(b - a - 1 for a, b in zip(indices, indices[1:], strict=False)) > 0
    before = time.time_ns()
    assert all(before - 5e9 < s <= before for s in stamps)  # wall-clock stamps (the ROS node clock)


def test_end_of_stream_reconnects_and_frames_resume(mjpg):
    video = mjpg("short.avi", frames=6)
    source = GelSightMiniSource(GelSightMiniConfig(device=str(video), replay_fps=100.0, warmup_frames=1, **FAST))
    with source:
        frames = _collect(source, 0.6)
        stats = source.stats()
    assert stats.reconnects >= 1 and stats.read_failures >= 2
    indices = [decode_index(f.image, border=0.15) for f in frames]
    assert indices.count(5) >= 2  # the last frame came again after the reopen
    assert source.stats().state == SourceState.CLOSED


def test_corrupt_stream_stays_reconnecting_until_it_is_back(mjpg, tmp_path):
    video = mjpg("live.avi", frames=8)
    good = tmp_path / "good.avi"
    shutil.copy(video, good)
    source = GelSightMiniSource(GelSightMiniConfig(device=str(video), replay_fps=100.0, warmup_frames=0, **FAST))
    states = []
    with source:
        assert source.read(timeout_s=1.0) is not None
        video.write_bytes(b"\0" * 4096)  # the device starts returning garbage
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            states.append(source.stats().state)
            time.sleep(0.02)
        assert source.stats().state == SourceState.RECONNECTING
        assert "could not open" in source.diagnostics()["last_error"]
        while source.read() is not None:  # frames grabbed before the failure keep their (old) stamps
            pass
        shutil.copy(good, video)
        assert source.read(timeout_s=2.0) is not None
        states.append(source.stats().state)
    assert SourceState.RECONNECTING in states and states[-1] == SourceState.OPEN


def test_unreadable_device_fails_at_open_naming_the_path(tmp_path):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"\0" * 2048)
    with pytest.raises(DeviceError, match="broken.avi"):
        GelSightMiniSource(GelSightMiniConfig(device=str(broken), allow_file=True)).open()
    with pytest.raises(ConfigError, match="allow_file"):
        GelSightMiniSource(GelSightMiniConfig(device=str(broken))).open()


def test_close_stops_the_grab_thread(mjpg):
    source = GelSightMiniSource(GelSightMiniConfig(device=str(mjpg("c.avi", frames=10)), **FAST))
    source.open()
    assert any(t.name == "grab-gelsight_mini" for t in threading.enumerate())
    source.close()
    assert not any(t.name == "grab-gelsight_mini" for t in threading.enumerate())
    assert source.stats().state == SourceState.CLOSED


def test_config_is_validated():
    with pytest.raises(ConfigError, match="border_fraction"):
        GelSightMiniConfig(device="/dev/null", border_fraction=0.5)
    with pytest.raises(ConfigError, match="NATIVE_FORMATS"):
        GelSightMiniConfig(device="/dev/null", output_width=224)
    with pytest.raises(ConfigError, match="exactly one"):
        GelSightMiniSource(GelSightMiniConfig())
