"""An OpenCV capture of a V4L2 node or a video file, as a FrameReader for the grab thread.

Devices are opened with the V4L2 backend, asked for MJPG at the configured size and rate and a one-buffer queue
(the driver's default four buffers would hand out frames up to ~200 ms old). A stalled USB read blocks in
select() for OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT seconds (10 by default; OpenCV's V4L2 backend ignores
CAP_PROP_READ_TIMEOUT_MSEC): the variable is set, unless already set, before the first V4L2 capture opens, since
OpenCV reads it once per process. Exposure and white balance go through OpenCV's CAP_PROP
controls, which the V4L2 backend maps onto the UVC controls (auto_exposure, exposure_time_absolute in 100 us
units, white_balance_automatic, white_balance_temperature). A property the driver refuses is logged and listed
in `refused`, never fatal. Video files replay through FFmpeg at `replay_fps`, so they behave like a camera.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from anytouch_policy.errors import DeviceError
from anytouch_policy.hardware.cameras.v4l2 import SourceKind

log = logging.getLogger(__name__)

#: V4L2 auto_exposure menu value for manual exposure, as OpenCV's V4L2 backend passes it through.
V4L2_EXPOSURE_MANUAL = 1


@dataclass(frozen=True)
class CaptureSettings:
    """What to ask a V4L2 camera for; see the backend config that fills it."""

    width: int
    height: int
    fps: float
    fourcc: str = "MJPG"
    buffer_size: int = 1
    select_timeout_s: int = 1
    exposure: int | None = None  # exposure_time_absolute (100 us units); None keeps auto exposure
    white_balance_k: int | None = None  # white_balance_temperature; None keeps auto white balance


class OpenCVReader:
    """FrameReader over cv2.VideoCapture; stamps between grab() and retrieve() so decode time is not in the stamp."""

    def __init__(self, path: str, kind: SourceKind, settings: CaptureSettings, *, replay_fps: float = 0.0) -> None:
        self.path = path
        self.kind = kind
        self.refused: list[str] = []
        if kind is SourceKind.V4L2:
            os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(settings.select_timeout_s))
        backend = cv2.CAP_V4L2 if kind is SourceKind.V4L2 else cv2.CAP_FFMPEG
        self._cap = cv2.VideoCapture(path, backend)
        if not self._cap.isOpened():
            self._cap.release()
            raise DeviceError(f"OpenCV could not open {path} ({kind.value})")
        self._period_s = 1.0 / replay_fps if kind is SourceKind.FILE and replay_fps > 0 else 0.0
        self._next_t = time.monotonic()
        if kind is SourceKind.V4L2:
            self._configure(settings)

    def _set(self, prop: int, value: float, label: str) -> None:
        if not self._cap.set(prop, value):
            self.refused.append(label)
            log.warning("%s: camera refused %s=%s", self.path, label, value)

    def _configure(self, s: CaptureSettings) -> None:
        self._set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*s.fourcc), f"fourcc {s.fourcc}")
        self._set(cv2.CAP_PROP_FRAME_WIDTH, s.width, "width")
        self._set(cv2.CAP_PROP_FRAME_HEIGHT, s.height, "height")
        self._set(cv2.CAP_PROP_FPS, s.fps, "fps")
        self._set(cv2.CAP_PROP_BUFFERSIZE, s.buffer_size, "buffer_size")
        if s.exposure is not None:
            self._set(cv2.CAP_PROP_AUTO_EXPOSURE, V4L2_EXPOSURE_MANUAL, "auto_exposure=manual")
            self._set(cv2.CAP_PROP_EXPOSURE, s.exposure, "exposure")
        if s.white_balance_k is not None:
            self._set(cv2.CAP_PROP_AUTO_WB, 0, "white_balance_automatic=0")
            self._set(cv2.CAP_PROP_WB_TEMPERATURE, s.white_balance_k, "white_balance_temperature")
        fourcc = int(self._cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace")
        if fourcc != s.fourcc:
            log.warning("%s: camera delivers %r instead of %r", self.path, fourcc, s.fourcc)

    def read(self, clock: Callable[[], int]) -> tuple[np.ndarray, int] | None:
        if self._period_s:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t = max(self._next_t + self._period_s, time.monotonic() - self._period_s)
        if not self._cap.grab():
            return None
        stamp_ns = clock()
        ok, image = self._cap.retrieve()
        return (image, stamp_ns) if ok and image is not None else None

    def release(self) -> None:
        self._cap.release()
