"""The /diagnostics helper: statuses named after the node, levels, key/values, a failing provider reported."""

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from anytouch_policy.data import topics
from anytouch_ros import qos
from anytouch_ros.diagnostics import Diagnostics, Level, Status


def test_statuses_are_published_with_levels_values_and_provider_errors(ros_env):
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "-r", "__ns:=/rig3"])
    node = rclpy.create_node("probe_diag", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        received: list[DiagnosticArray] = []
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, received.append, qos.DIAGNOSTICS)
        diag = Diagnostics(node, period_s=0.1, hardware_id="mini-1")

        def broken() -> Status:
            raise ZeroDivisionError("no frames yet")

        diag.add(lambda: Status("camera", Level.WARN, "slow", {"fps": 12.3456, "drops": 2}))
        diag.add(lambda: [Status("a"), Status("b", Level.ERROR, "gone")])
        diag.add(broken)
        for _ in range(100):
            executor.spin_once(timeout_sec=0.05)
            if received:
                break
        (first, *_) = received
        by_name = {s.name: s for s in first.status}
        assert list(by_name) == ["/rig3/probe_diag: camera", "/rig3/probe_diag: a", "/rig3/probe_diag: b",
                                 "/rig3/probe_diag: broken"]
        camera = by_name["/rig3/probe_diag: camera"]
        assert camera.level == bytes([1]) and camera.message == "slow" and camera.hardware_id == "mini-1"
        assert {kv.key: kv.value for kv in camera.values} == {"fps": "12.35", "drops": "2"}
        assert by_name["/rig3/probe_diag: b"].level == bytes([2])
        failed = by_name["/rig3/probe_diag: broken"]
        assert failed.level == bytes([2]) and "ZeroDivisionError: no frames yet" in failed.message
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
