"""The pour pipeline as separate processes on the simulated rig: two sim sensor nodes, the sim arm, the encoder and
the 5 Hz policy. This test's own node (an independent subscriber) checks the action rate, that arm/tilt follows the
published steps, and that a killed sensor makes the policy wait within 0.5 s and the arm hold."""

import signal
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, String

from anytouch_policy.data import topics
from anytouch_ros import qos
from anytouch_ros.conversions import step_from_msg
from tests.ros.diagnostics import newest_status, status_values


def _value_at(collector, t_ns: int) -> float:
    """The newest value received at or before t_ns (monotonic receive time)."""
    items = [r for r in collector.items if r.t_ns <= t_ns]
    assert items, "no sample before that time"
    return items[-1].msg.data


def _policy_status(collector) -> tuple[str, dict[str, str]]:
    status = newest_status(collector.msgs, "/policy: policy")
    if status is None:
        raise AssertionError("no policy status on /diagnostics")
    return status.message, status_values(status)


@pytest.mark.slow
def test_sim_pipeline_pours_at_5_hz_and_waits_when_a_sensor_dies(start_node, ros_node, pour_policy):
    actions = ros_node.collect(String, topics.ACTION, qos.COMMAND)
    steps = ros_node.collect(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND)
    tilts = ros_node.collect(Float64, topics.ARM_TILT)
    embeddings = ros_node.collect(Image, topics.EMBEDDING, qos.IMAGE)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    nodes = {
        "arm": start_node("anytouch_ros.arm_node", timeout_s=120, params={"backend": "sim", "sim_split": "eval"}),
        "left": start_node("anytouch_ros.sensor_node", name="sensor_left", timeout_s=120,
                           params={"backend": "sim", "sensor_type": "gelsight_mini", "sim_index": 0}),
        "right": start_node("anytouch_ros.sensor_node", name="sensor_right", timeout_s=120,
                            params={"backend": "sim", "sensor_type": "digit", "sim_index": 1}),
        "encoder": start_node("anytouch_ros.encoder_node", timeout_s=120, params={
            "policy": str(pour_policy), "device": "cpu", "threads": 1, "sensors": ["left", "right"]}),
        "policy": start_node("anytouch_ros.policy_node", timeout_s=120, params={
            "bundle": str(pour_policy), "max_age_s": 0.3, "diagnostics_period_s": 0.5}),
    }
    # decisions on fresh embeddings: pour, pour, ... (stale or missing embeddings would give wait)
    actions.wait_until(lambda items: [r.msg.data for r in items[-10:]] == ["pour"] * 10, timeout_s=60)
    embeddings.wait_until(lambda items: {r.msg.header.frame_id for r in items} == {"left", "right"})

    # an independent subscriber sees pour/action at 5 Hz and arm/tilt following the published steps
    t0 = time.monotonic_ns()
    time.sleep(6.0)
    t1 = time.monotonic_ns()
    window = [r for r in actions.items if t0 <= r.t_ns < t1]
    assert len(window) / 6.0 == pytest.approx(5.0, abs=0.25)
    published = [step_from_msg(r.msg, axis="y", frame_id="tool") for r in steps.items if t0 <= r.t_ns < t1]
    time.sleep(0.5)  # the wrist reaches each target within a tick: compare both ends a little later
    moved = _value_at(tilts, t1 + 300_000_000) - _value_at(tilts, t0 + 300_000_000)
    assert set(published) <= {0.25, 0.0} and published.count(0.25) >= 0.8 * len(published)
    # the arm never moves more than was asked (0.3: one step of slack where the window's ends fall), and follows
    # most of it: on a loaded machine two steps can arrive at once, and the arm's rate filter then clamps the second
    assert 0.85 * sum(published) - 0.3 <= moved <= sum(published) + 0.3, (moved, sum(published))
    message, status = _policy_status(diagnostics)
    assert message == "deciding" and 0 < float(status["p50_latency_ms"]) < 1000
    assert status["resets"] == "0" and int(status["actions pour"]) >= 30

    # SIGKILL one sensor: its embeddings stop, the policy waits within 0.5 s, the arm holds
    killed_at = time.monotonic_ns()
    nodes["right"].stop(signal.SIGKILL)
    time.sleep(1.5)
    after = [r for r in actions.items if r.t_ns > killed_at]
    last_pour = max((i for i, r in enumerate(after) if r.msg.data == "pour"), default=-1)
    t_wait = after[last_pour + 1].t_ns  # from here on only wait
    assert (t_wait - killed_at) / 1e9 <= 0.5 and len(after) - last_pour - 1 >= 4
    held = _value_at(tilts, t_wait + 500_000_000)  # the wrist finishes the last step within a tick
    time.sleep(0.5)
    assert tilts.msgs[-1].data == pytest.approx(held, abs=1e-6)
    assert {r.msg.data for r in actions.items if r.t_ns >= t_wait} == {"wait"}
    message, _ = _policy_status(diagnostics)
    assert message.startswith("stale embeddings (right:") and message.endswith("publishing wait")
    for name in ("policy", "encoder", "left", "arm"):
        assert nodes[name].stop(signal.SIGINT) == 0, name
