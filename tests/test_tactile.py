"""Windows are cut by "latest frame at or before t" with no look-ahead, and preprocessing keeps the model layout."""

import numpy as np
import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.tactile import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FrameRing,
    StampedFrame,
    preprocess_window,
    window_indices,
)


def test_window_indices_latest_at_or_before():
    stamps = [10, 20, 30, 40, 50]
    assert window_indices(stamps, 45) == [1, 2, 3]
    assert window_indices(stamps, 40) == [1, 2, 3]  # a frame stamped exactly at t counts
    assert window_indices(stamps, 39) == [0, 1, 2]
    assert window_indices(stamps, 25) is None  # only 2 frames before t
    assert window_indices(stamps, 50, stride=2) == [0, 2, 4]
    assert window_indices(stamps, 49, stride=2) is None


def test_ring_window_and_out_of_order_drop():
    ring = FrameRing(frames=3, stride=2)
    img = np.zeros((4, 4, 3), np.uint8)
    for t in range(1, 5):
        ring.push(StampedFrame(img, t))
    assert ring.window() is None  # needs 5 frames for stride 2
    ring.push(StampedFrame(img, 5))
    assert [f.stamp_ns for f in ring.window()] == [1, 3, 5]
    assert not ring.push(StampedFrame(img, 5))
    assert ring.dropped_out_of_order == 1
    ring.push(StampedFrame(img, 6))
    assert [f.stamp_ns for f in ring.window()] == [2, 4, 6]


def test_preprocess_layout_and_normalisation():
    frames = [np.full((240, 320, 3), v, np.uint8) for v in (0, 128, 255)]
    x = preprocess_window(frames, size=224)
    assert x.shape == (3, 3, 224, 224) and x.dtype == np.float32
    expected = (np.array([128 / 255.0] * 3, np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x[1, :, 100, 100], expected, atol=1e-5)


def test_preprocess_rejects_bad_frames():
    with pytest.raises(ConfigError, match="H x W x 3 uint8"):
        preprocess_window([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ConfigError, match="at least one frame"):
        preprocess_window([])


def test_read_rgb_names_a_missing_file_and_a_folder(tmp_path):
    from anytouch_policy.tactile import read_rgb

    with pytest.raises(ConfigError, match="image file not found: .*absent.png"):
        read_rgb(tmp_path / "absent.png")
    with pytest.raises(ConfigError, match="is a folder, not an image file"):
        read_rgb(tmp_path)
