"""The pouring policy: an MLP head over AnyTouch embeddings, and the runtime the ROS nodes and the sim evaluation use.

Shape contract (K sensors, D = encoder output_dim, C conditioning values):

    per sensor a window (3 frames, or 1 repeated 3x) ──encoder──> e (D,)          EncoderRuntime.embed
    episode reference r (D,): the embedding of the first decision of the pour     (reference mode "episode_start")
    head input: BatchNorm([e_1, e_1 - r_1, ..., e_K, e_K - r_K]) ++ conditioning / 100 g   (K*D*2 + C)
      -> Linear -> GELU -> Dropout (x layers) -> Linear -> logits (3,) in Action order POUR, WAIT, RETRACT

Why a reference: the grip carries the cylinder (86-94 g, not known to the gram) plus the beads, so one window tells
the load only to a few grams. The change since the start of the pour cancels the cylinder and the grip: the same
thing a person does by feeling the weight before pouring. Conditioning is the initial and target mass in grams,
scaled by a fixed 100 g (not by training statistics: a run that saw one pair only would divide by zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anytouch_policy.actions import Action
from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model.runtime import EncoderRuntime, Precision, TokenMode
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import WINDOW_FRAMES, static_window, window_indices

#: Conditioning values a head may take, in this order; grams divided by CONDITIONING_SCALE_G.
CONDITIONING_NAMES: tuple[str, ...] = ("initial_g", "target_g")
CONDITIONING_SCALE_G = 100.0


class ReferenceMode(StrEnum):
    """What the head compares the current window with."""

    EPISODE_START = "episode_start"  # the first embedding of the pour (kept by the runtime until reset())
    NONE = "none"  # the current window only


@dataclass(frozen=True)
class HeadConfig:
    """Numbers that define a PolicyHead."""

    sensors: int  # K
    embed_dim: int  # D (encoder output_dim)
    reference: bool  # head also takes e - r per sensor
    conditioning: int  # C
    hidden: int = 256
    layers: int = 2  # hidden layers
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("sensors", "embed_dim", "hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"HeadConfig.{name} must be a positive integer, got {value!r}")
        if not 0 <= self.conditioning <= len(CONDITIONING_NAMES):
            raise ConfigError(f"HeadConfig.conditioning must be in 0..{len(CONDITIONING_NAMES)}, "
                              f"got {self.conditioning}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"HeadConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def feature_dim(self) -> int:
        return self.sensors * self.embed_dim * (2 if self.reference else 1)

    def to_dict(self) -> dict:
        return asdict(self)


class PolicyHead(nn.Module):
    """Embeddings (+ episode reference) + conditioning -> action logits."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.norm = nn.BatchNorm1d(config.feature_dim, affine=False)  # running stats keep the magnitude of e - r
        layers: list[nn.Module] = []
        width = config.feature_dim + config.conditioning
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden
        layers.append(nn.Linear(width, len(Action)))
        self.mlp = nn.Sequential(*layers)
        # Added to the logits when deciding: -log(class weight) undoes the shift a class-weighted loss puts into the
        # logits (logit adjustment), so the decision follows the demonstrations' own class balance.
        self.register_buffer("logit_adjust", torch.zeros(len(Action)))

    def features(self, emb: torch.Tensor, ref: torch.Tensor | None) -> torch.Tensor:
        """(B, K, D) embeddings and (B, K, D) references -> (B, feature_dim) before normalisation."""
        c = self.config
        if emb.ndim != 3 or tuple(emb.shape[1:]) != (c.sensors, c.embed_dim):
            raise ConfigError(f"policy head takes embeddings (B, {c.sensors}, {c.embed_dim}), got {tuple(emb.shape)}")
        if not c.reference:
            return emb.flatten(1)
        if ref is None or ref.shape != emb.shape:
            raise ConfigError(f"policy head needs reference embeddings of shape {tuple(emb.shape)}")
        return torch.stack([emb, emb - ref], dim=2).flatten(1)

    def forward(self, emb: torch.Tensor, ref: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        """(B, K, D), (B, K, D) or None, (B, C) grams already scaled -> (B, 3) logits as trained."""
        x = self.norm(self.features(emb, ref))
        if self.config.conditioning:
            x = torch.cat([x, cond.to(x.dtype)], dim=1)
        return self.mlp(x)

    def decision_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Trained logits -> the logits a decision takes the argmax / softmax of."""
        return logits + self.logit_adjust.to(logits.dtype)


def conditioning_vector(names: Sequence[str], *, initial_g: float, target_g: float) -> np.ndarray:
    """The head's conditioning input for one decision: the named grams / CONDITIONING_SCALE_G."""
    if not 0.0 < target_g < initial_g:
        raise ConfigError(f"need 0 < target_g < initial_g, got initial_g={initial_g}, target_g={target_g}")
    values = {"initial_g": initial_g, "target_g": target_g}
    return np.asarray([values[n] / CONDITIONING_SCALE_G for n in names], np.float32)


@dataclass(frozen=True)
class Decision:
    action: Action
    probs: np.ndarray  # (3,) softmax over Action order POUR, WAIT, RETRACT


class PolicyRuntime:
    """A trained pouring policy loaded from a policy bundle: head + the encoder it was trained with.

    A policy with reference mode "episode_start" keeps the embeddings of its first decision after construction or
    `reset()` as the episode reference: call `reset()` whenever a new pour starts (a new grasp of the cylinder).
    """

    def __init__(self, path: Path, *, config: dict, head: PolicyHead, device: str = "auto",
                 precision: Precision | str = Precision.FLOAT32, threads: int | None = None) -> None:
        self.path = Path(path)
        self.config = config
        self.head = head.eval()
        self.sensors: list[tuple[str, SensorType]] = [(s["name"], SensorType.from_name(s["type"]))
                                                      for s in config["sensors"]]
        self.frames: int = config["frames"]
        self.stride: int = config["stride"]
        self.token_mode = TokenMode(config["token_mode"])
        self.variant: dict = dict(config["variant"])
        self.conditioning: tuple[str, ...] = tuple(config["conditioning"])
        self.reference_mode = ReferenceMode(config["reference"])
        self.encoder_fingerprint: str = config["encoder"]["fingerprint"]
        self.embed_dim: int = head.config.embed_dim
        self._device, self._precision, self._threads = device, precision, threads
        self._encoder: EncoderRuntime | None = None
        self._reference: dict[str, np.ndarray] | None = None

    @classmethod
    def from_bundle(cls, path: Path | str, *, device: str = "auto", precision: Precision | str = "float32",
                    threads: int | None = None) -> PolicyRuntime:
        """Load a policy bundle folder (the encoder itself loads on the first decide_windows or encoder_runtime)."""
        from anytouch_policy.policy_bundle import load_policy_head  # the bundle module builds on this one

        config, head = load_policy_head(path)
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        return cls(Path(path), config=config, head=head, device=device, precision=precision, threads=threads)

    @property
    def sensor_names(self) -> list[str]:
        return [name for name, _ in self.sensors]

    @property
    def reference(self) -> dict[str, np.ndarray] | None:
        """The episode reference embeddings kept so far (None before the first decision of a pour)."""
        return self._reference

    def reset(self) -> None:
        """A new pour starts: the next decision's embeddings become the episode reference."""
        self._reference = None

    def encoder_runtime(self, *, device: str = "auto", precision: Precision | str = "float32",
                        threads: int | None = None) -> EncoderRuntime:
        """The EncoderRuntime of exactly the encoder this policy was trained with, in this policy's token mode."""
        runtime = EncoderRuntime.from_bundle(self.path / "encoder", device=device, precision=precision,
                                             token_mode=self.token_mode, threads=threads)
        if runtime.fingerprint != self.encoder_fingerprint:
            raise BundleError(f"{self.path / 'encoder'}: encoder fingerprint {runtime.fingerprint} differs from the "
                              f"policy's {self.encoder_fingerprint} (config.json field 'encoder')")
        return runtime

    def window_indices(self, stamps_ns: Sequence[int], t_ns: int) -> list[int] | None:
        """tactile.window_indices with this policy's frames/stride (static: the single newest frame)."""
        return window_indices(stamps_ns, t_ns, frames=self.frames, stride=self.stride)

    def _stack(self, embeddings: Mapping[str, np.ndarray], what: str) -> np.ndarray:
        rows = []
        for name, _ in self.sensors:
            if name not in embeddings:
                raise ConfigError(f"{what}: no embedding for sensor {name!r} (policy sensors {self.sensor_names}, "
                                  f"got {sorted(embeddings)})")
            e = np.asarray(embeddings[name], dtype=np.float32).reshape(-1)
            if e.shape[0] != self.embed_dim:
                raise ConfigError(f"{what}: embedding of sensor {name!r} has dimension {e.shape[0]}, "
                                  f"the policy takes {self.embed_dim}")
            if not np.isfinite(e).all():
                raise ConfigError(f"{what}: embedding of sensor {name!r} has non-finite values")
            rows.append(e)
        return np.stack(rows)

    def decide_embeddings(self, embeddings: Mapping[str, np.ndarray], *, initial_g: float, target_g: float,
                          reference: Mapping[str, np.ndarray] | None = None) -> Decision:
        """Head only: one embedding (D,) per sensor name in self.sensors (what the ROS policy node calls at 5 Hz).

        `reference` overrides the kept episode reference (first embeddings after reset()) for this call.
        """
        emb = self._stack(embeddings, "decide_embeddings")
        ref = None
        if self.reference_mode is ReferenceMode.EPISODE_START:
            if reference is not None:
                ref = self._stack(reference, "decide_embeddings reference")
            else:
                if self._reference is None:
                    self._reference = {name: row.copy() for (name, _), row in zip(self.sensors, emb, strict=True)}
                ref = np.stack([self._reference[name] for name, _ in self.sensors])
        cond = conditioning_vector(self.conditioning, initial_g=initial_g, target_g=target_g)
        with torch.inference_mode():
            logits = self.head(torch.from_numpy(emb)[None], None if ref is None else torch.from_numpy(ref)[None],
                               torch.from_numpy(cond)[None])
            logits = self.head.decision_logits(logits)[0]
            probs = torch.softmax(logits.float(), dim=0).numpy()
        if not np.isfinite(probs).all():  # argmax of NaN is 0: it would pour
            raise ConfigError(f"decide_embeddings: the head gave non-finite probabilities {probs}: no decision")
        return Decision(action=Action(int(probs.argmax())), probs=probs)

    def _encoder_runtime(self) -> EncoderRuntime:
        if self._encoder is None:
            self._encoder = self.encoder_runtime(device=self._device, precision=self._precision)
        return self._encoder

    def _windows(self, windows: Mapping[str, Sequence[np.ndarray]], what: str) -> list[list[np.ndarray]]:
        out = []
        for name, _ in self.sensors:
            if name not in windows:
                raise ConfigError(f"{what}: no window for sensor {name!r} (policy sensors {self.sensor_names})")
            frames = list(windows[name])
            if len(frames) != self.frames:
                raise ConfigError(f"{what}: sensor {name!r} window has {len(frames)} frames, this policy takes "
                                  f"{self.frames}")
            out.append(static_window(frames[0], WINDOW_FRAMES) if self.frames == 1 else frames)
        return out

    def embed_windows(self, windows: Mapping[str, Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
        """Per sensor, the embedding of its window (`frames` RGB uint8 frames, oldest first) with this encoder."""
        clips = self._windows(windows, "embed_windows")
        emb = self._encoder_runtime().embed(clips, [kind for _, kind in self.sensors])
        return {name: emb[k] for k, (name, _) in enumerate(self.sensors)}

    def decide_windows(self, windows: Mapping[str, Sequence[np.ndarray]], *, initial_g: float, target_g: float,
                       reference_windows: Mapping[str, Sequence[np.ndarray]] | None = None) -> Decision:
        """Encoder + head on raw RGB uint8 frames per sensor (the sim evaluation and `anytouch eval`)."""
        reference = None if reference_windows is None else self.embed_windows(reference_windows)
        return self.decide_embeddings(self.embed_windows(windows), initial_g=initial_g, target_g=target_g,
                                      reference=reference)
