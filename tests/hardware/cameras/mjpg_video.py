"""Small MJPG AVI videos whose frames carry their own index, to check what a camera backend hands out.

Each frame (BGR) is mid-grey with: a red square in the top-left corner of the central region (orientation and
colour order), and the frame index as 6 black/white bits in a row across the centre (survives JPEG, the 0.15
border crop and a resize). `decode_index` reads the bits back from an RGB frame in the same layout.
`write_mjpg_frames` streams given frames instead (real sensor frames, tests/hardware/cameras/test_real_mini_frames.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

BITS = 6


def _bit_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each bit, as fractions of the frame: inside the central 60 % of both axes."""
    x0, x1 = 0.25 * width, 0.75 * width
    w = (x1 - x0) / BITS
    return [(int(x0 + i * w), int(0.4 * height), int(x0 + (i + 1) * w), int(0.6 * height)) for i in range(BITS)]


def make_frame(index: int, width: int, height: int) -> np.ndarray:
    frame = np.full((height, width, 3), 128, np.uint8)
    s = max(4, width // 10)
    x, y = int(0.2 * width), int(0.2 * height)
    frame[y:y + s, x:x + s] = (0, 0, 255)  # red in BGR
    for bit, (bx0, by0, bx1, by1) in enumerate(_bit_boxes(width, height)):
        frame[by0:by1, bx0 + 2:bx1 - 2] = 255 if (index >> bit) & 1 else 0
    return frame


def _to_output(fx: float, fy: float, shape: tuple[int, ...], border: float) -> tuple[int, int]:
    """Pixel (x, y) in an output frame of `shape` of the written-frame fractions (fx, fy), after a border crop."""
    h, w = shape[:2]
    return int((fx - border) / (1 - 2 * border) * w), int((fy - border) / (1 - 2 * border) * h)


def decode_index(rgb: np.ndarray, *, border: float = 0.0) -> int:
    """Index of an output frame in the written layout (any size), after a crop of `border` per edge."""
    value = 0
    for bit in range(BITS):
        x, y = _to_output(0.25 + (bit + 0.5) * 0.5 / BITS, 0.5, rgb.shape, border)
        if rgb[y - 2:y + 3, x - 2:x + 3].mean() > 128:
            value |= 1 << bit
    return value


def marker_rgb(rgb: np.ndarray, *, width: int, height: int, border: float = 0.0) -> np.ndarray:
    """Mean RGB at the centre of the red marker of a frame written at width x height."""
    s = max(4, width // 10)
    x, y = _to_output((0.2 * width + s / 2) / width, (0.2 * height + s / 2) / height, rgb.shape, border)
    return rgb[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(axis=0)


def write_mjpg(path: Path, *, frames: int = 30, width: int = 400, height: int = 300, fps: float = 25.0,
               first_index: int = 0) -> Path:
    return write_mjpg_frames(path, [make_frame((first_index + i) % (1 << BITS), width, height) for i in range(frames)],
                             fps=fps)


def write_mjpg_frames(path: Path, frames: Sequence[np.ndarray], *, fps: float = 25.0) -> Path:
    """An MJPG AVI of the given BGR frames (one size), as a camera would stream them."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV has no MJPG writer"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
