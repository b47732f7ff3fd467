"""Arm: pour/cartesian_step -> safety filter -> backend (sim or xArm 6); arm/tilt, arm/pose and status out.

    ros2 run anytouch_ros arm_node --ros-args -p backend:=sim
    ros2 run anytouch_ros arm_node --ros-args -p backend:=xarm -p xarm.ip:=192.168.1.200 -p xarm.tilt_axis:=+y \\
        -p "xarm.workspace_mm:=[550.0, 250.0, 150.0, -150.0, 450.0, 200.0]" -p gripper:=robotiq -p grasp_at_start:=true
    ros2 service call /arm/recover std_srvs/srv/Trigger

- Every step becomes a tilt delta about `tilt_axis` and passes control.safety.TiltCommandFilter (ArmLimits from
  the parameters) in control.arm_loop.ArmLoop, whose thread owns the backend: the executor only queues.
- Command timeout -> hold. arm/estop true -> the backend's estop(), latched until the arm/recover service (which
  runs the backend's recover()).
- The recover service lives on a small helper node with its own executor thread, so a recover that takes seconds
  (the xArm's bring-up) never stalls steps, e-stops or diagnostics.
- Backend sim owns the physics: advanced on the wall clock every loop cycle, published on sim/state (for the
  sensor nodes) and scale/mass; an episode/event `start` begins the next episode (a full cylinder, the next seed).
"""

from __future__ import annotations

import sys
import time

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from anytouch_policy.actions import CONTROL_RATE_HZ, CONTROL_RATE_RANGE, DEFAULT_DELTA_PHI_DEG, DELTA_PHI_RANGE
from anytouch_policy.bounds import DIAGNOSTICS_PERIOD_S, EVENT_AGE_S, MASS_G
from anytouch_policy.bringup.backends import ARMS, make_arm, make_gripper
from anytouch_policy.control.arm_loop import ArmLoop, LoopStatus
from anytouch_policy.data import topics
from anytouch_policy.errors import ConfigError, MessageError
from anytouch_policy.hardware.base import LIMIT_RANGES, Arm, ArmLimits
from anytouch_policy.hardware.xarm.config import XArmConfig
from anytouch_policy.hardware.xarm.robotiq import RobotiqConfig
from anytouch_policy.sensors import NATIVE_FORMATS
from anytouch_policy.sim.live import MAX_RUN_SEED, WRIST_HEADROOM_RANGE
from anytouch_ros import qos
from anytouch_ros.base import BackgroundSpin, BaseNode, run_node
from anytouch_ros.conversions import named_values_to_msg, pose_to_msg, step_from_msg
from anytouch_ros.diagnostics import Diagnostics, Level, Status

#: sim/state must come at least as often as the fastest simulated camera renders (frames show the latest state).
MIN_SIM_STATE_RATE_HZ = max(f.fps for f in NATIVE_FORMATS.values())


