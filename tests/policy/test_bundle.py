"""Policy bundles: round trip through PolicyRuntime, the episode reference, and every way a bundle can be broken."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from anytouch_policy.actions import Action
from anytouch_policy.errors import BundleError, ConfigError
from anytouch_policy.model.bundle import file_sha256, load_encoder_bundle, save_encoder_bundle
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.model.runtime import TokenMode
from anytouch_policy.policy.bundle import read_policy_config, save_policy_bundle
from anytouch_policy.policy.config import HeadConfig, PolicySensor, PolicySpec, ReferenceMode
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.sensors import SensorType
from anytouch_policy.tactile import window_indices

SENSORS = [("left", SensorType.GELSIGHT_MINI), ("right", SensorType.DIGIT)]
DIM = 32  # anytouch-tiny output


def make_head(*, reference=True, seed=0) -> PolicyHead:
    torch.manual_seed(seed)
    head = PolicyHead(HeadConfig(sensors=2, embed_dim=DIM, reference=reference, conditioning=2, hidden=16, layers=1))
    head.norm.running_mean.normal_()
    head.norm.running_var.uniform_(0.5, 2.0)
    head.logit_adjust.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return head.eval()


def make_bundle(path, encoder_dir, *, frames=3, stride=2, reference=ReferenceMode.EPISODE_START, head=None,
                retract_latch=False):
    head = head or make_head(reference=reference is not ReferenceMode.NONE)
    config = PolicySpec(sensors=[PolicySensor(n, k) for n, k in SENSORS], frames=frames, stride=stride,
                        token_mode=TokenMode.SPECIFIC, conditioning=("initial_g", "target_g"), reference=reference,
                        retract_latch=retract_latch, head=head.config,
                        variant={"mode": "frozen", "dynamic": frames > 1}, training={"note": "unit"})
    return save_policy_bundle(path, config=config, head=head, encoder_bundle=encoder_dir), head


def embeddings(seed):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(DIM).astype(np.float32) for name, _ in SENSORS}


def expected_probs(head, emb, ref, cond):
    with torch.no_grad():
        e = torch.from_numpy(np.stack([emb["left"], emb["right"]]))[None]
        r = torch.from_numpy(np.stack([ref["left"], ref["right"]]))[None]
        logits = head(e, r, torch.tensor([cond], dtype=torch.float32)) + head.logit_adjust
        return torch.softmax(logits[0], 0).numpy()


def test_round_trip_and_episode_reference(tmp_path, tiny_encoder):
    path, head = make_bundle(tmp_path / "policy", tiny_encoder)
    rt = PolicyRuntime.from_bundle(path, device="cpu")
    assert rt.sensors == SENSORS and rt.frames == 3 and rt.stride == 2
    assert rt.token_mode is TokenMode.SPECIFIC and rt.conditioning == ("initial_g", "target_g")
    assert rt.reference_mode is ReferenceMode.EPISODE_START and rt.variant["mode"] == "frozen"
    assert rt.encoder_fingerprint == load_encoder_bundle(tiny_encoder).fingerprint

    first, second = embeddings(1), embeddings(2)
    d1 = rt.decide_embeddings(first, initial_g=100, target_g=60)  # the first decision becomes the reference
    assert rt.reference is not None and np.array_equal(rt.reference["left"], first["left"])
    np.testing.assert_allclose(d1.probs, expected_probs(head, first, first, [1.0, 0.6]), atol=1e-6)
    d2 = rt.decide_embeddings(second, initial_g=100, target_g=60)
    np.testing.assert_allclose(d2.probs, expected_probs(head, second, first, [1.0, 0.6]), atol=1e-6)
    assert d2.action is Action(int(np.argmax(d2.probs))) and abs(float(d2.probs.sum()) - 1) < 1e-6
    explicit = rt.decide_embeddings(second, initial_g=90, target_g=40, reference=second)
    np.testing.assert_allclose(explicit.probs, expected_probs(head, second, second, [0.9, 0.4]), atol=1e-6)
    rt.reset()
    assert rt.reference is None
    d3 = rt.decide_embeddings(second, initial_g=100, target_g=60)
    np.testing.assert_allclose(d3.probs, expected_probs(head, second, second, [1.0, 0.6]), atol=1e-6)

    stamps = [k * 40 for k in range(10)]
    assert rt.window_indices(stamps, 250) == window_indices(stamps, 250, frames=3, stride=2) == [2, 4, 6]

    moved = shutil.move(str(path), str(tmp_path / "elsewhere"))  # self-contained: moving keeps it working
    again = PolicyRuntime.from_bundle(moved, device="cpu")
    np.testing.assert_allclose(again.decide_embeddings(second, initial_g=100, target_g=60,
                                                       reference=first).probs, d2.probs, atol=1e-6)


def test_decide_errors_name_the_sensor(tmp_path, tiny_encoder):
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    rt = PolicyRuntime.from_bundle(path, device="cpu")
    with pytest.raises(ConfigError, match="no embedding for sensor 'right'"):
        rt.decide_embeddings({"left": np.zeros(DIM)}, initial_g=100, target_g=60)
    with pytest.raises(ConfigError, match="sensor 'left' has dimension 7"):
        rt.decide_embeddings({"left": np.zeros(7), "right": np.zeros(DIM)}, initial_g=100, target_g=60)
    with pytest.raises(ConfigError, match="0 < target_g < initial_g"):
        rt.decide_embeddings(embeddings(0), initial_g=60, target_g=100)
    frame = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(ConfigError, match="sensor 'left' window has 1 frames, this policy takes 3"):
        rt.decide_windows({"left": [frame], "right": [frame] * 3}, initial_g=100, target_g=60)


def test_no_decision_from_non_finite_numbers(tmp_path, tiny_encoder):
    """argmax of NaN probabilities is 0, i.e. pour: a NaN embedding or head output must never become an action."""
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    rt = PolicyRuntime.from_bundle(path, device="cpu")
    broken = embeddings(0) | {"right": np.full(DIM, np.nan, np.float32)}
    with pytest.raises(ConfigError, match="embedding of sensor 'right' has non-finite values"):
        rt.decide_embeddings(broken, initial_g=100, target_g=60)
    assert rt.reference is None  # a refused decision keeps no reference either
    with torch.no_grad():
        next(rt.head.parameters()).fill_(float("nan"))
    with pytest.raises(ConfigError, match="non-finite probabilities"):
        rt.decide_embeddings(embeddings(1), initial_g=100, target_g=60)


def test_windows_go_through_the_bundled_encoder(tmp_path, tiny_encoder):
    path, _ = make_bundle(tmp_path / "static", tiny_encoder, frames=1, stride=1)
    rt = PolicyRuntime.from_bundle(path, device="cpu")
    rng = np.random.default_rng(0)
    frames = {n: [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)] for n, _ in SENSORS}
    encoder = rt.encoder_runtime(device="cpu")
    emb = encoder.embed([f * 3 for f in frames.values()], [k for _, k in SENSORS])
    by_embeddings = rt.decide_embeddings({"left": emb[0], "right": emb[1]}, initial_g=100, target_g=60)
    rt.reset()
    by_windows = rt.decide_windows(frames, initial_g=100, target_g=60)
    np.testing.assert_allclose(by_windows.probs, by_embeddings.probs, atol=1e-5)
    assert rt.window_indices([0, 10, 20], 15) == [1]


def test_frozen_bundle_links_the_encoder(tmp_path, tiny_encoder):
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    src, dst = tiny_encoder / "model.safetensors", path / "encoder" / "model.safetensors"
    assert src.read_bytes() == dst.read_bytes()
    assert read_policy_config(path).encoder.fingerprint == load_encoder_bundle(tiny_encoder).fingerprint
    with pytest.raises(ConfigError, match="already holds a policy bundle; pass --overwrite"):
        make_bundle(path, tiny_encoder)


def _edit(path, **fields):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(fields)
    (path / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda p: shutil.rmtree(p), "policy bundle folder not found"),
    (lambda p: (p / "config.json").unlink(), "config.json is missing"),
    (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda p: _edit(p, kind="anytouch-encoder"), "kind is 'anytouch-encoder'"),
    (lambda p: _edit(p, format_version=99), "format_version 99"),
    (lambda p: _edit(p, frames=2), "field frames must be one of 1 or 3, got 2"),
    (lambda p: _edit(p, token_mode="both"), "field token_mode must be one of 'specific' or 'universal', got 'both'"),
    (lambda p: _edit(p, sensors=[{"name": "x", "type": "geltouch"}]), "unknown sensor name 'geltouch'"),
    (lambda p: _edit(p, conditioning=["target_g", "initial_g"]),
     r"field conditioning must list names from \['initial_g', 'target_g'\] in th"),
    (lambda p: _edit(p, reference="none"), "field head reference=True contradicts field reference 'none'"),
    (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda p: (p / "model.safetensors").write_bytes(b"garbage"), "sha256 differs"),
    (lambda p: shutil.rmtree(p / "encoder"), "its encoder bundle folder .*policy/encoder is missing"),
    (lambda p: (p / "encoder" / "config.json").unlink(), "config.json is missing in .*policy/encoder"),
])
def test_broken_bundles(tmp_path, tiny_encoder, breakage, message):
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    breakage(path)
    with pytest.raises(BundleError, match=message):
        PolicyRuntime.from_bundle(path, device="cpu")


def test_a_different_encoder_is_refused(tmp_path, tiny_encoder):
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    torch.manual_seed(5)
    save_encoder_bundle(path / "encoder", AnyTouchEncoder.from_preset("anytouch-tiny"), overwrite=True)
    with pytest.raises(BundleError, match="not the encoder this policy was trained with"):
        PolicyRuntime.from_bundle(path, device="cpu")


def test_head_of_another_shape_is_refused(tmp_path, tiny_encoder):
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    cfg = json.loads((path / "config.json").read_text())
    cfg["head"]["hidden"] = 8
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="does not fit field 'head'") as caught:
        PolicyRuntime.from_bundle(path, device="cpu")
    assert "\n  shape mismatch for mlp.0.weight: file [" in str(caught.value)  # each tensor named, as for encoders
    assert str(caught.value).endswith(", architecture [3, 8]")  # the last layer: 3 actions from 8 hidden


def test_non_finite_head_weights_are_refused_at_save_and_at_load(tmp_path, tiny_encoder):
    """An all-NaN head decides `pour` on every tick (argmax of NaN): such a bundle must never exist."""
    head = make_head()
    with torch.no_grad():
        head.mlp[0].weight.fill_(float("nan"))
    with pytest.raises(BundleError, match=r"refusing to write .*nan/model.safetensors: tensor\(s\) mlp.0.weight hold"):
        make_bundle(tmp_path / "nan", tiny_encoder, head=head)
    assert not (tmp_path / "nan").exists()
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    tensors = load_file(path / "model.safetensors")
    tensors["logit_adjust"][1] = float("nan")
    save_file(tensors, path / "model.safetensors")
    _edit(path, weights={"file": "model.safetensors", "sha256": file_sha256(path / "model.safetensors")})
    with pytest.raises(BundleError, match=r"policy/model.safetensors: tensor\(s\) logit_adjust hold NaN or inf"):
        PolicyRuntime.from_bundle(path, device="cpu")


def _deciding_by_logit_adjust(path):
    rt = PolicyRuntime.from_bundle(path, device="cpu")
    with torch.no_grad():
        rt.head.mlp[-1].weight.zero_()
        rt.head.mlp[-1].bias.zero_()  # the decision is now the logit adjustment alone
    return rt, {a: torch.tensor([5.0 if b is a else 0.0 for b in Action]) for a in Action}


def test_a_latching_runtime_keeps_retracting_once_it_has_decided(tmp_path, tiny_encoder):
    """With retract_latch (hindsight-labelled heads), after a RETRACT decision every decision of the pour is RETRACT
    (with the head's own probs) until reset(), as the expert does; a call with an explicit reference stands alone."""
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder, retract_latch=True)
    rt, say = _deciding_by_logit_adjust(path)
    assert rt.config.retract_latch
    e = embeddings(1)
    rt.head.logit_adjust.copy_(say[Action.POUR])
    assert rt.decide_embeddings(e, initial_g=100, target_g=60).action is Action.POUR and not rt.retracting
    rt.head.logit_adjust.copy_(say[Action.RETRACT])
    assert rt.decide_embeddings(e, initial_g=100, target_g=60).action is Action.RETRACT and rt.retracting
    rt.head.logit_adjust.copy_(say[Action.POUR])
    latched = rt.decide_embeddings(e, initial_g=100, target_g=60)
    assert latched.action is Action.RETRACT and int(latched.probs.argmax()) == int(Action.POUR)
    assert rt.decide_embeddings(e, initial_g=100, target_g=60, reference=e).action is Action.POUR
    rt.reset()
    assert not rt.retracting and rt.decide_embeddings(e, initial_g=100, target_g=60).action is Action.POUR


def test_a_runtime_without_the_latch_decides_every_tick_afresh(tmp_path, tiny_encoder):
    """Without retract_latch (the default, and bundles written before the field) a stray RETRACT does not end the
    pour: the next tick's POUR is a POUR."""
    path, _ = make_bundle(tmp_path / "policy", tiny_encoder)
    rt, say = _deciding_by_logit_adjust(path)
    assert not rt.config.retract_latch
    e = embeddings(1)
    rt.head.logit_adjust.copy_(say[Action.RETRACT])
    assert rt.decide_embeddings(e, initial_g=100, target_g=60).action is Action.RETRACT and not rt.retracting
    rt.head.logit_adjust.copy_(say[Action.POUR])
    assert rt.decide_embeddings(e, initial_g=100, target_g=60).action is Action.POUR
