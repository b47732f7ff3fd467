"""Tactile frames: per-sensor ring buffers, 3-frame windows cut by "latest frame at or before t", preprocessing.

The encoder node (live), the training data loader (bags) and the sim evaluation all cut windows with the same
`window_indices` rule, so a policy sees at run time exactly the windows it was trained on.

Shape contract: a window is T=3 RGB uint8 frames (oldest first); `preprocess_window` turns it into a float32 array
T x 3 x S x S (S=224 for the released model), resized without crop and normalised with ImageNet mean/std.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from anytouch_policy.errors import ConfigError

#: Frames per AnyTouch clip (the Conv3d tubelet spans all of them).
WINDOW_FRAMES: Final = 3

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class StampedFrame:
    """One RGB uint8 frame (H x W x 3) stamped in nanoseconds at grab time."""

    image: np.ndarray
    stamp_ns: int


def window_indices(
    stamps_ns: Sequence[int] | np.ndarray, t_ns: int, *, frames: int = WINDOW_FRAMES, stride: int = 1
) -> list[int] | None:
    """Indices of the window ending at the latest frame stamped at or before `t_ns` (no look-ahead).

    `stamps_ns` must be sorted ascending. The window holds `frames` frames spaced `stride` apart, oldest first;
    None when too few frames precede `t_ns`.
    """
    if frames < 1 or stride < 1:
        raise ConfigError(f"window needs frames >= 1 and stride >= 1, got frames={frames}, stride={stride}")
    last = bisect.bisect_right(stamps_ns, t_ns) - 1
    first = last - (frames - 1) * stride
    if last < 0 or first < 0:
        return None
    return list(range(first, last + 1, stride))


class FrameRing:
    """The newest frames of one sensor, so a window can be cut at any moment.

    Frames must arrive in stamp order; an older or repeated stamp is dropped and counted (a replayed or
    reconnecting source must not fold time back into a window).
    """

    def __init__(self, *, frames: int = WINDOW_FRAMES, stride: int = 1) -> None:
        if frames < 1 or stride < 1:
            raise ConfigError(f"FrameRing needs frames >= 1 and stride >= 1, got frames={frames}, stride={stride}")
        self.frames = frames
        self.stride = stride
        self._ring: deque[StampedFrame] = deque(maxlen=(frames - 1) * stride + 1)
        self.dropped_out_of_order = 0

    def push(self, frame: StampedFrame) -> bool:
        """Add a frame; False (and counted) when its stamp is not newer than the newest one."""
        if self._ring and frame.stamp_ns <= self._ring[-1].stamp_ns:
            self.dropped_out_of_order += 1
            return False
        self._ring.append(frame)
        return True

    def window(self) -> list[StampedFrame] | None:
        """The window ending at the newest frame, oldest first; None until enough frames arrived."""
        idx = window_indices([f.stamp_ns for f in self._ring], self._ring[-1].stamp_ns if self._ring else -1,
                             frames=self.frames, stride=self.stride)
        return None if idx is None else [self._ring[i] for i in idx]

    def clear(self) -> None:
        self._ring.clear()


def static_window(image: np.ndarray, frames: int = WINDOW_FRAMES) -> list[np.ndarray]:
    """A static image as a clip: the same frame repeated, as AnyTouch feeds tactile images."""
    return [image] * frames


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an H x W x 3 uint8 RGB frame to size x size (no crop, aspect not kept, as the official loaders)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ConfigError(f"tactile frame must be H x W x 3 uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    if image.shape[:2] == (size, size):
        return image
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def preprocess_window(images: Sequence[np.ndarray], size: int = 224) -> np.ndarray:
    """T RGB uint8 frames -> float32 T x 3 x size x size, ImageNet-normalised (the model's input layout)."""
    if len(images) == 0:
        raise ConfigError("a tactile window needs at least one frame")
    stack = np.stack([resize_rgb(im, size) for im in images]).astype(np.float32) / 255.0
    stack = (stack - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file (PNG, JPEG...) as H x W x 3 uint8 RGB; ConfigError names an unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"image file not found: {path}" if not path.exists() else
                          f"{path} is a folder, not an image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"cannot decode image file {path} (not a PNG/JPEG/... image?)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
