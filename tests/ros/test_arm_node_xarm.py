"""Arm node with the xArm backend (and the Robotiq through its tool RS-485) against the loopback stand-in
controller: parameters pass through to the backend, steps become targets, the e-stop reaches the controller and
the recover service runs the backend's recover()."""

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from std_msgs.msg import Bool, Float64
from std_srvs.srv import Trigger

from anytouch_policy.actions import Action
from anytouch_policy.data import topics
from anytouch_ros import qos
from anytouch_ros.conversions import action_to_msgs
from tests.hardware.xarm.fake_robotiq import FakeRobotiq
from tests.hardware.xarm.fake_xarm_controller import FakeXArmController
from tests.ros.diagnostics import newest_status, status_values

MOVE_LINE, CLEAN_ERR = 21, 16  # register numbers the stand-in records


def _status(collector, check=lambda values: True, **expected) -> dict[str, str]:
    """The newest arm status (waits until it has the `expected` values and passes `check`)."""
    def find(items):
        status = newest_status((item.msg for item in items), "/arm: arm")
        if status is None:
            return None
        values = status_values(status) | {"_message": status.message}
        return values if expected.items() <= values.items() and check(values) else None

    return find(collector.wait_until(lambda items: find(items) is not None, timeout_s=20))


def _call(client) -> Trigger.Response:
    future = client.call_async(Trigger.Request())
    deadline = time.monotonic() + 30
    while not future.done():
        assert time.monotonic() < deadline, "no response from arm/recover"
        time.sleep(0.05)
    return future.result()


@pytest.fixture
def controller():
    fake = FakeXArmController(robotiq=FakeRobotiq(object_at=200)).__enter__()
    if fake.port != 502:  # the node process dials the SDK's fixed port, which only root may bind here
        fake.stop()
        pytest.skip("the stand-in controller needs port 502 (root) to be reachable from a node process")
    yield fake
    fake.stop()


def test_xarm_backend_steps_estop_and_recover(start_node, ros_node, controller):
    tilts = ros_node.collect(Float64, topics.ARM_TILT)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    steps = ros_node.publisher(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND)
    estop = ros_node.publisher(Bool, topics.ARM_ESTOP, qos.LATCHED)
    recover = ros_node.node.create_client(Trigger, topics.ARM_RECOVER)
    start_node("anytouch_ros.arm_node", timeout_s=90, params={
        "backend": "xarm", "gripper": "robotiq", "grasp_at_start": True, "diagnostics_period_s": 0.25,
        "xarm": {"ip": controller.host, "tilt_axis": "+y", "workspace_mm": [600.0, 0.0, 300.0, -300.0, 700.0, 100.0],
                 "settle_s": 0.1},
        "robotiq": {"grasp_force": 100}})
    ros_node.wait_for_match(steps, 1)
    ros_node.wait_for_match(estop, 1)
    assert recover.wait_for_service(timeout_sec=20)
    status = _status(diagnostics, lambda v: "moving=False" in v["gripper"], **{"backend mode": "7"})  # mode 7
    assert "object_detected=True" in status["gripper"] and status["backend ip"] == controller.host  # grasped
    assert status["backend status"] in ("ready", "holding") and status["backend reduced_mode"] == "True"

    start = tilts.wait_for(3)[-1].msg.data
    _, step = action_to_msgs(Action.POUR, 0, delta_phi_deg=0.25, frame_id="tool", axis="y")
    for _ in range(4):
        steps.publish(step)
        time.sleep(0.2)
    time.sleep(0.6)
    assert tilts.msgs[-1].data - start == pytest.approx(1.0, abs=0.05)  # measured from the reported pose
    moves = controller.registers_called().count(MOVE_LINE)
    assert moves >= 4

    estop.publish(Bool(data=True))
    status = _status(diagnostics, status="estop")
    assert status["backend status"] == "estop" and "E-STOP latched" in status["_message"]
    for _ in range(3):
        steps.publish(step)
        time.sleep(0.2)
    assert controller.registers_called().count(MOVE_LINE) == moves  # nothing reached the controller
    response = _call(recover)
    assert response.success and response.message == "recovered", response.message
    assert CLEAN_ERR in controller.registers_called()
    _status(diagnostics, status="idle", **{"backend mode": "7"})
    steps.publish(step)
    time.sleep(0.6)
    assert controller.registers_called().count(MOVE_LINE) > moves
