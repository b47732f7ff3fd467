"""Scripted expert for simulated demonstrations: the teleop's topics, driven by sim/state ground truth.

    ros2 run anytouch_ros expert_node --ros-args -p episodes:=20 -p target_g:=60.0
    anytouch bringup record --sim --expert           # sensors, sim arm, this node, recorder

Like a person at the keyboard it publishes pour/action + pour/cartesian_step at control_rate_hz and episode/event
start/end, here for `episodes` demonstrations in a row; then it exits 0 (bringup then stops the set). The logic is
anytouch_policy.sim.demonstrator.ExpertDemonstrator (anytouch_policy.sim.expert.ScriptedExpert per episode). It
needs the simulated arm (sim/state); without one it exits with status 2 after rig_timeout_s.
"""

from __future__ import annotations

import sys

from geometry_msgs.msg import PoseStamped
from rclpy.duration import Duration
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from anytouch_policy.actions import CONTROL_RATE_HZ, CONTROL_RATE_RANGE, DEFAULT_DELTA_PHI_DEG, DELTA_PHI_RANGE
from anytouch_policy.bounds import DIAGNOSTICS_PERIOD_S, MASS_G
from anytouch_policy.data import topics
from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.sim.demonstrator import ExpertDemonstrator
from anytouch_policy.sim.live import SimSnapshot, parse_sim_state
from anytouch_ros import qos
from anytouch_ros.base import BaseNode, run_node
from anytouch_ros.conversions import action_to_msgs, named_values_from_msg
from anytouch_ros.diagnostics import Diagnostics, Level, Status


class ExpertNode(BaseNode):
    NAME = "expert"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        rate = self.param("control_rate_hz", CONTROL_RATE_HZ, "rate of pour/action and pour/cartesian_step, Hz",
                          within=CONTROL_RATE_RANGE)
        self.delta_phi_deg = self.param("delta_phi_deg", DEFAULT_DELTA_PHI_DEG, "tilt step per pour/retract tick",
                                        within=DELTA_PHI_RANGE)
        self.tilt_axis = self.param("tilt_axis", "y", "tool-frame axis of the tilt rotation", choices=("x", "y", "z"))
        self.tool_frame = self.param("tool_frame", "tool", "frame_id of pour/cartesian_step")
        target_g = self.param("target_g", 60.0, "mass the expert pours in every episode, g", within=MASS_G)
        episodes = self.param("episodes", 10, "demonstrations to record before exiting", within="[1, 100000]")
        max_ticks = self.param("max_ticks", 200, "an episode not done after this many ticks is aborted",
                               within="[1, 100000]")
        pause_s = self.param("pause_s", 1.0, "pause between episodes (the recorder closes the bag), s",
                             within="[0, 60]")
        self.rig_timeout_s = self.param("rig_timeout_s", 10.0, "exit with status 2 if no sim/state arrives in time",
                                        within="(0, 600]")
        period = self.param("diagnostics_period_s", 1.0, "period of the /diagnostics report, s",
                            within=DIAGNOSTICS_PERIOD_S)
        self.refuse_unknown_parameters()
        self.demo = ExpertDemonstrator(target_g=target_g, episodes=episodes, delta_phi_deg=self.delta_phi_deg,
                                       control_rate_hz=rate, max_ticks=max_ticks, pause_ticks=round(pause_s * rate),
                                       start_timeout_ticks=max(1, round(self.rig_timeout_s * rate)))
        self.snapshot: SimSnapshot | None = None
        self.bad_states, self.waited_ticks = 0, 0
        self._action_pub = self.create_publisher(String, topics.ACTION, qos.COMMAND)
        self._step_pub = self.create_publisher(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND)
        self._event_pub = self.create_publisher(String, topics.EPISODE_EVENT, qos.LATCHED)
        self.create_subscription(JointState, topics.SIM_STATE, self._on_state, qos.STATE)
        self.create_timer(1.0 / rate, self._tick)
        self._rate = rate
        Diagnostics(self, period_s=period).add(self._status)

    def _on_state(self, msg: JointState) -> None:
        try:
            self.snapshot = parse_sim_state(named_values_from_msg(msg))
        except ConfigError:
            self.bad_states += 1

    def _tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if self.snapshot is None:
            self.waited_ticks += 1
            if self.waited_ticks > self.rig_timeout_s * self._rate:
                self.get_logger().fatal(f"no sim/state after {self.rig_timeout_s} s: the expert needs the simulated "
                                        "rig (arm node with backend sim; bringup --sim)")
                self.finish(2)
                return
        try:
            out = self.demo.tick(self.snapshot)
        except DeviceError as exc:
            self.get_logger().fatal(str(exc))
            self.finish(2)
            return
        label, step = action_to_msgs(out.action, now_ns, delta_phi_deg=self.delta_phi_deg, frame_id=self.tool_frame,
                                     axis=self.tilt_axis)
        self._action_pub.publish(label)
        self._step_pub.publish(step)
        if out.event:
            self._event_pub.publish(String(data=out.event))
            seed = "" if out.event == "start" else f"seed {self.demo.episode_seed}, "
            self.get_logger().info(f"episode {out.event} ({seed}{self.demo.done_episodes} done, "
                                   f"{self.demo.aborted} aborted of {self.demo.episodes})")
        if out.finished:
            for pub in (self._event_pub, self._action_pub, self._step_pub):
                pub.wait_for_all_acked(Duration(seconds=2.0))
            self.get_logger().info(f"{self.demo.episodes} episodes recorded; exiting")
            self.finish(0)

    def _status(self) -> Status:
        d = self.demo
        values = {"phase": str(d.phase), "episodes_done": d.done_episodes, "aborted": d.aborted,
                  "episode_seed": d.episode_seed, "bad_states": self.bad_states}
        level = Level.WARN if self.snapshot is None else Level.OK
        return Status("expert", level, "waiting for sim/state" if self.snapshot is None else str(d.phase), values)


def main(args: list[str] | None = None) -> int:
    return run_node(ExpertNode, args)


if __name__ == "__main__":
    sys.exit(main())
