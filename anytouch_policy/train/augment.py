"""Augmentation that keeps dynamics intact, and the uint8 -> model-input conversion.

Every frame of a window, and the episode's reference window, gets the same transform: a per-episode draw of
brightness, contrast and per-LED (RGB) gain, the nuisances that differ between sensor units and exposures but not
between consecutive frames. Differences between frames, which carry the flow, are therefore only scaled, never
invented. Flips: a horizontal mirror is the view of the sensor on the other finger pad (the right pad sees the
contact mirrored), so it is a physical view and optional (`hflip`); a vertical flip would make the weight pull up and
is never applied; nor is time reversal, which would turn pouring into un-pouring.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from anytouch_policy.bounds import DROPOUT, PROBABILITY
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import config
from anytouch_policy.tactile import IMAGENET_MEAN, IMAGENET_STD

_MEAN = torch.from_numpy(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.from_numpy(IMAGENET_STD).view(3, 1, 1)


@config
class Augment:
    """Ranges of the per-episode photometric draw (uniform, +/- fractions) and the mirror probability."""

    brightness: Annotated[float, DROPOUT] = 0.1
    contrast: Annotated[float, DROPOUT] = 0.1
    channel_gain: Annotated[float, DROPOUT] = 0.05
    hflip: Annotated[float, PROBABILITY] = Field(
        default=0.0, description="finetune: probability of the mirror view (the other finger's)")

    def draw(self, groups: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Per group: an RGB gain (groups, 3) folding brightness in, a contrast (groups,) and a flip flag."""
        bright = rng.uniform(1 - self.brightness, 1 + self.brightness, (groups, 1))
        gain = bright * rng.uniform(1 - self.channel_gain, 1 + self.channel_gain, (groups, 3))
        contrast = rng.uniform(1 - self.contrast, 1 + self.contrast, groups)
        flip = rng.random(groups) < self.hflip
        params = np.concatenate([gain, contrast[:, None]], axis=1)
        return torch.from_numpy(params.astype(np.float32)), torch.from_numpy(flip)


def to_input(windows: np.ndarray | torch.Tensor, *, groups: np.ndarray | None = None,
             augment: Augment | None = None, rng: np.random.Generator | None = None) -> torch.Tensor:
    """uint8 windows (..., T, S, S, 3) -> float32 (..., T, 3, S, S), ImageNet-normalised.

    With `augment`, `groups` (one id per leading item) says which items share a draw (an episode: its windows and
    its reference); `rng` makes the draws reproducible.
    """
    x = torch.as_tensor(windows)
    if x.dtype != torch.uint8 or x.shape[-1] != 3:
        raise ConfigError(f"windows must be uint8 (..., S, S, 3), got {x.dtype} {tuple(x.shape)}")
    x = x.movedim(-1, -3).float().div_(255.0)
    if augment is not None:
        if groups is None or rng is None or len(groups) != x.shape[0]:
            raise ConfigError("augmentation needs one group id per window batch item and a random generator")
        ids, inverse = np.unique(groups, return_inverse=True)
        params, flip = augment.draw(len(ids), rng)
        inv = torch.from_numpy(inverse.reshape(-1))
        shape = (x.shape[0],) + (1,) * (x.ndim - 4) + (3, 1, 1)
        gain = params[inv, :3].view(shape)
        contrast = params[inv, 3].view((x.shape[0],) + (1,) * (x.ndim - 1))
        x = ((x * gain - 0.5) * contrast + 0.5).clamp_(0.0, 1.0)
        mirrored = flip[inv]
        if bool(mirrored.any()):
            x[mirrored] = x[mirrored].flip(-1)
    return (x - _MEAN) / _STD