class ArmNode(BaseNode):
    NAME = "arm"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        backend = self.param("backend", "sim", "sim (simulated rig) | xarm", choices=tuple(ARMS))
        self.axis = self.param("tilt_axis", "y", "tool axis of the pour/cartesian_step rotations",
                               choices=("x", "y", "z"))
        self.tool_frame = self.param("tool_frame", "tool", "frame_id the steps must carry")
        self.base_frame = self.param("base_frame", "link_base", "frame_id of arm/pose")
        defaults = ArmLimits()
        limits = ArmLimits(**{f: self.param(f, getattr(defaults, f), "safety limit (ArmLimits)", within=interval)
                              for f, interval in LIMIT_RANGES.items()})
        state_rate = self.param("state_rate_hz", 25.0, "rate of arm/tilt, arm/pose (and scale/mass in sim), Hz",
                                within="[1, 1000]")
        gripper = self.param("gripper", "", "xarm: '' (none) | robotiq", choices=("", "robotiq"))
        grasp = self.param("grasp_at_start", False, "xarm + robotiq: close the gripper on the cylinder at start")
        sim = {k: self.param(f"sim_{k}", v, "sim backend: " + text, within=interval) for k, v, text, interval in (
            ("initial_g", 100.0, "beads in the cylinder at each episode start, g", MASS_G),
            ("seed", 0, "run seed; episode k plays episode_seed(split, seed, k)", f"[0, {MAX_RUN_SEED})"),
            ("split", "train", "seed range: train (demonstrations) | eval (policy rollouts)", None),
            ("randomize", True, "per-episode nuisances (physics, grasp, sensor looks)", None),
            ("wrist_headroom", 1.2, "wrist speed / (delta_phi x rate): room to catch up with jittery steps",
             WRIST_HEADROOM_RANGE))}
        sim_rate = self.param("sim_state_rate_hz", 100.0, "sim: physics advanced and sim/state published at this "
                              "rate, Hz (at least the fastest camera; 200 = every physics step)",
                              within=f"[{MIN_SIM_STATE_RATE_HZ:g}, 1000]")
        delta_phi = self.param("delta_phi_deg", DEFAULT_DELTA_PHI_DEG, "sim: step of the commands (wrist speed)",
                               within=DELTA_PHI_RANGE)
        control_rate = self.param("control_rate_hz", CONTROL_RATE_HZ, "sim: rate of the commands (wrist speed)",
                                  within=CONTROL_RATE_RANGE)
        self.event_max_age_s = self.param("event_max_age_s", 5.0, "sim: ignore latched episode events older",
                                          within=EVENT_AGE_S)
        self.recover_timeout_s = self.param("recover_timeout_s", 30.0, "longest wait for a backend recover, s",
                                            within="(0, 300]")
        period = self.param("diagnostics_period_s", 1.0, "period of the /diagnostics report, s",
                            within=DIAGNOSTICS_PERIOD_S)
        xarm = self.backend_params("xarm", XArmConfig)
        robotiq = self.backend_params("robotiq", RobotiqConfig)
        self.refuse_unknown_parameters()
        self.sim = backend == "sim"
        if self.sim:
            if gripper:
                self.get_logger().info(f"gripper {gripper!r} ignored: the sim backend grasps with its own gripper")
            self.arm: Arm = make_arm("sim", limits=limits, delta_phi_deg=delta_phi, control_rate_hz=control_rate,
                                     **sim)
        else:
            axis = str(xarm.get("tilt_axis", ""))
            if axis and axis[-1:] != self.axis:
                raise ConfigError(f"parameter xarm.tilt_axis {axis!r} turns about another axis than tilt_axis "
                                  f"{self.axis!r}, the axis of the pour/cartesian_step rotations")
            self.arm = make_arm("xarm", limits=limits, **xarm)
        self.gripper = None
        self.arm.open()
        if gripper and not self.sim:
            self.gripper = make_gripper(gripper, arm=self.arm, **robotiq)
            self.gripper.open()
            if grasp:
                c = self.gripper.config
                self.gripper.grasp(c.grasp_position, c.grasp_speed, c.grasp_force)
        self._tilt_pub = self.create_publisher(Float64, topics.ARM_TILT, qos.STATE)
        self._pose_pub = self.create_publisher(PoseStamped, topics.ARM_POSE, qos.STATE)
        if self.sim:
            self._mass_pub = self.create_publisher(Float64, topics.SCALE_MASS, qos.STATE)
            self._sim_pub = self.create_publisher(JointState, topics.SIM_STATE, qos.SIM_STATE)
            self.create_subscription(String, topics.EPISODE_EVENT, self._on_event, qos.LATCHED)
        self.create_subscription(PoseStamped, topics.CARTESIAN_STEP, self._on_step, qos.COMMAND)
        self.create_subscription(Bool, topics.ARM_ESTOP, self._on_estop, qos.LATCHED)
        self.bad_steps, self.last_bad_step = 0, ""
        self._state_period_ns = round(1e9 / state_rate)
        self._next_state_ns = 0
        self.last_state = self.arm.state()
        self.loop = ArmLoop(self.arm, limits=limits, period_s=1.0 / max(state_rate, sim_rate if self.sim else 0.0),
                            on_cycle=self._on_cycle)
        self.loop.start()
        # the recover service on its own node + executor thread: a recover may block for seconds (xArm bring-up)
        self._service_node = rclpy.create_node(f"{self.get_name()}_recover", namespace=self.get_namespace(),
                                               context=self.context, use_global_arguments=False)
        self._service_node.create_service(Trigger, topics.ARM_RECOVER, self._on_recover)
        self._service_spin = BackgroundSpin(self._service_node).__enter__()
        Diagnostics(self, period_s=period, hardware_id=backend).add(self._status)
        self.get_logger().info(f"arm backend {backend}: steps about tool {self.axis}, limits {limits}")

    def _on_step(self, msg: PoseStamped) -> None:
        try:
            delta = step_from_msg(msg, axis=self.axis, frame_id=self.tool_frame)
        except MessageError as exc:
            self.bad_steps += 1
            self.last_bad_step = str(exc)
            self.get_logger().warning(f"step refused: {exc}", throttle_duration_sec=5.0)
            return
        self.loop.submit_step(delta)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.get_logger().error("E-STOP received on arm/estop: holding until arm/recover")
            self.loop.estop("arm/estop")

    def _on_event(self, msg: String, info: MessageInfo) -> None:
        age_s = (time.time_ns() - info["source_timestamp"]) / 1e9
        if msg.data == "start" and age_s <= self.event_max_age_s:
            self.loop.call(lambda arm: arm.new_episode())

    def _on_recover(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            response.message = self.loop.recover().result(timeout=self.recover_timeout_s)
            response.success = True
            self.get_logger().info(f"arm/recover: {response.message}")
        except Exception as exc:  # DeviceError from the backend, or the timeout
            response.success, response.message = False, f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"arm/recover failed: {response.message}")
        return response

    def _on_cycle(self, arm: Arm) -> None:
        """Loop thread, every cycle: physics + sim/state (sim), and arm state at state_rate_hz."""
        now_ns = time.time_ns()
        if self.sim:
            arm.advance_to(now_ns)
            values, stamp_ns = arm.sim_state()
            self._sim_pub.publish(named_values_to_msg(values, stamp_ns))
        if now_ns < self._next_state_ns:
            return
        self._next_state_ns = max(self._next_state_ns + self._state_period_ns, now_ns)
        state = self.last_state = arm.state()
        self._tilt_pub.publish(Float64(data=state.tilt_deg))
        self._pose_pub.publish(pose_to_msg(state.pose, state.stamp_ns, frame_id=self.base_frame))
        if self.sim:
            self._mass_pub.publish(Float64(data=arm.mass_on_scale_g))

    def _status(self) -> Status:
        s, state = self.loop.stats(), self.last_state  # the state the loop thread published last
        values: dict[str, object] = {**s.values(), "backend_status": state.status, "tilt_deg": state.tilt_deg,
                                     "error_code": state.error_code, "warn_code": state.warn_code,
                                     "bad_steps": self.bad_steps}
        if self.sim:
            arm = self.arm
            values.update({"episode": arm.episode, "episode_seed": arm.episode_seed,
                           "skipped_physics_steps": arm.skipped_steps, "mass_on_scale_g": arm.mass_on_scale_g})
        values.update({f"backend {k}": v for k, v in self.arm.diagnostics().items()})
        if self.gripper is not None:
            values["gripper"] = str(self.gripper.status())
        level, message = Level.OK, {LoopStatus.IDLE: "waiting for commands", LoopStatus.ACTIVE: "following steps",
                                    LoopStatus.TIMEOUT: "holding: command timeout"}.get(s.status, "")
        if s.status is LoopStatus.TIMEOUT or self.bad_steps:
            level = Level.WARN
            message += f"; {self.bad_steps} steps refused ({self.last_bad_step})" if self.bad_steps else ""
        if state.status in ("error", "estop", "disconnected"):
            level, message = Level.ERROR, f"backend {state.status}: call arm/recover once the cause is fixed"
        if s.status is LoopStatus.ESTOP:
            level, message = Level.ERROR, f"E-STOP latched ({s.estop_reason}): holding until arm/recover"
        return Status("arm", level, message, values)

    def stop_workers(self) -> None:
        self._service_spin.__exit__(None, None, None)
        self._service_node.destroy_node()
        self.loop.stop()

    def close(self) -> None:
        if self.gripper is not None:
            self.gripper.close()
        self.arm.close()


def main(args: list[str] | None = None) -> int:
    return run_node(ArmNode, args)


if __name__ == "__main__":
    sys.exit(main())
