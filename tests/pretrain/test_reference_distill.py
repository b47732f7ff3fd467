"""Reference distillation (optional stage-2 term): every sensor's embedding of a state is pulled onto the frozen
starting encoder's embedding of that state through the reference sensor."""

import numpy as np
import pytest
import torch

from anytouch_policy.cli.pretrain import FLAGS
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import load_encoder_bundle
from anytouch_policy.pretrain.config import NO_CLIP, LossWeights, PretrainConfig, Stage
from anytouch_policy.pretrain.dataset import DistillBatch, PoolKind, PretrainDataset, collate
from anytouch_policy.pretrain.losses import reference_distill_loss
from anytouch_policy.pretrain.manifest import read_manifest
from anytouch_policy.pretrain.objectives import encoder_input
from anytouch_policy.pretrain.trainer import run_pretrain
from anytouch_policy.sensors import SensorType
from anytouch_policy.train.run import init_encoder_bundle

SENSORS = ("gelsight_mini", "digit")
STATES = 16


def _write_two_looks(root, synth) -> None:
    """The two sensors' looks of STATES states, plus a DIGIT sample of a state the Mini never saw (it has no
    reference and must stay out)."""
    synth.write_sensor_looks(root, states=STATES + 1, sensors=SENSORS, skip={(STATES, "gelsight_mini")},
                             own_colours=True)


def test_the_loss_is_zero_on_the_target_one_on_its_mean_and_scale_free():
    target = torch.randn(32, 8)
    assert float(reference_distill_loss(target, target)) == 0.0
    mean = target.mean(dim=0, keepdim=True).expand_as(target)
    assert float(reference_distill_loss(mean, target)) == pytest.approx(1.0, rel=1e-5)
    off = target + 0.3 * torch.randn(32, 8)
    assert float(reference_distill_loss(10 * off, 10 * target)) == pytest.approx(
        float(reference_distill_loss(off, target)), rel=1e-5)


def test_each_sample_is_paired_with_the_same_state_through_the_reference_sensor(tmp_path, synth):
    _write_two_looks(tmp_path, synth)
    records = read_manifest(tmp_path / "manifest.jsonl")
    dataset = PretrainDataset(records, image_size=56, augment=True, seed=3)
    pooled = dataset.add_distill_pools(4, SensorType.GELSIGHT_MINI)
    assert pooled == 2 * STATES  # the DIGIT-only state has no reference
    pool_id, pool = next((i, p) for i, p in enumerate(dataset.pools) if p.kind is PoolKind.DISTILL)
    for index in pool.members:
        sample, reference = records[index], records[dataset._reference[index]]
        assert reference.sensor is SensorType.GELSIGHT_MINI
        assert (reference.object, reference.position) == (sample.object, sample.position)
        if sample.sensor is SensorType.GELSIGHT_MINI:
            assert dataset._reference[index] == index
    batch = collate([dataset[(pool_id, i, 0)] for i in pool.members[:4]])
    assert isinstance(batch, DistillBatch)
    assert batch.frames.shape == batch.reference.shape == (4, 4, 3, 56, 56)
    assert set(batch.reference_sensor.tolist()) == {int(SensorType.GELSIGHT_MINI)}
    mini = [k for k, i in enumerate(pool.members[:4]) if records[i].sensor is SensorType.GELSIGHT_MINI]
    for k in mini:  # one flip draw for both, no colour jitter: a reference sample is its own reference exactly
        assert torch.equal(batch.frames[k], batch.reference[k])


def test_change_partners_are_the_same_sensor_and_scenario_at_another_time(tmp_path, synth):
    _write_two_looks(tmp_path, synth)
    records = read_manifest(tmp_path / "manifest.jsonl")
    dataset = PretrainDataset(records, image_size=56, augment=True, seed=3)
    dataset.add_distill_pools(4, SensorType.GELSIGHT_MINI, partners=True)
    pool_id, pool = next((i, p) for i, p in enumerate(dataset.pools) if p.kind is PoolKind.DISTILL)
    for index in pool.members:
        sample = records[index]
        for partner in dataset._change_partners[index]:
            other = records[partner]
            assert (other.sensor, other.object) == (sample.sensor, sample.object)
            assert other.position != sample.position
    batch = collate([dataset[(pool_id, i, 0)] for i in pool.members[:4]])
    assert batch.partner is not None and batch.partner_reference is not None
    assert batch.partner.shape == batch.partner_reference.shape == batch.frames.shape
    assert not torch.equal(batch.partner, batch.frames)


