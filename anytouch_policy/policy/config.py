"""The schema of a policy bundle's config.json, typed: one PolicyConfig that writer and readers share.

    config.json   kind "anytouch-policy", format_version, sensors [{name, type}], frames, stride, token_mode,
                  conditioning, conditioning_scale_g, reference, classes, head (HeadConfig), variant,
                  training (data, epochs, val metrics), encoder {dir, fingerprint, sha256}, weights {file, sha256}

Training describes its policy as a PolicySpec (everything but the encoder and the weights); policy.bundle adds those
two when it writes the folder, and reads the file back as a PolicyConfig, each refusal naming the file and field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from anytouch_policy.actions import Action
from anytouch_policy.bounds import AT_LEAST_1, DROPOUT, Interval
from anytouch_policy.model.bundle import CONFIG_FILE, WEIGHTS_FILE, WeightsFile
from anytouch_policy.model.runtime import TokenMode
from anytouch_policy.outputs import OutputKind
from anytouch_policy.schema import config
from anytouch_policy.sensors import SensorName

POLICY_KIND: Final = "anytouch-policy"
POLICY_FORMAT_VERSION: Final = 1
ENCODER_DIR: Final = "encoder"
CURVES_FILE = "training_curves.png"  # written by `anytouch train` beside config.json
LOG_FILE = "training_log.json"

#: Conditioning values a head may take, in this order; grams divided by CONDITIONING_SCALE_G.
CONDITIONING_NAMES: tuple[str, ...] = ("initial_g", "target_g")
CONDITIONING_SCALE_G = 100.0
#: A head's "remaining" output is the grams still to pour divided by this (policy.head).
REMAINING_SCALE_G = 10.0
CLASSES: tuple[str, ...] = tuple(a.label for a in Action)

#: A policy bundle folder, for the output-folder rule (anytouch_policy.outputs); `anytouch eval` may have put its
#: default plots (eval_<initial>-<target>_seed<seed>.png) in it.
POLICY_BUNDLE = OutputKind("policy bundle", markers=(CONFIG_FILE, WEIGHTS_FILE),
                           contents=(CONFIG_FILE, WEIGHTS_FILE, ENCODER_DIR, CURVES_FILE, LOG_FILE, "eval_*.png"),
                           config_kind=POLICY_KIND)

Count = Annotated[int, AT_LEAST_1]


class ReferenceMode(StrEnum):
    """What the head compares the current window with."""

    EPISODE_START = "episode_start"  # the first embedding of the pour (kept by the runtime until reset())
    NONE = "none"  # the current window only


def ordered_conditioning(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`names` in CONDITIONING_NAMES order; ValueError lists the valid names when one is unknown."""
    unknown = [c for c in names if c not in CONDITIONING_NAMES]
    if unknown:
        raise ValueError(f"unknown conditioning {unknown}; valid: {list(CONDITIONING_NAMES)}")
    return tuple(c for c in CONDITIONING_NAMES if c in names)


@config
class HeadConfig:
    """Numbers that define a PolicyHead."""

    sensors: Count  # K
    embed_dim: Count  # D (encoder output_dim)
    reference: bool  # head also takes e - r per sensor
    conditioning: Annotated[int, Interval(0, len(CONDITIONING_NAMES))]  # C
    hidden: Count = 256
    layers: Count = 2  # hidden layers
    dropout: Annotated[float, DROPOUT] = 0.1
    remaining: bool = False  # a 4th output: the grams still to pour (bundles written before this field: False)

    @property
    def outputs(self) -> int:
        """The last layer's width: the action logits, and the grams still to pour with `remaining`."""
        return len(Action) + int(self.remaining)

    @property
    def feature_dim(self) -> int:
        return self.sensors * self.embed_dim * (2 if self.reference else 1)


@config
class PolicySensor:
    """One sensor the policy reads: its name (the topic segment) and its type (the token slot)."""

    name: str
    type: SensorName


@config
class EncoderRef:
    """The encoder bundle inside the policy bundle, and what identifies it."""

    dir: Literal["encoder"]
    fingerprint: str  # EncoderBundle.fingerprint: weights, architecture and preprocessing
    sha256: str  # of its model.safetensors


@config(kw_only=True)
class PolicySpec:
    """config.json as training decides it, before the folder is written (no encoder, no weights yet)."""

    kind: Literal["anytouch-policy"] = POLICY_KIND
    format_version: Literal[1] = POLICY_FORMAT_VERSION
    sensors: Annotated[tuple[PolicySensor, ...], Field(min_length=1)]
    frames: Literal[1, 3]  # 3 = dynamic window, 1 = static
    stride: Count  # frames between the window's frames
    token_mode: TokenMode
    conditioning: tuple[str, ...]  # CONDITIONING_NAMES, in that order
    conditioning_scale_g: float = CONDITIONING_SCALE_G
    reference: ReferenceMode
    classes: tuple[str, ...] = CLASSES
    # Whether the pour keeps retracting once the head says RETRACT (until PolicyRuntime.reset()). True for heads
    # trained on the ticks up to the expert's decision only (hindsight labels: never asked what follows it); False
    # for heads that learnt every tick, the retreat included, where a latch would turn one stray RETRACT during the
    # pour into a stopped pour (bundles written before this field: False).
    retract_latch: bool = False
    head: HeadConfig
    variant: dict[str, Any]  # what was trained (mode, finetune, frames, ...): reported, never interpreted
    training: dict[str, Any]  # the training summary (data, epochs, validation metrics)

    @field_validator("conditioning")
    @classmethod
    def _in_order(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if ordered_conditioning(value) != value:
            raise ValueError(f"must list names from {list(CONDITIONING_NAMES)} in that order, got {list(value)}")
        return value

    @field_validator("conditioning_scale_g")
    @classmethod
    def _this_scale(cls, value: float) -> float:
        if value != CONDITIONING_SCALE_G:
            raise ValueError(f"is {value}, this code scales by {CONDITIONING_SCALE_G}")
        return value

    @field_validator("classes")
    @classmethod
    def _these_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value != CLASSES:
            raise ValueError(f"must be {list(CLASSES)}, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _head_fits(self) -> PolicySpec:
        if self.head.sensors != len(self.sensors) or self.head.conditioning != len(self.conditioning):
            raise ValueError(f"field head takes {self.head.sensors} sensors and {self.head.conditioning} conditioning "
                             f"values; the config lists {len(self.sensors)} and {len(self.conditioning)}")
        if self.head.reference != (self.reference is not ReferenceMode.NONE):
            raise ValueError(f"field head reference={self.head.reference} contradicts field reference "
                             f"{self.reference.value!r}")
        return self


@config(kw_only=True)
class PolicyConfig(PolicySpec):
    """A policy bundle's config.json (module docstring)."""

    encoder: EncoderRef
    weights: WeightsFile
