"""Bags -> `train` -> policy bundle -> ROS: the bundle a training run writes is what the encoder and policy nodes load,
and the policy node decides with it, at 5 Hz, on a live sim sensor's frames."""

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String

from anytouch_policy.actions import Action
from anytouch_policy.data import topics
from anytouch_policy.demo.record import record_expert_episodes
from anytouch_policy.policy.bundle import read_policy_config
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec
from anytouch_policy.train import TrainConfig, TrainMode, train
from anytouch_policy.train.run import init_encoder_bundle
from anytouch_ros import qos
from anytouch_ros.conversions import embedding_from_msg, image_from_msg, time_to_ns


def _policy_values(collector) -> tuple[str, dict[str, str]] | None:
    for array in reversed(collector.msgs):
        for status in array.status:
            if (status.name == "/policy: policy" and status.message == "deciding"
                    and any(kv.key == "probs" for kv in status.values)):
                return status.message, {kv.key: kv.value for kv in status.values}
    return None


@pytest.mark.slow
def test_policy_node_decides_with_a_bundle_trained_from_bags(tmp_path, start_node, ros_node):
    bags = tmp_path / "bags"
    record_expert_episodes(bags, episodes=3, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                           config=RigConfig(max_ticks=25), seed=0)
    encoder = init_encoder_bundle("anytouch-tiny", tmp_path / "encoder", seed=0)
    result = train(TrainConfig(bags=[bags], out=tmp_path / "policy", mode=TrainMode.FROZEN, encoder=encoder, epochs=2,
                               cache_dir=tmp_path / "cache", threads=1, progress=False), log=lambda text: None)
    (sensor,) = read_policy_config(result.bundle).sensors  # the name and type the bags recorded

    actions = ros_node.collect(String, topics.ACTION, qos.COMMAND)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    start_node("anytouch_ros.arm_node", timeout_s=120, params={"backend": "sim", "sim_split": "eval"})
    start_node("anytouch_ros.sensor_node", name="sensor_" + sensor.name, timeout_s=120,
               params={"backend": "sim", "sensor_name": sensor.name, "sensor_type": sensor.type.label})
    start_node("anytouch_ros.encoder_node", timeout_s=120,
               params={"policy": str(result.bundle), "device": "cpu", "threads": 1})
    start_node("anytouch_ros.policy_node", timeout_s=120,
               params={"bundle": str(result.bundle), "max_age_s": 0.3, "diagnostics_period_s": 0.5})

    # class probabilities appear once the trained head decided; "deciding" = on fresh embeddings of that sensor
    diagnostics.wait_until(lambda items: _policy_values(diagnostics) is not None, timeout_s=90)
    message, values = _policy_values(diagnostics)
    assert message == "deciding" and values["errors"] == "0" and values["bad_embeddings"] == "0"
    probs = dict(item.split("=") for item in values["probs"].split())
    assert set(probs) == {a.label for a in Action} and sum(map(float, probs.values())) == pytest.approx(1.0, abs=0.01)
    assert "remaining_g" not in values  # this head has no "remaining" output (train --remaining-weight)
    decided = actions.wait_for(10, timeout_s=30)
    assert {r.msg.data for r in decided} <= {a.label for a in Action}


def _window_before(images: list, stamp_ns: int, *, frames: int, period_ns: float) -> list | None:
    """The `frames` images received up to `stamp_ns`, oldest first, if none between them was missed."""
    stamps = [time_to_ns(m.header.stamp) for m in images]
    if stamp_ns not in stamps:
        return None
    i = stamps.index(stamp_ns)
    if i + 1 < frames or any(abs(b - a - period_ns) > 0.5 * period_ns
                             for a, b in zip(stamps[i + 1 - frames:i], stamps[i + 2 - frames:i + 1], strict=True)):
        return None
    return [image_from_msg(m) for m in images[i + 1 - frames:i + 1]]


@pytest.mark.slow
def test_universal_token_from_train_to_the_encoder_node(tmp_path, expert_bags, tiny_encoder, start_node, ros_node):
    """`anytouch train --token universal` on GelSight Mini demonstrations -> the bundle records the token mode -> the
    encoder node encodes a DIGIT under the policy's sensor name with the universal token: each published embedding is
    the universal-token embedding of that sensor's last three frames, not the specific one; the policy decides."""
    import numpy as np
    from sensor_msgs.msg import Image

    from anytouch_policy.cli.main import main
    from anytouch_policy.model.runtime import EncoderRuntime, TokenMode

    out = tmp_path / "policy"
    assert main(["train", "--bags", str(expert_bags), "--encoder", str(tiny_encoder), "--token", "universal",
                 "--out", str(out), "--epochs", "2", "--cache-dir", str(tmp_path / "cache"), "--threads", "1",
                 "--no-progress"]) == 0
    config = read_policy_config(out)
    assert config.token_mode == TokenMode.UNIVERSAL
    assert [(s.name, s.type.label) for s in config.sensors] == [("gelsight_mini_left", "gelsight_mini")]
    name = "gelsight_mini_left"
    images = ros_node.collect(Image, topics.tactile_topic(name), qos.IMAGE)
    embeddings = ros_node.collect(Image, topics.EMBEDDING, qos.IMAGE)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    start_node("anytouch_ros.arm_node", timeout_s=120, params={"backend": "sim", "sim_split": "eval"})
    start_node("anytouch_ros.sensor_node", name="sensor_" + name, timeout_s=120,
               params={"backend": "sim", "sensor_name": name, "sensor_type": "digit"})  # the DIGIT model renders
    encoder = start_node("anytouch_ros.encoder_node", timeout_s=120,
                         params={"policy": str(out), "device": "cpu", "threads": 1, "sensor_types": ["digit"]})
    start_node("anytouch_ros.policy_node", timeout_s=120,
               params={"bundle": str(out), "max_age_s": 0.3, "diagnostics_period_s": 0.5})
    encoder.wait_for_output("token mode universal", timeout_s=90)
    diagnostics.wait_until(lambda items: _policy_values(diagnostics) is not None, timeout_s=90)
    assert _policy_values(diagnostics)[0] == "deciding"
    embeddings.wait_for(20, timeout_s=30)

    universal = EncoderRuntime.from_bundle(out / "encoder", device="cpu", token_mode="universal")
    specific = EncoderRuntime.from_bundle(out / "encoder", device="cpu", token_mode="specific")
    checked = 0
    for msg in embeddings.msgs[-20:]:
        window = _window_before(images.msgs, time_to_ns(msg.header.stamp), frames=3, period_ns=1e9 / 60.0)
        if window is None:
            continue
        got = embedding_from_msg(msg)
        np.testing.assert_allclose(got, universal.embed([window], ["digit"])[0], atol=2e-4)
        assert not np.allclose(got, specific.embed([window], ["digit"])[0], atol=1e-3)
        checked += 1
    assert checked >= 3, "too few windows whose three frames the test received"
