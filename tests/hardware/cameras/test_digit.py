"""DIGIT backend through the real digit-interface, with only its device boundary replaced.

digit-interface finds DIGITs with pyudev and opens them with cv2.VideoCapture. Here pyudev's context lists
stand-in udev entries whose DEVNAME is an MJPG file, and the VideoCapture digit-interface creates is a real
cv2.VideoCapture on that file that also records the properties digit-interface sets (stream size, rate, LEDs).
"""

import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from anytouch_policy.bringup.backends import make_tactile_source
from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.hardware.cameras.digit import DigitConfig, DigitOrientation, DigitSource
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
from tests.hardware.cameras.mjpg_video import decode_index, marker_rgb


class RecordingCapture:
    """A real cv2.VideoCapture (composition, not a subclass) that records set() calls."""

    instances: list["RecordingCapture"] = []

    def __init__(self, *args):
        self._cap = cv2.VideoCapture(*args)
        self.settings: dict[int, float] = {}
        RecordingCapture.instances.append(self)

    def set(self, prop, value):
        self.settings[prop] = value
        return self._cap.set(prop, value)

    def __getattr__(self, name):  # isOpened, read, release, get
        return getattr(self._cap, name)


class Cv2WithRecordingCapture:
    """The cv2 module as digit-interface sees it, with VideoCapture swapped for the recording one."""

    VideoCapture = RecordingCapture

    def __getattr__(self, name):
        return getattr(cv2, name)


@pytest.fixture
def udev(monkeypatch):
    """Set the udev entries digit-interface will list: udev.entries = [dict(DEVNAME=..., ...)]."""
    import digit_interface.digit
    import digit_interface.digit_handler

    state = SimpleNamespace(entries=[], queries=[])

    class Context:
        def list_devices(self, **filters):
            state.queries.append(filters)
            return [dict(e) for e in state.entries]

    monkeypatch.setattr(digit_interface.digit_handler, "pyudev", SimpleNamespace(Context=Context))
    monkeypatch.setattr(digit_interface.digit, "cv2", Cv2WithRecordingCapture())
    RecordingCapture.instances.clear()
    yield state
    for capture in RecordingCapture.instances:
        capture.release()
    RecordingCapture.instances.clear()


def _entry(path, serial="D20025", revision="0200"):
    return {"DEVNAME": str(path), "ID_VENDOR": "YCB", "ID_MODEL": "DIGIT", "ID_REVISION": revision,
            "ID_SERIAL_SHORT": serial}


def test_portrait_frames_match_digit_interface_and_native_format(udev, mjpg):
    udev.entries = [_entry(mjpg("digit.avi", frames=40, width=320, height=240))]
    with make_tactile_source("digit", serial="D20025", intensity=9, allow_file=True, warmup_frames=2) as source:
        frame = source.read(timeout_s=2.0)
        info = source.diagnostics()
    fmt = NATIVE_FORMATS[SensorType.DIGIT]
    assert frame.image.shape == (fmt.height, fmt.width, 3) == (320, 240, 3)
    raw_layout = np.rot90(frame.image, k=-1)  # undo a 90 deg counter-clockwise turn
    assert decode_index(raw_layout) >= 2  # warm-up frames dropped
    assert marker_rgb(raw_layout, width=320, height=240)[0] > 200  # RGB, and the turn went the right way
    assert frame.image[230:250, 52:76, 0].mean() > 200  # the top-left marker is now in the bottom-left quadrant
    assert udev.queries == [{"subsystem": "video4linux", "ID_MODEL": "DIGIT"}]
    settings = RecordingCapture.instances[-1].settings
    assert settings[cv2.CAP_PROP_FRAME_WIDTH] == 320 and settings[cv2.CAP_PROP_FRAME_HEIGHT] == 240
    assert settings[cv2.CAP_PROP_FPS] == 60
    assert settings[cv2.CAP_PROP_ZOOM] == (9 << 8) | (9 << 4) | 9  # LED intensity, all three channels
    assert info["serial"] == "D20025" and info["intensity"] == str((9 << 8) | (9 << 4) | 9)


def test_landscape_keeps_the_sensor_layout(udev, mjpg):
    udev.entries = [_entry(mjpg("digit.avi", frames=20, width=320, height=240))]
    config = DigitConfig(serial="D20025", orientation=DigitOrientation.LANDSCAPE, allow_file=True, warmup_frames=0)
    with DigitSource(config) as source:
        frame = source.read(timeout_s=2.0)
    assert frame.image.shape == (240, 320, 3) == (*config.output_shape, 3)
    assert marker_rgb(frame.image, width=320, height=240)[0] > 200


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")  # digit-interface's logger
def test_old_firmware_gets_the_same_led_level(udev, mjpg):
    udev.entries = [_entry(mjpg("digit.avi", frames=20, width=320, height=240), revision="0150")]
    with DigitSource(DigitConfig(serial="D20025", intensity=9, allow_file=True)) as source:
        assert source.read(timeout_s=2.0) is not None
    assert RecordingCapture.instances[-1].settings[cv2.CAP_PROP_ZOOM] == (9 << 8) | (9 << 4) | 9


def test_the_capture_node_is_chosen_over_other_nodes_of_the_same_serial(udev, mjpg):
    video = mjpg("digit.avi", frames=20, width=320, height=240)
    udev.entries = [_entry("/dev/null"), _entry(video), _entry(video, serial="D99999")]
    with DigitSource(DigitConfig(serial="D20025", allow_file=True)) as source:
        assert source.read(timeout_s=2.0) is not None
        assert source.diagnostics()["dev_name"] == str(video)


def test_unknown_serial_names_it(udev, mjpg):
    udev.entries = [_entry(mjpg("digit.avi", frames=5, width=320, height=240), serial="D11111")]
    with pytest.raises(DeviceError, match="D20025.*not listed by udev"):
        DigitSource(DigitConfig(serial="D20025", allow_file=True)).open()
    udev.entries = [_entry("/dev/null")]
    with pytest.raises(DeviceError, match="D20025.*not a V4L2 device"):
        DigitSource(DigitConfig(serial="D20025")).open()


def test_read_failures_reconnect(udev, mjpg):
    udev.entries = [_entry(mjpg("digit.avi", frames=8, width=320, height=240))]
    config = DigitConfig(serial="D20025", allow_file=True, warmup_frames=0, max_consecutive_failures=2,
                         reconnect_backoff_s=0.05, reconnect_backoff_max_s=0.1)
    with DigitSource(config) as source:
        deadline = time.monotonic() + 3.0
        while source.stats().reconnects < 1 and time.monotonic() < deadline:
            source.read(timeout_s=0.05)
        assert source.read(timeout_s=2.0) is not None
        stats = source.stats()
        assert "Unable to grab frame" in source.diagnostics()["last_error"]  # digit-interface's bare Exception
    assert stats.reconnects >= 1 and stats.read_failures >= 2
    assert all(not c.isOpened() for c in RecordingCapture.instances)  # every capture released


def test_config_is_validated():
    with pytest.raises(ConfigError, match="serial"):
        DigitConfig(serial="")
    with pytest.raises(ConfigError, match="fps 60"):
        make_tactile_source("digit", serial="D1", stream="VGA")
    with pytest.raises(ConfigError, match="intensity"):
        DigitConfig(serial="D1", intensity=16)