def test_training_pulls_the_other_sensor_onto_the_reference_and_keeps_the_reference(tmp_path, synth):
    data = tmp_path / "data"
    _write_two_looks(data, synth)
    init = init_encoder_bundle("anytouch-tiny", tmp_path / "init", seed=0)
    config = synth.tiny_config(Stage.ALIGN, tmp_path / "s2", data=(str(data),), clip_arch=NO_CLIP, preset=None,
                               init=str(init), batch_size=8, epochs=30, lr=1e-3, warmup_epochs=1,
                               stage2_mae=False,
                               weights=LossWeights(match=0.0, reference_distill=1.0, reference_change=1.0))
    result = run_pretrain(config)
    assert all(r.startswith("distill") for r in (h["pool"] for h in result.history))  # no idle touch batches
    rows = [r["reference_distill"] for r in result.history]
    assert np.mean(rows[-4:]) < 0.3 * np.mean(rows[:4])

    before = load_encoder_bundle(init).encoder.eval()
    after = load_encoder_bundle(tmp_path / "s2" / "encoder").encoder.eval()
    records = read_manifest(data / "manifest.jsonl")
    dataset = PretrainDataset(records, image_size=after.config.image_size, augment=False)
    dataset.add_distill_pools(64, SensorType.GELSIGHT_MINI, partners=True)
    pool_id, pool = next((i, p) for i, p in enumerate(dataset.pools) if p.kind is PoolKind.DISTILL)
    batch = collate([dataset[(pool_id, i, 0)] for i in pool.members])
    digit = batch.sensor == int(SensorType.DIGIT)
    with torch.no_grad():
        target = before(encoder_input(batch.reference), batch.reference_sensor)[digit]
        change = target - before(encoder_input(batch.partner_reference), batch.reference_sensor)[digit]
        figures = {}
        for name, encoder in (("start", before), ("end", after)):
            now = encoder(encoder_input(batch.frames), batch.sensor)[digit]
            then = encoder(encoder_input(batch.partner), batch.sensor)[digit]
            figures[name] = (float(reference_distill_loss(now, target)),
                             float(reference_distill_loss(now - then, change)))
    # DIGIT now lands where the Mini's embedding of the state was, and moves between times as the Mini's did
    assert figures["end"][0] < 0.3 * figures["start"][0]
    assert figures["end"][1] < 0.5 * figures["start"][1]


def test_settings_that_cannot_distil_are_refused(tmp_path, synth):
    with pytest.raises(ConfigError, match="--reference-change need --stage 2 and --init"):
        synth.tiny_config(Stage.ALIGN, tmp_path / "a", data=("d",), clip_arch=NO_CLIP,
                          weights=LossWeights(reference_distill=1.0))
    data = tmp_path / "data"
    _write_two_looks(data, synth)
    init = init_encoder_bundle("anytouch-tiny", tmp_path / "init", seed=0)
    config = synth.tiny_config(Stage.ALIGN, tmp_path / "b", data=(str(data),), clip_arch=NO_CLIP, preset=None,
                               init=str(init), stage2_mae=False, weights=LossWeights(match=0.0))
    with pytest.raises(ValueError, match="stage 2 has nothing to train"):
        run_pretrain(config)
    config = synth.tiny_config(Stage.ALIGN, tmp_path / "c", data=(str(data),), clip_arch=NO_CLIP, preset=None,
                               init=str(init), stage2_mae=False, reference_sensor="gelslim",
                               weights=LossWeights(match=0.0, reference_distill=1.0))
    with pytest.raises(ValueError, match="through the reference sensor gelslim"):
        run_pretrain(config)


def test_the_reference_sensor_is_named_on_the_command_line(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    FLAGS.add_to(parser)
    args = parser.parse_args(["--stage", "2", "--init", "b", "--data", "d", "--out", "o", "--clip-arch", NO_CLIP,
                              "--reference-distill", "1", "--reference-sensor", "digit"])
    config = FLAGS.build(args)
    assert isinstance(config, PretrainConfig) and config.reference_sensor is SensorType.DIGIT
    with pytest.raises(SystemExit):
        parser.parse_args(["--reference-sensor", "gelsight-max"])
    assert "valid names: gelsight, digit" in capsys.readouterr().err
