"""AnyTouch training objectives: stage-1 masked modelling, stage-2 alignment and cross-sensor matching, the trainer."""

from anytouch_policy.pretrain.config import (
    AmpMode,
    ClipKind,
    DecoderConfig,
    LoraConfig,
    LossWeights,
    PretrainConfig,
    Stage,
)
from anytouch_policy.pretrain.decoder import MaskedDecoder
from anytouch_policy.pretrain.lora import LoraMultiheadAttention, add_lora
from anytouch_policy.pretrain.objectives import Alignment, MaskedModelling
from anytouch_policy.pretrain.trainer import PretrainResult, run_pretrain

__all__ = [
    "Alignment",
    "AmpMode",
    "ClipKind",
    "DecoderConfig",
    "LoraConfig",
    "LoraMultiheadAttention",
    "LossWeights",
    "MaskedDecoder",
    "MaskedModelling",
    "PretrainConfig",
    "PretrainResult",
    "Stage",
    "add_lora",
    "run_pretrain",
]
