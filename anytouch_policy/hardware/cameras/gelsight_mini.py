"""GelSight Mini through OpenCV/V4L2: stable path, capture-node check, MJPG, warm-up, crop, 320x240 RGB.

The Mini's only mode is MJPG 3280x2464 at a nominal 25 fps (15-19 fps measured on Linux, gsrobotics#6, #36).
Each frame is converted to RGB, trimmed by `border_fraction` of its height and width on every edge (the gel's
unlit rim; gsrobotics `crop_and_resize`, default 0.15) and resized to 320x240, the layout of
sensors.NATIVE_FORMATS[GELSIGHT_MINI].
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.cameras.grabber import CameraGrabber, GrabbedSource
from anytouch_policy.hardware.cameras.opencv_reader import CaptureSettings, OpenCVReader
from anytouch_policy.hardware.cameras.v4l2 import SourceKind, check_capture_node, resolve_device, source_kind
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType

_MINI = NATIVE_FORMATS[SensorType.GELSIGHT_MINI]


@dataclass(frozen=True)
class GelSightMiniConfig:
    """How to find, open and post-process one GelSight Mini. Exactly one of device, serial, index is set."""

    name: str = "gelsight_mini"  # sensor name: frame_id and topic /tactile/<name>/image_raw
    device: str = ""  # stable path /dev/v4l/by-id/usb-GelSight..._<SERIAL>-video-index0 (or a video file)
    serial: str = ""  # serial printed on the sensor, e.g. "2BG8-FH59": resolved to the by-id link above
    index: int | None = None  # /dev/videoN: opt-in only, the number changes between boots and may be the metadata node
    by_id_dir: str = "/dev/v4l/by-id"  # where udev puts the stable links (tests point it at a temporary folder)
    allow_file: bool = False  # accept a video file as the device (replay, tests); off so a typo never replays
    check_capture_node: bool = True  # refuse a node without V4L2_CAP_VIDEO_CAPTURE (the UVC metadata node)
    capture_width: int = 3280  # the Mini's only mode; requested so a different default mode is never picked
    capture_height: int = 2464
    capture_fps: float = 25.0  # nominal rate requested from the camera
    fourcc: str = "MJPG"  # the Mini streams MJPG only; YUYV at 8 MP would not fit USB 2 anyway
    exposure: int | None = None  # exposure_time_absolute in 100 us units (gsrobotics preset: 180); None = auto
    white_balance_k: int | None = None  # white balance temperature in K (gsrobotics preset: 4500); None = auto
    warmup_frames: int = 10  # frames dropped after every (re)open: the Mini starts with dark frames
    border_fraction: float = 0.15  # trimmed from each edge before resizing (gsrobotics default)
    output_width: int = _MINI.width  # 320: published layout, must match sensors.NATIVE_FORMATS
    output_height: int = _MINI.height  # 240
    select_timeout_s: int = 1  # a read stuck longer counts as a failure ("select() timeout", gsrobotics#16);
    #   OpenCV's default is 10 s. Sets OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT (process-wide) unless already set
    max_consecutive_failures: int = 5  # failed reads in a row before the capture is reopened
    reconnect_backoff_s: float = 0.5  # first wait before reopening; doubles after each failed reopen
    reconnect_backoff_max_s: float = 5.0  # longest wait between reopen attempts
    replay_fps: float = _MINI.fps  # pacing of video-file replay (0 = as fast as possible)

    def __post_init__(self) -> None:
        if not 0.0 <= self.border_fraction < 0.5:
            raise ConfigError(f"border_fraction must be in [0, 0.5), got {self.border_fraction}")
        for field in ("capture_width", "capture_height", "output_width", "output_height", "max_consecutive_failures",
                      "select_timeout_s"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.warmup_frames < 0:
            raise ConfigError(f"warmup_frames must be >= 0, got {self.warmup_frames}")
        if self.reconnect_backoff_s <= 0 or self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ConfigError("need 0 < reconnect_backoff_s <= reconnect_backoff_max_s, got "
                              f"{self.reconnect_backoff_s}, {self.reconnect_backoff_max_s}")
        if len(self.fourcc) != 4:
            raise ConfigError(f"fourcc must be 4 characters, got {self.fourcc!r}")
        if (self.output_height, self.output_width) != (_MINI.height, _MINI.width):
            raise ConfigError(f"output must be {_MINI.width}x{_MINI.height} (sensors.NATIVE_FORMATS), got "
                              f"{self.output_width}x{self.output_height}")


def crop_and_resize(image_bgr: np.ndarray, border_fraction: float, width: int, height: int) -> np.ndarray:
    """BGR frame -> RGB, `border_fraction` trimmed from every edge, resized to width x height."""
    h, w = image_bgr.shape[:2]
    dy, dx = int(round(h * border_fraction)), int(round(w * border_fraction))
    cropped = image_bgr[dy:h - dy, dx:w - dx]
    resized = cv2.resize(cropped, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)


class GelSightMiniSource(GrabbedSource):
    """A GelSight Mini as a TactileSource: newest 320x240 RGB frame, stamped at grab time."""

    sensor_type = SensorType.GELSIGHT_MINI

    def __init__(self, config: GelSightMiniConfig, *, clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.name = config.name
        self.path = resolve_device(device=config.device, serial=config.serial, index=config.index,
                                   by_id_dir=config.by_id_dir, name_hint="GelSight" if config.serial else "")
        self.kind: SourceKind | None = None
        self.card = ""
        self.refused: list[str] = []
        c = config
        self._settings = CaptureSettings(width=c.capture_width, height=c.capture_height, fps=c.capture_fps,
                                         fourcc=c.fourcc, select_timeout_s=c.select_timeout_s, exposure=c.exposure,
                                         white_balance_k=c.white_balance_k)
        self._grabber = CameraGrabber(
            c.name, open_reader=self._open_reader,
            process=lambda im: crop_and_resize(im, c.border_fraction, c.output_width, c.output_height),
            warmup_frames=c.warmup_frames, max_consecutive_failures=c.max_consecutive_failures,
            backoff_s=c.reconnect_backoff_s, backoff_max_s=c.reconnect_backoff_max_s, clock=clock)

    def _open_reader(self) -> OpenCVReader:
        self.kind = source_kind(self.path, allow_file=self.config.allow_file)
        if self.kind is SourceKind.V4L2 and self.config.check_capture_node:
            self.card = check_capture_node(self.path).card
        reader = OpenCVReader(self.path, self.kind, self._settings, replay_fps=self.config.replay_fps)
        self.refused = reader.refused
        return reader

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics next to stats(): which node was opened and the last failure."""
        return {"path": self.path, "kind": str(self.kind or ""), "card": self.card,
                "refused_controls": ", ".join(self.refused), "last_error": self._grabber.last_error}
