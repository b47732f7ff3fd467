"""Live embedding of tactile streams: newest windows of the sensors with new frames, batched in one forward pass
of a real (tiny) encoder in a worker thread; frames the busy worker never reached are counted, never queued."""

import threading
import time

import numpy as np
import pytest
import torch

from anytouch_policy.control.stream_encoder import StreamEncoder
from anytouch_policy.errors import ConfigError
from anytouch_policy.model import AnyTouchEncoder, EncoderRuntime
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import StampedFrame

SENSORS = [("left", SensorType.GELSIGHT_MINI), ("right", SensorType.DIGIT)]


@pytest.fixture(scope="module")
def runtime():
    torch.manual_seed(0)
    return EncoderRuntime(AnyTouchEncoder.from_preset("anytouch-tiny"), device="cpu", threads=1)


def _frame(k: int, stamp_ns: int) -> StampedFrame:
    rng = np.random.default_rng(k)
    return StampedFrame(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), stamp_ns)


class Sink:
    def __init__(self) -> None:
        self.batches: list[list] = []
        self.cond = threading.Condition()

    def __call__(self, items) -> None:
        with self.cond:
            self.batches.append(items)
            self.cond.notify_all()

    def wait(self, predicate, timeout_s: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.batches), timeout=timeout_s), self.batches


def test_windows_of_all_sensors_go_through_one_forward_pass(runtime):
    calls = []
    gate = threading.Event()

    def embed(windows, sensors):
        gate.wait(5)
        calls.append(list(sensors))
        return runtime.embed(windows, sensors)

    sink = Sink()
    stream = StreamEncoder(embed, SENSORS, frames=3, stride=1, on_embeddings=sink)
    stream.start()
    try:
        frames = {name: [_frame(10 * i + k, 1_000 + 100 * k + i) for k in range(3)]
                  for i, (name, _) in enumerate(SENSORS)}
        for k in range(3):
            for name, _ in SENSORS:
                stream.push(name, frames[name][k])
        gate.set()
        sink.wait(lambda b: sum(len(x) for x in b) >= 2)
        assert calls[-1] == [SensorType.GELSIGHT_MINI, SensorType.DIGIT] or len(calls) == 2
        items = {e.sensor: e for batch in sink.batches for e in batch}
        for name, _ in SENSORS:  # stamped with the newest frame of its window; same numbers as a direct call
            window = frames[name]
            assert items[name].stamp_ns == window[-1].stamp_ns
            direct = runtime.embed([[f.image for f in window]], [dict(SENSORS)[name]])[0]
            np.testing.assert_allclose(items[name].vector, direct, rtol=1e-5, atol=1e-6)
    finally:
        stream.stop()


def test_a_busy_worker_skips_to_the_newest_window_and_counts_the_rest(runtime):
    slow = threading.Event()

    def embed(windows, sensors):
        if not slow.is_set():
            slow.set()
            time.sleep(0.3)  # the first pass is slow: frames pile up meanwhile
        return runtime.embed(windows, sensors)

    sink = Sink()
    stream = StreamEncoder(embed, SENSORS[:1], frames=3, stride=1, on_embeddings=sink)
    stream.start()
    try:
        for k in range(3):
            stream.push("left", _frame(k, 1_000 + k))
        assert slow.wait(5)
        for k in range(3, 13):  # ten frames while the worker is busy
            stream.push("left", _frame(k, 1_000 + k))
        sink.wait(lambda b: len(b) == 2)
        time.sleep(0.2)
        assert [b[0].stamp_ns for b in sink.batches] == [1_002, 1_012]  # no backlog: straight to the newest
        assert stream.passes == 2 and stream.rate_hz > 0
        c = stream.counts()["left"]
        assert (c.frames, c.embedded, c.skipped) == (13, 2, 9)
        assert stream.push("left", _frame(99, 1_005)) is False and stream.counts()["left"].out_of_order == 1
    finally:
        stream.stop()


def test_static_policy_embeds_the_newest_frame_repeated(runtime):
    sink = Sink()
    stream = StreamEncoder(runtime.embed, SENSORS[1:], frames=1, on_embeddings=sink)
    stream.start()
    try:
        frame = _frame(5, 77)
        stream.push("right", frame)  # one frame is a complete static window
        sink.wait(lambda b: len(b) == 1)
        expected = runtime.embed([[frame.image] * 3], [SensorType.DIGIT])[0]
        np.testing.assert_allclose(sink.batches[0][0].vector, expected, rtol=1e-5, atol=1e-6)
    finally:
        stream.stop()
    with pytest.raises(ConfigError, match="frames must be 1 .static. or 3"):
        StreamEncoder(runtime.embed, SENSORS, frames=2, on_embeddings=sink)
    with pytest.raises(ConfigError, match="distinct sensor names"):
        StreamEncoder(runtime.embed, [SENSORS[0], SENSORS[0]], on_embeddings=sink)
