"""Replay backend: a recorded episode's frames of one sensor, original spacing, stamps shifted to now, loop."""

import time

import numpy as np
import pytest

from anytouch_policy.actions import Action
from anytouch_policy.bringup.backends import make_tactile_source
from anytouch_policy.data import EpisodeMeta, EpisodeWriter
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.sensors import SensorType

PERIOD_NS = 40_000_000


def _frame(k: int, shape=(240, 320)) -> np.ndarray:
    img = np.zeros((*shape, 3), np.uint8)
    img[..., 0] = k
    img[k % shape[0], :, 1] = 255  # a row that moves: frames differ in more than one value
    return img


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    path = tmp_path_factory.mktemp("eps") / "demo"
    meta = EpisodeMeta(initial_g=100.0, target_g=60.0, sensors={"left": "gelsight_mini", "right": "digit"})
    t0 = 5_000_000_000
    with EpisodeWriter(path, meta=meta) as writer:
        for k in range(8):
            writer.write_image("left", t0 + k * PERIOD_NS, _frame(k))
            writer.write_image("right", t0 + k * PERIOD_NS * 3 // 2, _frame(k, (320, 240)))
        writer.write_action(t0, Action.POUR)
    return path


def _collect(source, count: int, timeout_s: float = 5.0) -> list:
    """(receive time, counter k, frame) until `count` frames were released (read, or dropped as stale)."""
    frames, deadline = [], time.monotonic() + timeout_s
    while source.stats().frames < count and time.monotonic() < deadline:
        if (frame := source.read(timeout_s=0.2)) is not None:
            frames.append((time.time_ns(), int(frame.image[0, 0, 0]), frame))
    return frames


def _check(got: list, period_ns: int, shape) -> None:
    """Each frame handed out is the recorded one; stamps keep the recorded spacing (newest-frame semantics: a frame
    a loaded machine did not read in time is dropped and counted, never delivered late or out of order)."""
    assert len(got) >= 4
    for _, k, frame in got:
        assert np.array_equal(frame.image, _frame(k, shape))
    for (_, k1, f1), (_, k2, f2) in zip(got, got[1:], strict=False):
        assert f2.stamp_ns - f1.stamp_ns == (k2 - k1) % 8 * period_ns  # 8 frames per loop


def test_replay_reproduces_the_frames_with_their_spacing_shifted_to_now(episode):
    before = time.time_ns()
    with make_tactile_source("replay", episode=str(episode), name="left") as source:
        assert source.sensor_type is SensorType.GELSIGHT_MINI
        got = _collect(source, 8)
        time.sleep(0.1)
        assert source.read(timeout_s=0.2) is None and source.stats().state == "finished"
        assert len(got) + source.stats().dropped == 8
    _check(got, PERIOD_NS, (240, 320))
    assert got[0][2].stamp_ns >= before and all(received >= f.stamp_ns for received, _, f in got)  # today's clock
    first, last = got[0], got[-1]
    assert (last[0] - first[0]) / 1e9 == pytest.approx((last[1] - first[1]) * 0.04, abs=0.1)  # paced in real time


def test_replay_loops_and_picks_the_sensor(episode):
    with make_tactile_source("replay", episode=str(episode), name="mine", sensor="right", loop=True) as source:
        assert source.sensor_type is SensorType.DIGIT and source.name == "mine"
        got = _collect(source, 12)
        assert source.diagnostics()["loops"] == "1"
    _check(got, PERIOD_NS * 3 // 2, (320, 240))  # across the loop too
    assert got[-1][1] < got[0][1] + 8 and any(k2 < k1 for (_, k1, _), (_, k2, _) in zip(got, got[1:], strict=False))


def test_replay_refuses_what_it_cannot_replay(episode, tmp_path):
    with pytest.raises(ConfigError, match="replay episode is required"):
        make_tactile_source("replay", episode="")
    with pytest.raises(ConfigError, match="has sensors \\['left', 'right'\\]; say which one"):
        make_tactile_source("replay", episode=str(episode))
    with pytest.raises(ConfigError, match="no frames of sensor 'middle'"):
        make_tactile_source("replay", episode=str(episode), name="middle")
    with pytest.raises(EpisodeError, match="episode directory not found"):
        make_tactile_source("replay", episode=str(tmp_path / "nothing"), name="left")
