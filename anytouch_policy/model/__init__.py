"""The AnyTouch touch encoder: architecture presets, bundles on disk, official-checkpoint conversion, inference,
and the optimiser rules of everything that trains on it."""

from anytouch_policy.model.bundle import EncoderBundle, SourceInfo, load_encoder_bundle, save_encoder_bundle
from anytouch_policy.model.config import EncoderConfig, list_presets, load_preset
from anytouch_policy.model.convert_official import ConversionReport, convert_checkpoint, read_checkpoint
from anytouch_policy.model.encoder import AnyTouchEncoder, Finetune, FinetuneMode
from anytouch_policy.model.runtime import EncoderRuntime, Precision, TokenMode

__all__ = [
    "AnyTouchEncoder",
    "ConversionReport",
    "EncoderBundle",
    "EncoderConfig",
    "EncoderRuntime",
    "Finetune",
    "FinetuneMode",
    "Precision",
    "SourceInfo",
    "TokenMode",
    "convert_checkpoint",
    "list_presets",
    "load_encoder_bundle",
    "load_preset",
    "read_checkpoint",
    "save_encoder_bundle",
]
