"""A trained pouring policy at run time: the head and the encoder of a policy bundle, one decision per call.

    runtime = PolicyRuntime.from_bundle("models/pour-ft")
    runtime.decide_embeddings({"left": e}, initial_g=100, target_g=60)     # the ROS policy node, at 5 Hz
    runtime.decide_windows({"left": [f0, f1, f2]}, initial_g=100, target_g=60)   # the sim evaluation
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from anytouch_policy.actions import Action
from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model.runtime import EncoderRuntime, Precision
from anytouch_policy.policy.bundle import load_policy_head
from anytouch_policy.policy.config import PolicyConfig, ReferenceMode
from anytouch_policy.policy.head import Decision, PolicyHead, conditioning_vector
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import WINDOW_FRAMES, static_window, window_indices
from anytouch_policy.threads import set_torch_threads


class PolicyRuntime:
    """A trained pouring policy loaded from a policy bundle: head + the encoder it was trained with.

    A policy with reference mode "episode_start" keeps the embeddings of its first decision after construction or
    `reset()` as the episode reference: call `reset()` whenever a new pour starts (a new grasp of the cylinder).
    A policy whose config sets `retract_latch` (heads trained on the ticks up to the expert's decision only,
    train.data) keeps retracting once it decides RETRACT, until `reset()`, as the expert it learnt from does; the
    others decide every tick afresh.
    """

    def __init__(self, path: Path, *, config: PolicyConfig, head: PolicyHead, device: str = "auto",
                 precision: Precision | str = Precision.FLOAT32) -> None:
        self.path = Path(path)
        self.config = config
        self.head = head.eval()
        self.sensors: list[tuple[str, SensorType]] = [(s.name, s.type) for s in config.sensors]
        self.frames: int = config.frames
        self.stride: int = config.stride
        self.token_mode = config.token_mode
        self.variant: dict = dict(config.variant)
        self.conditioning: tuple[str, ...] = config.conditioning
        self.reference_mode = config.reference
        self.encoder_fingerprint: str = config.encoder.fingerprint
        self.embed_dim: int = head.config.embed_dim
        self._device, self._precision = device, precision
        self._encoder: EncoderRuntime | None = None
        self._reference: dict[str, np.ndarray] | None = None
        self._retracting = False

    @classmethod
    def from_bundle(cls, path: Path | str, *, device: str = "auto", precision: Precision | str = "float32",
                    threads: int | None = None) -> PolicyRuntime:
        """Load a policy bundle folder (the encoder itself loads on the first decide_windows or encoder_runtime)."""
        config, head = load_policy_head(path)
        set_torch_threads(threads)  # for the head now, and the encoder that loads later
        return cls(Path(path), config=config, head=head, device=device, precision=precision)

    def loader(self) -> Callable[[], PolicyRuntime]:
        """A picklable call that loads this bundle again, on this runtime's device and precision: how an evaluation
        worker process gets its own copy."""
        return partial(PolicyRuntime.from_bundle, self.path, device=self._device, precision=self._precision)

    @property
    def sensor_names(self) -> list[str]:
        return [name for name, _ in self.sensors]

    @property
    def reference(self) -> dict[str, np.ndarray] | None:
        """The episode reference embeddings kept so far (None before the first decision of a pour)."""
        return self._reference

    @property
    def retracting(self) -> bool:
        """Whether this pour has latched RETRACT (every later decision is RETRACT until reset(); only with the
        config's retract_latch)."""
        return self._retracting

    def reset(self) -> None:
        """A new pour starts: the next decision's embeddings become the episode reference, and it may pour again."""
        self._reference = None
        self._retracting = False

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

        `reference` overrides the kept episode reference (first embeddings after reset()) for this call, which then
        stands alone: it neither reads nor sets the pour's RETRACT latch. `probs` are always the head's.
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
            out = self.head(torch.from_numpy(emb)[None], None if ref is None else torch.from_numpy(ref)[None],
                            torch.from_numpy(cond)[None])
            probs = torch.softmax(self.head.decision_logits(out)[0].float(), dim=0).numpy()
            remaining = self.head.remaining_g(out)
        if not np.isfinite(probs).all():  # argmax of NaN is 0: it would pour
            raise ConfigError(f"decide_embeddings: the head gave non-finite probabilities {probs}: no decision")
        action = Action(int(probs.argmax()))
        if reference is None and self.config.retract_latch:
            self._retracting = self._retracting or action is Action.RETRACT
            action = Action.RETRACT if self._retracting else action
        return Decision(action=action, probs=probs,
                        remaining_g=None if remaining is None else max(0.0, float(remaining[0])))

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
