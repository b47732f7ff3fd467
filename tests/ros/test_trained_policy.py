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
    (sensor,) = read_policy_config(result.bundle)["sensors"]  # the name and type the bags recorded

    actions = ros_node.collect(String, topics.ACTION, qos.COMMAND)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    start_node("anytouch_ros.arm_node", timeout_s=120, params={"backend": "sim", "sim_split": "eval"})
    start_node("anytouch_ros.sensor_node", name="sensor_" + sensor["name"], timeout_s=120,
               params={"backend": "sim", "sensor_name": sensor["name"], "sensor_type": sensor["type"]})
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
    decided = actions.wait_for(10, timeout_s=30)
    assert {r.msg.data for r in decided} <= {a.label for a in Action}
