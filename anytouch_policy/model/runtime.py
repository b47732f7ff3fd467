"""Inference runtime shared by the ROS encoder node, the policy and the sim evaluation.

`EncoderRuntime.embed(windows, sensors)` takes raw RGB uint8 frames (any size; resized without crop), stacks every
window into one preallocated input batch, runs one forward pass under inference mode and returns float32 numpy
embeddings. For a live 5 Hz loop: build it once (torch threads are set there, once), call `warmup()` before the
first tick, then call `embed()` from one worker thread (a lock serialises concurrent calls; buffers are reused).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.model.bundle import RELEASED_TRAINED_SLOTS, load_encoder_bundle
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import preprocess_window, read_rgb, static_window
from anytouch_policy.threads import set_torch_threads

E = TypeVar("E", bound=StrEnum)

#: Input buffers kept, one per batch size seen most recently.
_MAX_BUFFERS = 4


class TokenMode(StrEnum):
    """Which sensor token a window gets."""

    SPECIFIC = "specific"  # the token of the window's sensor type (must be a slot the model trained)
    UNIVERSAL = "universal"  # slot 9 for every sensor (the official index -1), e.g. for an unseen sensor


class Precision(StrEnum):
    """Compute dtype of the encoder weights and activations."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"  # cuda only

    @property
    def torch_dtype(self) -> torch.dtype:
        return {Precision.FLOAT32: torch.float32, Precision.BFLOAT16: torch.bfloat16,
                Precision.FLOAT16: torch.float16}[self]


def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" (cuda when available, else cpu), "cpu", "cuda" or "cuda:N"; DeviceError when cuda is absent."""
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but torch sees no CUDA device")
    return device


def _choice(enum: type[E], value: object, name: str) -> E:
    try:
        return enum(value)
    except ValueError:
        raise ConfigError(f"{name} must be one of {[e.value for e in enum]}, got {value!r}") from None


def parse_sensor(sensor: SensorType | str | int) -> SensorType:
    """A SensorType from itself, its name or its slot number; ConfigError lists the valid ones."""
    if isinstance(sensor, SensorType):
        return sensor
    if isinstance(sensor, str):
        return SensorType.from_name(sensor)
    try:
        return SensorType(sensor)
    except ValueError:
        valid = ", ".join(f"{s.label}={int(s)}" for s in SensorType)
        raise ConfigError(f"unknown sensor {sensor!r}; valid sensors: {valid}") from None


