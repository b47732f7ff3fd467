"""Image pipelines of the training loaders (reference doc section 5), with every random draw from a given generator.

Touch: resize to S x S (no crop), then in training RandomHorizontalFlip(0.5), RandomVerticalFlip(0.5) and
ColorJitter(0.4, 0.4, 0.5, 0.3) drawn ONCE per clip and applied to all its frames (the official loaders transform
the stacked (T, C, H, W) tensor), then ImageNet mean/std.
Vision (stage 2): shorter side to the CLIP size (bicubic), centre crop, in training RandomRotation(+-20 deg) and a
horizontal flip, then CLIP mean/std.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from anytouch_policy.tactile import IMAGENET_MEAN, IMAGENET_STD, resize_rgb


@dataclass(frozen=True)
class Jitter:
    """ColorJitter ranges (torchvision semantics: factors in [1 - x, 1 + x], hue shift in [-h, h])."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.5
    hue: float = 0.3


OFFICIAL_JITTER = Jitter()
VISION_ROTATION_DEG = 20.0


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(torch.empty(1).uniform_(low, high, generator=generator))


def touch_tensor(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """RGB uint8 frames -> (F, 3, size, size) float in [0, 1], resized without crop."""
    stack = np.stack([resize_rgb(im, size) for im in images])
    return torch.from_numpy(stack).permute(0, 3, 1, 2).float().div_(255.0)


def augment_touch(frames: torch.Tensor, generator: torch.Generator,
                  jitter: Jitter | None = OFFICIAL_JITTER) -> torch.Tensor:
    """Flips and colour jitter (None: flips only) with one draw for the whole clip (F, 3, S, S) in [0, 1]."""
    if float(torch.rand(1, generator=generator)) < 0.5:
        frames = TF.horizontal_flip(frames)
    if float(torch.rand(1, generator=generator)) < 0.5:
        frames = TF.vertical_flip(frames)
    if jitter is None:
        return frames
    order = torch.randperm(4, generator=generator).tolist()
    factors = [
        _uniform(generator, max(0.0, 1 - jitter.brightness), 1 + jitter.brightness),
        _uniform(generator, max(0.0, 1 - jitter.contrast), 1 + jitter.contrast),
        _uniform(generator, max(0.0, 1 - jitter.saturation), 1 + jitter.saturation),
        _uniform(generator, -jitter.hue, jitter.hue),
    ]
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in order:
        frames = ops[i](frames, factors[i])
    return frames.clamp_(0.0, 1.0)


def normalize_touch(frames: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std over the RGB axis of (F, 3, S, S)."""
    mean = torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)
    return (frames - mean) / std


def vision_tensor(image: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float], *,
                  generator: torch.Generator | None) -> torch.Tensor:
    """RGB uint8 H x W x 3 -> (3, size, size) CLIP input; augmented when a generator is given."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    x = TF.resize(x, [size], interpolation=InterpolationMode.BICUBIC, antialias=True)
    x = TF.center_crop(x, [size, size])
    if generator is not None:
        x = TF.rotate(x, _uniform(generator, -VISION_ROTATION_DEG, VISION_ROTATION_DEG),
                      interpolation=InterpolationMode.NEAREST)
        if float(torch.rand(1, generator=generator)) < 0.5:
            x = TF.horizontal_flip(x)
    x = x.clamp_(0.0, 1.0)
    return TF.normalize(x, list(mean), list(std))
