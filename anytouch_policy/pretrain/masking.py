"""Tube masking, pixel targets in the tubelet's token order, and the universal-sensor-token schedule.

Every random draw here takes an explicit `torch.Generator`: the trainer seeds one per step from (seed, step, rank),
so a resumed run draws exactly the masks and token replacements the uninterrupted run would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType


@dataclass(frozen=True)
class TubeMask:
    """Which patch tokens the encoder sees. A token is a 3-frame tube, so masking a token masks the whole tube.

    keep    (B, N_keep) long: indices of the visible tokens, in shuffled order (what `forward_tokens(keep=)` takes)
    restore (B, N) long: puts [visible..., masked...] back into token order (MAE's ids_restore)
    mask    (B, N) float: 1 = masked (reconstruction target), 0 = visible
    """

    keep: torch.Tensor
    restore: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> TubeMask:
        return TubeMask(self.keep.to(device), self.restore.to(device), self.mask.to(device))


def visible_count(num_tokens: int, ratio: float) -> int:
    """Tokens left visible at `ratio` (MAE's int(N * (1 - ratio))), at least 1."""
    if not 0 <= ratio < 1:
        raise ConfigError(f"mask ratio must be in [0, 1), got {ratio}")
    return max(1, int(num_tokens * (1 - ratio)))


def mask_from_keep(keep: torch.Tensor, num_tokens: int) -> TubeMask:
    """The TubeMask that keeps exactly `keep` (B, N_keep) visible; tests use it to pick the masked set by hand."""
    batch, n_keep = keep.shape
    rest = torch.ones(batch, num_tokens, dtype=torch.bool, device=keep.device)
    rest.scatter_(1, keep, False)
    masked = rest.nonzero()[:, 1].view(batch, num_tokens - n_keep)
    shuffle = torch.cat([keep, masked], dim=1)
    restore = torch.argsort(shuffle, dim=1)
    return TubeMask(keep=keep, restore=restore, mask=rest.float())


def random_tube_mask(batch: int, num_tokens: int, ratio: float, *, generator: torch.Generator) -> TubeMask:
    """Per-sample random shuffle, keeping the first int(N * (1 - ratio)) tokens (MAE random_masking), on CPU."""
    n_keep = visible_count(num_tokens, ratio)
    noise = torch.rand(batch, num_tokens, generator=generator)
    shuffle = torch.argsort(noise, dim=1)
    restore = torch.argsort(shuffle, dim=1)
    mask = torch.ones(batch, num_tokens)
    mask[:, :n_keep] = 0
    return TubeMask(keep=shuffle[:, :n_keep], restore=restore, mask=torch.gather(mask, 1, restore))


def patchify(frames: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, F, 3, S, S) frames -> (B, N, F, P*P*3) pixel targets.

    Token n = row * (S/P) + col, the order of the tubelet's flattened Conv3d output; inside a patch the values run
    (y, x, rgb), as MAE's patchify, so a head's outputs line up with the official decoder_pred layout.
    """
    if frames.ndim != 5 or frames.shape[2] != 3 or frames.shape[3] != frames.shape[4]:
        raise ConfigError(f"patchify expects (B, F, 3, S, S) frames, got {tuple(frames.shape)}")
    b, f, c, s, _ = frames.shape
    if s % patch:
        raise ConfigError(f"patchify: image side {s} is not a multiple of patch {patch}")
    g = s // patch
    x = frames.reshape(b, f, c, g, patch, g, patch)
    x = x.permute(0, 3, 5, 1, 4, 6, 2)  # (B, row, col, F, y, x, rgb)
    return x.reshape(b, g * g, f, patch * patch * c)


def normalize_patches(target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MAE's norm_pix_loss target: each patch of each frame standardised over its own pixels."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps).sqrt()


def universal_probability(step: int, total_steps: int, p_max: float) -> float:
    """p_u at a 0-based step: rises linearly from 0 (first step) to p_max (last step)."""
    if total_steps < 1 or not 0 <= p_max <= 1:
        raise ConfigError(f"universal schedule needs total_steps >= 1 and p_max in [0, 1], got {total_steps}, {p_max}")
    if total_steps == 1:
        return p_max
    return p_max * min(1.0, max(0.0, step / (total_steps - 1)))


def replace_with_universal(sensor: torch.Tensor, probability: float, *, generator: torch.Generator) -> torch.Tensor:
    """Each sample's sensor slot becomes the universal slot with probability p (independent Bernoulli draws)."""
    draw = torch.rand(sensor.shape[0], generator=generator) < probability
    return torch.where(draw.to(sensor.device), torch.full_like(sensor, int(SensorType.UNIVERSAL)), sensor)
