"""Image statistics from per-channel histograms are numpy's statistics of the pixels, in LeRobot's layout."""

import numpy as np
import pytest

from anytouch_policy.export.stats import ImageHistogram, vector_stats


@pytest.mark.parametrize("seed", range(4))
def test_histogram_stats_equal_numpy_on_the_pixels(seed):
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (3, 5, 3), dtype=np.uint8) for _ in range(3)]
    frames.append(np.full((3, 5, 3), 7, np.uint8))  # a constant frame: repeated values, edge ranks
    times = [1, 3, 1, 2]  # a frame that fills several rows counts once per row
    parts = [ImageHistogram(), ImageHistogram()]
    for i, (frame, t) in enumerate(zip(frames, times, strict=True)):
        parts[i % 2].add(frame, t)
    stats = ImageHistogram.merged(parts).stats()

    pixels = np.concatenate([np.repeat(f.reshape(1, -1, 3), t, axis=0).reshape(-1, 3)
                             for f, t in zip(frames, times, strict=True)]).astype(np.float64)
    expected = vector_stats(pixels / 255.0)
    assert stats["count"].tolist() == [sum(times)]
    for key in ("min", "max", "mean", "std", "q01", "q10", "q50", "q90", "q99"):
        assert stats[key].shape == (3, 1, 1)
        np.testing.assert_allclose(stats[key].ravel(), expected[key], rtol=0, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(expected["q50"], np.median(pixels, axis=0) / 255.0)


def test_vector_stats_shapes():
    scalar = vector_stats(np.arange(5, dtype=np.float32))
    assert scalar["mean"].shape == (1,) and scalar["count"].tolist() == [5] and scalar["q50"].tolist() == [2.0]
    vector = vector_stats(np.arange(10.0).reshape(5, 2))
    assert vector["std"].shape == (2,) and vector["max"].tolist() == [8.0, 9.0]
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        ImageHistogram().add(np.zeros((2, 2, 3), np.float32))
