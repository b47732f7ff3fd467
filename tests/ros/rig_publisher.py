"""A stand-in rig for ROS tests: tactile images at their rate, 5 Hz actions + steps, arm/tilt, scale/mass, sim/state.

    python tests/ros/rig_publisher.py --sensors left:gelsight_mini,right:digit --ros-args -r __node:=rig

Frame k of sensor i is uniform: channel 0 = k % 251, channel 1 = k // 251 % 251, channel 2 = i, so a test can check
every recorded frame against its counter. Prints "rig: all matched" once every publisher has a subscriber.
"""

from __future__ import annotations

import argparse
import sys
from itertools import cycle

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String

from anytouch_policy.actions import Action
from anytouch_policy.data import topics
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
from anytouch_ros import qos
from anytouch_ros.conversions import action_to_msgs, image_to_msg, named_values_to_msg


def frame(k: int, index: int, shape: tuple[int, int]) -> np.ndarray:
    img = np.empty((*shape, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = k % 251, k // 251 % 251, index
    return img


class Rig(Node):
    def __init__(self, sensors: list[tuple[str, str]], image_rate: float, action_rate: float) -> None:
        super().__init__("rig")
        self.pubs = []
        for index, (name, kind) in enumerate(sensors):
            fmt = NATIVE_FORMATS[SensorType.from_name(kind)]
            pub = self.create_publisher(Image, topics.tactile_topic(name), qos.IMAGE)
            self.pubs.append(pub)
            counter = iter(range(10**9))
            self.create_timer(1.0 / image_rate, lambda p=pub, c=counter, i=index, n=name, s=(fmt.height, fmt.width):
                              p.publish(image_to_msg(frame(next(c), i, s), self._now(), frame_id=f"{n}_gel")))
        self.action_pub = self.create_publisher(String, topics.ACTION, qos.COMMAND)
        self.step_pub = self.create_publisher(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND)
        self.tilt_pub = self.create_publisher(Float64, topics.ARM_TILT, qos.STATE)
        self.mass_pub = self.create_publisher(Float64, topics.SCALE_MASS, qos.STATE)
        self.state_pub = self.create_publisher(JointState, topics.SIM_STATE, qos.STATE)
        self.pubs += [self.action_pub, self.step_pub, self.tilt_pub, self.mass_pub, self.state_pub]
        self.actions = cycle([Action.POUR, Action.WAIT, Action.RETRACT, Action.POUR])
        self.tilt, self.mass, self.matched = 0.0, 0.0, False
        self.create_timer(1.0 / action_rate, self.tick)

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def tick(self) -> None:
        action = next(self.actions)
        label, step = action_to_msgs(action, self._now(), delta_phi_deg=0.25, frame_id="tool", axis="y")
        self.tilt += action.tilt_step_deg(0.25)
        self.mass += 0.5
        self.action_pub.publish(label)
        self.step_pub.publish(step)
        self.tilt_pub.publish(Float64(data=self.tilt))
        self.mass_pub.publish(Float64(data=self.mass))
        self.state_pub.publish(named_values_to_msg({"tilt_deg": self.tilt, "poured_g": self.mass}, self._now()))
        if not self.matched and all(p.get_subscription_count() > 0 for p in self.pubs):
            self.matched = True
            print("rig: all matched", flush=True)


def main() -> int:
    args = rclpy.utilities.remove_ros_args(sys.argv)[1:]
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensors", default="left:gelsight_mini")
    parser.add_argument("--image-rate", type=float, default=25.0)
    parser.add_argument("--action-rate", type=float, default=5.0)
    opts = parser.parse_args(args)
    rclpy.init()
    node = Rig([tuple(s.split(":")) for s in opts.sensors.split(",")], opts.image_rate, opts.action_rate)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
