"""DIGIT through digit-interface: found by serial, QVGA at 60 fps, portrait 320x240 RGB, LED intensity.

digit-interface (installed without its GUI OpenCV dependency) finds DIGITs through udev (ID_MODEL=DIGIT,
ID_SERIAL_SHORT) and opens them with cv2.VideoCapture. It is imported only here, lazily, and its bare
`Exception`s are re-raised as DeviceError naming the serial.

Its `connect()` forces QVGA 60 fps and full LED intensity whatever the README says; we then set the configured
stream, rate and intensity. QVGA is the default: VGA shows glitches and a lateral shift (digit-interface#10).
udev may list both nodes of the UVC device under one serial, and digit-interface takes the first; we keep only
entries whose node passes the V4L2 capture check.

Orientation: the sensor delivers 320 wide x 240 high. digit-interface's default (`get_frame(transpose=False)`)
transposes and flips it, a 90 deg counter-clockwise rotation, to 320 high x 240 wide portrait. That portrait
layout is our default: it is what sensors.NATIVE_FORMATS[DIGIT] and the DIGIT data AnyTouch was trained on use.
LANDSCAPE returns the sensor's raw layout and is meant for inspection only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cv2
import numpy as np

from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.hardware.cameras.grabber import CameraGrabber, GrabbedSource
from anytouch_policy.hardware.cameras.v4l2 import SourceKind, check_capture_node, source_kind
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType

log = logging.getLogger(__name__)


class DigitStream(StrEnum):
    """The two stream sizes the DIGIT firmware offers (digit-interface DigitDefaults.STREAMS)."""

    QVGA = "QVGA"  # 320x240 at 60 or 30 fps
    VGA = "VGA"  # 640x480 at 30 or 15 fps; glitchy (digit-interface#10)


class DigitOrientation(StrEnum):
    """Layout of the published frames."""

    PORTRAIT = "portrait"  # digit-interface's default transpose + flip: 320 high x 240 wide (QVGA)
    LANDSCAPE = "landscape"  # the sensor's raw 240 high x 320 wide; not what the model was trained on


_STREAM_FPS = {DigitStream.QVGA: (60, 30), DigitStream.VGA: (30, 15)}
_DIGIT = NATIVE_FORMATS[SensorType.DIGIT]


@dataclass(frozen=True)
class DigitConfig:
    """How to find and set up one DIGIT."""

    serial: str  # printed on the back, e.g. "D20025" (udev ID_SERIAL_SHORT); the only way we select a DIGIT
    name: str = "digit"  # sensor name: frame_id and topic /tactile/<name>/image_raw
    stream: DigitStream = DigitStream.QVGA  # QVGA: VGA glitches (digit-interface#10)
    fps: int = 60  # 60 or 30 for QVGA, 30 or 15 for VGA
    intensity: int = 15  # LED intensity 0 (off) .. 15 (full), all three channels
    orientation: DigitOrientation = DigitOrientation.PORTRAIT  # portrait matches sensors.NATIVE_FORMATS
    allow_file: bool = False  # accept a video file as the udev node (tests, replay)
    check_capture_node: bool = True  # skip udev entries that are not V4L2 capture nodes (the metadata node)
    warmup_frames: int = 10  # frames dropped after every (re)open while exposure settles
    max_consecutive_failures: int = 5  # failed reads in a row before the DIGIT is reopened
    reconnect_backoff_s: float = 0.5  # first wait before reopening; doubles after each failed reopen
    reconnect_backoff_max_s: float = 5.0  # longest wait between reopen attempts

    def __post_init__(self) -> None:
        if not self.serial:
            raise ConfigError("DIGIT serial is required (printed on the sensor, e.g. D20025)")
        if self.fps not in _STREAM_FPS[self.stream]:
            raise ConfigError(f"fps {self.fps} is not offered by the {self.stream} stream; "
                              f"choose one of {_STREAM_FPS[self.stream]}")
        if not 0 <= self.intensity <= 15:
            raise ConfigError(f"intensity must be in 0..15, got {self.intensity}")
        if self.warmup_frames < 0 or self.max_consecutive_failures < 1:
            raise ConfigError("need warmup_frames >= 0 and max_consecutive_failures >= 1")
        if self.reconnect_backoff_s <= 0 or self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ConfigError("need 0 < reconnect_backoff_s <= reconnect_backoff_max_s")

    @property
    def output_shape(self) -> tuple[int, int]:
        """(height, width) of the published frames."""
        w, h = (320, 240) if self.stream is DigitStream.QVGA else (640, 480)
        return (w, h) if self.orientation is DigitOrientation.PORTRAIT else (h, w)


class _DigitReader:
    """FrameReader over a connected digit_interface.Digit."""

    def __init__(self, digit: Any, transpose: bool) -> None:
        self._digit = digit
        self._transpose = transpose

    def read(self, clock: Callable[[], int]) -> tuple[np.ndarray, int]:
        image = self._digit.get_frame(transpose=self._transpose)  # raises a bare Exception on a failed grab
        return image, clock()

    def release(self) -> None:
        self._digit.disconnect()


class DigitSource(GrabbedSource):
    """A DIGIT as a TactileSource: newest RGB frame in the configured orientation, stamped after the grab."""

    sensor_type = SensorType.DIGIT

    def __init__(self, config: DigitConfig, *, clock: Callable[[], int] = time.time_ns) -> None:
        if config.output_shape != (_DIGIT.height, _DIGIT.width):
            log.warning("%s: frames will be %s, not the %dx%d of sensors.NATIVE_FORMATS", config.name,
                        config.output_shape, _DIGIT.height, _DIGIT.width)
        self.config = config
        self.name = config.name
        self.info: dict[str, str] = {}
        c = config
        self._grabber = CameraGrabber(
            c.name, open_reader=self._open_reader, process=lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2RGB),
            warmup_frames=c.warmup_frames, max_consecutive_failures=c.max_consecutive_failures,
            backoff_s=c.reconnect_backoff_s, backoff_max_s=c.reconnect_backoff_max_s, clock=clock)

    def _find_node(self) -> dict[str, str]:
        """The udev entry of our serial whose node is a capture node (re-resolved on every reopen: replugging
        can renumber /dev/videoN)."""
        from digit_interface import DigitHandler

        try:
            entries = [d for d in DigitHandler.list_digits() if d["serial"] == self.config.serial]
        except Exception as exc:  # pyudev errors surface as bare exceptions
            raise DeviceError(f"DIGIT {self.config.serial}: udev listing failed: {exc}") from None
        rejected: list[str] = []
        for entry in entries:
            try:
                kind = source_kind(entry["dev_name"], allow_file=self.config.allow_file)
                if kind is SourceKind.V4L2 and self.config.check_capture_node:
                    check_capture_node(entry["dev_name"])
            except (DeviceError, ConfigError) as exc:
                rejected.append(str(exc))
                continue
            return entry
        detail = "; ".join(rejected) if rejected else "not listed by udev (check the cable, `lsusb` for 2833:0209 " \
                                                        "and the udev rule in docs/hardware.md)"
        raise DeviceError(f"DIGIT {self.config.serial}: no usable capture node: {detail}")

    def _open_reader(self) -> _DigitReader:
        from digit_interface import Digit

        entry = self._find_node()
        digit = Digit(name=self.config.name)  # no serial: we resolved the node ourselves
        digit.serial, digit.dev_name, digit.manufacturer = entry["serial"], entry["dev_name"], entry["manufacturer"]
        digit.model, digit.revision = entry["model"], int(entry["revision"])
        try:
            digit.connect()
            digit.set_resolution(Digit.STREAMS[self.config.stream.value])
            digit.set_fps(self.config.fps)
            # firmware < 200 takes 0..255 (digit-interface divides by 17); ours is always 0..15
            digit.set_intensity(self.config.intensity * (17 if digit.revision < 200 else 1))
        except Exception as exc:  # digit-interface raises bare Exception (and ValueError for intensity)
            try:
                digit.disconnect()
            except Exception as close_exc:  # the capture may never have opened
                log.debug("DIGIT %s: disconnect after failed open: %s", self.config.serial, close_exc)
            raise DeviceError(f"DIGIT {self.config.serial} at {entry['dev_name']}: {exc}") from None
        self.info = {"serial": digit.serial, "dev_name": digit.dev_name, "revision": str(digit.revision),
                     "stream": self.config.stream.value, "fps": str(digit.fps), "intensity": str(digit.intensity)}
        return _DigitReader(digit, transpose=self.config.orientation is DigitOrientation.LANDSCAPE)

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics: serial, node, firmware revision, stream, LED intensity, last failure."""
        return {**self.info, "last_error": self._grabber.last_error}
