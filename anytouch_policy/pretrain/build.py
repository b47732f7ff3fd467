"""Turn a PretrainConfig into the pieces of a run: encoder, CLIP towers, data, decoder, objective."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import load_encoder_bundle
from anytouch_policy.model.config import EncoderConfig, load_preset
from anytouch_policy.model.encoder import AnyTouchEncoder, Finetune, FinetuneMode
from anytouch_policy.pretrain.bag_clips import BagClips, load_bag_clips
from anytouch_policy.pretrain.checkpoint import load_decoder
from anytouch_policy.pretrain.clip_towers import ClipTowers, build_clip, init_encoder_from_clip
from anytouch_policy.pretrain.config import NO_CLIP, PretrainConfig, Stage
from anytouch_policy.pretrain.dataset import PretrainDataset
from anytouch_policy.pretrain.decoder import MaskedDecoder
from anytouch_policy.pretrain.lora import add_lora
from anytouch_policy.pretrain.manifest import find_manifests, read_manifest
from anytouch_policy.pretrain.objectives import Alignment, MaskedModelling
from anytouch_policy.sensors import SensorType


@dataclass(frozen=True)
class InitInfo:
    """Where the encoder's starting weights came from (recorded in the output bundle's `source`)."""

    path: str  # bundle folder, or "preset:NAME" (random / CLIP vision tower)
    sha256: str  # of the starting weights file ("" for a preset)
    trained_slots: tuple[int, ...]  # slots already trained before this run


def build_encoder(config: PretrainConfig, towers: ClipTowers | None = None) -> tuple[AnyTouchEncoder, InitInfo]:
    """The encoder to train (every parameter trainable, train mode)."""
    if config.init is not None:
        bundle = load_encoder_bundle(config.init)
        encoder = bundle.encoder
        info = InitInfo(str(bundle.path), bundle.weights_sha256, bundle.trained_slots)
    else:
        assert config.preset is not None  # PretrainConfig: init or preset
        encoder = AnyTouchEncoder(load_preset(config.preset))
        info = InitInfo(f"preset:{config.preset}", "", ())
        if config.clip_weights is not None:
            clip = towers.model if towers is not None else build_clip(config.clip_arch, config.clip_weights).model
            init_encoder_from_clip(encoder, clip)
            info = InitInfo(f"preset:{config.preset}+clip:{config.clip_weights}", "", ())
    encoder.set_finetune(Finetune(FinetuneMode.ALL))
    encoder.train()
    if config.grad_checkpointing:
        encoder.set_grad_checkpointing(True)
    return encoder, info


def build_towers(config: PretrainConfig) -> ClipTowers | None:
    """Stage 2's CLIP: all frozen, then LoRA adapters (trainable) on the vision tower's attention (None in stage 1
    and in a touch-only stage 2)."""
    if config.stage is not Stage.ALIGN or config.touch_only:
        return None
    towers = build_clip(config.clip_arch, config.clip_weights)
    towers.model.requires_grad_(False)
    add_lora(towers.model.visual, config.lora)
    return towers


def build_dataset(config: PretrainConfig, encoder: EncoderConfig, towers: ClipTowers | None) -> PretrainDataset:
    """Manifest records and bag clips in pools: touch batches, plus matching batches in stage 2."""
    records = [r for path in find_manifests(config.data) for r in read_manifest(path)]
    if config.stage is Stage.ALIGN and towers is None:
        paired = next((r for r in records if r.vision is not None or r.text is not None), None)
        if paired is not None:
            raise ConfigError(f"{paired.where}: has vision or text, but stage 2 runs touch-only (--clip-arch "
                              f"{NO_CLIP}); give a CLIP architecture and weights to align them")
    if towers is None:  # stage 1 reads touch only
        records = [dataclasses.replace(r, vision=None, text=None) for r in records]
    bags = None
    if config.bags:
        bags = load_bag_clips(config.bags, size=encoder.image_size, stride=config.bag_stride, hop=config.bag_hop,
                              kinds=config.bag_kinds)
    samples = records + (bags.clips if bags is not None else [])
    kwargs = {} if towers is None else {"tokenizer": towers.tokenizer, "vision_size": towers.image_size,
                                        "vision_mean": towers.mean, "vision_std": towers.std}
    dataset = PretrainDataset(samples, image_size=encoder.image_size, bags=bags, augment=config.augment,
                              seed=config.seed, hard_negatives=config.hard_negatives, **kwargs)
    weights = config.weights
    if config.stage is Stage.MASKED or towers is not None or config.stage2_mae:  # touch batches have a loss
        dataset.add_touch_pools(config.batch_size)
    if config.stage is Stage.ALIGN and (weights.match > 0 or weights.cross_sensor_nce > 0):
        dataset.add_match_pools(max(1, config.batch_size // 2), aligned=weights.cross_sensor_nce > 0)
    distill = config.stage is Stage.ALIGN and weights.distills
    if distill and not dataset.add_distill_pools(config.batch_size, config.reference_sensor,
                                                 partners=weights.reference_change > 0):
        raise ConfigError(f"--reference-distill/--reference-change: no sample of the data has the same state "
                          f"(object and position) through the reference sensor {config.reference_sensor.label}")
    if not dataset.pools:
        raise ConfigError("stage 2 has nothing to train: no CLIP towers, masked modelling off (--no-mae), and "
                          "--match-weight, --cross-sensor-nce, --reference-distill and --reference-change all 0")
    return dataset


def bag_summary(bags: BagClips | None) -> dict:
    if bags is None:
        return {}
    return {"episodes": bags.episodes, "streams": len(bags.streams), "clips": len(bags.clips),
            "skipped": [{"path": p, "reason": r} for p, r in bags.skipped]}


def build_decoder(config: PretrainConfig, encoder: EncoderConfig) -> MaskedDecoder | None:
    """A new decoder, or stage 1's (--init-decoder); None when stage 2 runs without masked modelling."""
    if config.stage is Stage.ALIGN and not config.stage2_mae:
        if config.init_decoder is not None:
            raise ConfigError("pretrain: --init-decoder given but masked modelling is disabled (--no-mae)")
        return None
    if config.init_decoder is not None:
        decoder = load_decoder(config.init_decoder, encoder)
        if decoder.config != config.decoder:
            raise ConfigError(f"{config.init_decoder}: decoder architecture {decoder.config} differs from the "
                              f"requested {config.decoder}; drop the --decoder-* options to use the saved one")
        return decoder
    return MaskedDecoder(config.decoder, encoder)


def build_objective(config: PretrainConfig, encoder: AnyTouchEncoder, towers: ClipTowers | None,
                    decoder: MaskedDecoder | None) -> MaskedModelling | Alignment:
    if config.stage is Stage.MASKED:
        assert decoder is not None  # build_decoder always builds one for stage 1
        return MaskedModelling(encoder, decoder, norm_pix_loss=config.norm_pix_loss)
    reference = None
    if config.weights.distills:
        assert config.init is not None  # PretrainConfig: distillation needs --init
        reference = load_encoder_bundle(config.init).encoder  # a second copy of the starting weights, kept frozen
    return Alignment(encoder, None if towers is None else towers.model, weights=config.weights, decoder=decoder,
                     norm_pix_loss=config.norm_pix_loss, reference=reference)


def trained_slots(info: InitInfo, dataset: PretrainDataset, universal_max: float) -> tuple[int, ...]:
    """Slots the output bundle may be used with: those trained before, those in the data, universal if drawn."""
    slots = set(info.trained_slots) | {int(s.sensor) for s in dataset.samples}
    if universal_max > 0:
        slots.add(int(SensorType.UNIVERSAL))
    return tuple(sorted(slots))
