"""The shipped sim-pretrained encoder (models/anytouch-small, made by `anytouch pretrain-recipe`; models/README.md):
it loads with its checksum, embeds simulated touch, records its recipe, and is the demo's default encoder."""

import argparse

import numpy as np

from anytouch_policy.actions import Action
from anytouch_policy.cli.demo import add_arguments, demo_config
from anytouch_policy.model.bundle import SHIPPED_ENCODER, file_sha256, load_encoder_bundle
from anytouch_policy.model.runtime import EncoderRuntime
from anytouch_policy.sim.dataset import DEFAULT_SENSORS
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_params import SensorSpec

#: The weights' sha256 as models/README.md states it; a new recipe run changes both.
SHIPPED_SHA256 = "06bd6c519efe0c48d896f06743693935fd7ba99a665c517f5b3bebeacfb686a0"
MAX_BYTES = 10 * 1024 * 1024


def test_shipped_bundle_loads_with_its_checksum_and_is_small():
    bundle = load_encoder_bundle(SHIPPED_ENCODER)  # verify=True: the file's sha256 must equal config.json's
    assert bundle.weights_sha256 == SHIPPED_SHA256 == file_sha256(SHIPPED_ENCODER / "model.safetensors")
    assert sum(p.stat().st_size for p in SHIPPED_ENCODER.iterdir()) <= MAX_BYTES
    assert bundle.source.format == "anytouch-pretrain-recipe"
    recipe = bundle.recipe
    assert recipe["settings"]["preset"] == "anytouch-small" and recipe["dataset"]["seed"] == 0
    assert recipe["stages"]["stage1"]["steps"] == 320 and recipe["command"].startswith("anytouch pretrain-recipe")
    assert recipe["dataset"]["sensors"] == [f"{s}_left" for s in DEFAULT_SENSORS]  # duragel never seen
    assert set(bundle.trained_slots) == {0, 1, 2, 3, 9}


def test_shipped_encoder_embeds_a_simulated_window():
    runtime = EncoderRuntime.from_bundle(SHIPPED_ENCODER, device="cpu", token_mode="specific")
    with SimRig(RigConfig(), [SensorSpec.parse("gelsight_mini")], seed=3) as rig:
        window = [f.image for f in rig.step(Action.WAIT).frames["gelsight_mini_left"][-3:]]
    emb = runtime.embed([window, window], ["gelsight_mini", "digit"])
    assert emb.shape == (2, 256) and np.isfinite(emb).all()
    assert not np.allclose(emb[0], emb[1])  # the sensor token matters


def _demo(*argv: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return demo_config(parser.parse_args(["--out", "/tmp/unused-demo", *argv]))


def test_the_demo_runs_its_pretrained_rows_from_the_shipped_encoder():
    default = _demo()
    assert default.encoder == SHIPPED_ENCODER and default.pretrained
    assert default.preset == "anytouch-small"  # the random-init row, run beside the pretrained ones
    without = _demo("--encoder", "none")  # every row from the random init
    assert without.encoder is None and without.preset == "anytouch-small"
    assert _demo("--preset", "anytouch-tiny").encoder == SHIPPED_ENCODER  # --preset picks the random row only
    quick = _demo("--quick")
    assert quick.encoder is None and quick.preset == "anytouch-tiny"