def stack_windows(windows: Sequence[Sequence[np.ndarray]], *, frames: int, size: int,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Windows of RGB uint8 frames -> float32 (B, frames, 3, size, size), ImageNet-normalised, into `out` if given."""
    batch = out if out is not None else np.empty((len(windows), frames, 3, size, size), dtype=np.float32)
    for i, window in enumerate(windows):
        if len(window) != frames:
            raise ConfigError(f"window {i} has {len(window)} frames; the encoder takes exactly {frames} "
                              f"(repeat a static image {frames} times with tactile.static_window)")
        batch[i] = preprocess_window(window, size)
    return batch


class EncoderRuntime:
    """An encoder ready for batched inference on numpy windows.

    The runtime moves `encoder` to its device and dtype in place and puts it in eval mode (no copy of a 1.2 GB
    model); gradients are never recorded (inference mode), whatever the parameters' requires_grad says.
    """

    def __init__(self, encoder: AnyTouchEncoder, *, device: str | torch.device = "auto",
                 precision: Precision | str = Precision.FLOAT32, token_mode: TokenMode | str = TokenMode.SPECIFIC,
                 trained_slots: Sequence[int] = RELEASED_TRAINED_SLOTS, threads: int | None = None,
                 fingerprint: str | None = None) -> None:
        self.device = resolve_device(device)
        self.precision = _choice(Precision, precision, "precision")
        self.token_mode = _choice(TokenMode, token_mode, "token_mode")
        if self.precision is Precision.FLOAT16 and self.device.type != "cuda":
            raise ConfigError("precision 'float16' needs a cuda device; use 'bfloat16' or 'float32' on cpu")
        set_torch_threads(threads)
        self.encoder = encoder.to(device=self.device, dtype=self.precision.torch_dtype).eval()
        self.trained_slots = tuple(trained_slots)
        self.fingerprint = fingerprint
        self._buffers: dict[int, tuple[np.ndarray, torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_bundle(cls, path: Path | str, *, device: str | torch.device = "auto",
                    precision: Precision | str = Precision.FLOAT32, token_mode: TokenMode | str = TokenMode.SPECIFIC,
                    threads: int | None = None, verify: bool = True) -> EncoderRuntime:
        """Load a bundle folder (safetensors) and wrap it."""
        bundle = load_encoder_bundle(path, verify=verify)
        return cls(bundle.encoder, device=device, precision=precision, token_mode=token_mode,
                   trained_slots=bundle.trained_slots, threads=threads, fingerprint=bundle.fingerprint)

    @property
    def image_size(self) -> int:
        return self.encoder.config.image_size

    @property
    def frames(self) -> int:
        return self.encoder.config.frames

    @property
    def output_dim(self) -> int:
        return self.encoder.config.output_dim

    def slot_for(self, sensor: SensorType | str | int) -> int:
        """Token slot a window of `sensor` gets in this runtime's token mode.

        Specific mode refuses a sensor whose slot this model never trained (an error, not a warning: an untrained
        token gives plausible-looking but meaningless embeddings); use universal mode for such sensors.
        """
        sensor = parse_sensor(sensor)
        if self.token_mode is TokenMode.UNIVERSAL:
            return int(SensorType.UNIVERSAL)
        if int(sensor) not in self.trained_slots:
            raise ConfigError(f"sensor {sensor.label!r} (token slot {int(sensor)}) has no trained token in this model "
                              f"(trained slots {list(self.trained_slots)}); use token mode 'universal'")
        return int(sensor)

    def _buffer(self, batch: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        if batch not in self._buffers:
            if len(self._buffers) >= _MAX_BUFFERS:  # a live loop uses 1-2 batch sizes; bound odd callers' memory
                del self._buffers[next(iter(self._buffers))]
            shape = (batch, self.frames, 3, self.image_size, self.image_size)
            host = torch.empty(shape, dtype=torch.float32, pin_memory=self.device.type == "cuda")
            dev = host if self.device.type == "cpu" else torch.empty(shape, dtype=torch.float32, device=self.device)
            self._buffers[batch] = (host.numpy(), host, dev)
        return self._buffers[batch]

    def embed(self, windows: Sequence[Sequence[np.ndarray]],
              sensors: Sequence[SensorType | str | int]) -> np.ndarray:
        """Windows (each `frames` RGB uint8 H x W x 3 frames, oldest first) + their sensors -> (B, output_dim)."""
        if len(windows) != len(sensors):
            raise ConfigError(f"embed got {len(windows)} windows but {len(sensors)} sensors")
        if not windows:
            return np.empty((0, self.output_dim), dtype=np.float32)
        return self._forward(windows, [self.slot_for(s) for s in sensors])

    def _forward(self, windows: Sequence[Sequence[np.ndarray]], slots: list[int]) -> np.ndarray:
        sensor = torch.tensor(slots, dtype=torch.long, device=self.device)
        with self._lock:
            array, host, dev = self._buffer(len(windows))
            stack_windows(windows, frames=self.frames, size=self.image_size, out=array)
            if dev is not host:
                dev.copy_(host, non_blocking=True)
            with torch.inference_mode():
                out = self.encoder(dev, sensor)
            return out.float().cpu().numpy()

    def warmup(self, batch_sizes: Sequence[int] = (1,)) -> None:
        """Run a dummy window per batch size so the first live tick does not pay for allocation and kernel setup."""
        frame = np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
        for batch in batch_sizes:
            self._forward([[frame] * self.frames] * batch, [int(SensorType.UNIVERSAL)] * batch)


def embed_image_files(model: Path | str, frames: Sequence[Path | str], *, sensor: SensorType | str,
                      universal: bool = False, device: str = "auto",
                      precision: Precision | str = Precision.FLOAT32) -> dict[str, object]:
    """Embed 1 image file (a static clip) or `frames` image files (a window, oldest first); JSON-ready result."""
    sensor = parse_sensor(sensor)
    images = [read_rgb(f) for f in frames]
    if len({im.shape for im in images}) > 1:  # one sensor's frames share a size; mixed ones are a wrong file
        sizes = ", ".join(f"{f}: {im.shape[1]}x{im.shape[0]}" for f, im in zip(frames, images, strict=True))
        raise ConfigError(f"the frames of one window must come from one sensor and have one size; got {sizes}")
    runtime = EncoderRuntime.from_bundle(model, device=device, precision=precision,
                                         token_mode=TokenMode.UNIVERSAL if universal else TokenMode.SPECIFIC)
    if len(frames) not in (1, runtime.frames):
        raise ConfigError(f"embed takes 1 image (static) or {runtime.frames} images (a window), got {len(frames)}")
    window = static_window(images[0], runtime.frames) if len(images) == 1 else images
    embedding = runtime.embed([window], [sensor])[0]
    return {
        "embedding": [float(v) for v in embedding],
        "dim": int(embedding.shape[0]),
        "sensor": sensor.label,
        "slot": runtime.slot_for(sensor),
        "token_mode": runtime.token_mode.value,
        "frames": len(frames),
        "static": len(frames) == 1,
        "input_size": runtime.image_size,
        "source_sizes": [list(im.shape[:2]) for im in images],
        "model": str(model),
        "fingerprint": runtime.fingerprint,
        "device": str(runtime.device),
        "precision": runtime.precision.value,
    }
