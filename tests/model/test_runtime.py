"""The inference runtime: batching equals single calls, token modes, precision and input checks."""

import numpy as np
import pytest
import torch

from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.model import AnyTouchEncoder, EncoderRuntime, save_encoder_bundle
from anytouch_policy.model.runtime import resolve_device
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import static_window


@pytest.fixture
def bundle_dir(tmp_path):
    torch.manual_seed(0)
    save_encoder_bundle(tmp_path, AnyTouchEncoder.from_preset("anytouch-tiny"), trained_slots=(1, 3, 9))
    return tmp_path


def frames(seed, shape=(240, 320, 3)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3)]


def test_batch_equals_single_calls(bundle_dir):
    before = torch.get_num_threads()
    rt = EncoderRuntime.from_bundle(bundle_dir, device="cpu", threads=1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)
    rt.warmup([1, 2])
    a, b = frames(0), frames(1, (320, 240, 3))  # GelSight Mini and DIGIT native layouts
    both = rt.embed([a, b], [SensorType.GELSIGHT_MINI, "digit"])
    assert both.shape == (2, rt.output_dim) == (2, 32) and both.dtype == np.float32
    single_a = rt.embed([a], [SensorType.GELSIGHT_MINI])
    single_b = rt.embed([b], [1])
    assert np.abs(both - np.concatenate([single_a, single_b])).max() < 1e-5
    assert rt.embed([], []).shape == (0, 32)
    assert rt.fingerprint is not None and len(rt.fingerprint) == 16


def test_token_modes(bundle_dir):
    specific = EncoderRuntime.from_bundle(bundle_dir, device="cpu")
    universal = EncoderRuntime.from_bundle(bundle_dir, device="cpu", token_mode="universal")
    w = frames(2)
    assert specific.slot_for("gelsight_mini") == 3 and universal.slot_for("gelsight_mini") == 9
    assert np.abs(specific.embed([w], ["gelsight_mini"]) - universal.embed([w], ["gelsight_mini"])).max() > 1e-4
    # universal mode serves a sensor whose token this model never trained; specific mode refuses it
    assert universal.embed([w], ["gelsight"]).shape == (1, 32)
    with pytest.raises(ConfigError, match=r"'gelsight' \(token slot 0\) has no trained token.*'universal'"):
        specific.embed([w], ["gelsight"])
    assert np.allclose(specific.embed([w], ["universal"]), universal.embed([w], ["digit"]))


def test_bfloat16_close_to_float32(bundle_dir):
    w = [frames(4), static_window(frames(5)[0])]
    fp32 = EncoderRuntime.from_bundle(bundle_dir, device="cpu").embed(w, ["digit", "digit"])
    bf16 = EncoderRuntime.from_bundle(bundle_dir, device="cpu", precision="bfloat16").embed(w, ["digit", "digit"])
    assert bf16.dtype == np.float32
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.99


@pytest.mark.parametrize("count", [1, 2, 4])
def test_wrong_frame_count(bundle_dir, count):
    rt = EncoderRuntime.from_bundle(bundle_dir, device="cpu")
    with pytest.raises(ConfigError, match=f"window 0 has {count} frames; the encoder takes exactly 3"):
        rt.embed([frames(0)[:1] * count], ["digit"])


def test_bad_sensors_and_lengths(bundle_dir):
    rt = EncoderRuntime.from_bundle(bundle_dir, device="cpu")
    with pytest.raises(ConfigError, match="unknown sensor name 'tacto'"):
        rt.embed([frames(0)], ["tacto"])
    with pytest.raises(ConfigError, match="unknown sensor 7"):
        rt.embed([frames(0)], [7])
    with pytest.raises(ConfigError, match="2 windows but 1 sensors"):
        rt.embed([frames(0), frames(1)], ["digit"])
    with pytest.raises(ConfigError, match="H x W x 3 uint8"):
        rt.embed([[f.astype(np.float32) for f in frames(0)]], ["digit"])


def test_device_and_precision_choices(bundle_dir):
    with pytest.raises(ConfigError, match="float16' needs a cuda device"):
        EncoderRuntime.from_bundle(bundle_dir, device="cpu", precision="float16")
    with pytest.raises(ConfigError, match=r"precision must be one of \['float32', 'bfloat16', 'float16'\]"):
        EncoderRuntime.from_bundle(bundle_dir, device="cpu", precision="float64")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("tpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_cuda_matches_cpu(bundle_dir, precision):
    w = [frames(6), frames(7)]
    sensors = ["digit", "gelsight_mini"]
    cpu = EncoderRuntime.from_bundle(bundle_dir, device="cpu").embed(w, sensors)
    gpu = EncoderRuntime.from_bundle(bundle_dir, device="cuda", precision=precision).embed(w, sensors)
    cos = (cpu * gpu).sum(1) / np.linalg.norm(cpu, axis=1) / np.linalg.norm(gpu, axis=1)
    assert cos.min() > 0.99


def test_input_buffers_are_reused_and_bounded(bundle_dir):
    rt = EncoderRuntime.from_bundle(bundle_dir, device="cpu")
    w = frames(8)
    first = rt.embed([w], ["digit"])
    buffer = rt._buffer(1)[1]
    assert np.array_equal(rt.embed([w], ["digit"]), first) and rt._buffer(1)[1] is buffer  # no new allocation
    for batch in range(2, 8):
        rt.embed([w] * batch, ["digit"] * batch)
    assert len(rt._buffers) <= 4
