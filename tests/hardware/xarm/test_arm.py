"""xArm 6 backend driving the real xarm-python-sdk against the loopback stand-in controller."""

import math
import time

import pytest

from anytouch_policy.bringup.backends import make_arm
from anytouch_policy.errors import ConfigError, DeviceError, DeviceNotConnectedError
from anytouch_policy.hardware.base import ArmLimits, ArmStatus
from anytouch_policy.hardware.xarm.arm import XArmArm
from anytouch_policy.hardware.xarm.config import XArmConfig
from anytouch_policy.hardware.xarm.tool_rotation import ToolAxis
from tests.hardware.xarm.fake_xarm_report import quat_axis_angle, quat_conj, quat_from_rpy, quat_mul

WORKSPACE = (600.0, 0.0, 300.0, -300.0, 700.0, 100.0)
MS_BOT_RPY = (10.0, 88.0, 20.0)  # near the pitch-90 singularity, like the MS-Bot pour pose
MOTION_EN, SET_STATE, SET_MODE, MOVE_LINE, CLEAN_ERR = 11, 12, 19, 21, 16


def _config(controller, **kw):
    return XArmConfig(ip=controller.host, workspace_mm=WORKSPACE, tilt_axis=ToolAxis.MINUS_X, **kw)


def _wait(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _relative_rotation(start_rpy_deg, target_pose_rad):
    q0 = quat_from_rpy(*map(math.radians, start_rpy_deg))
    axis, angle = quat_axis_angle(quat_mul(quat_conj(q0), quat_from_rpy(*target_pose_rad[3:])))
    return axis, math.degrees(angle)


@pytest.fixture
def ready_arm(make_controller):
    controller = make_controller(start_rpy_deg=MS_BOT_RPY)
    arm = XArmArm(_config(controller), limits=ArmLimits(command_timeout_s=0.6))
    arm.open()
    yield arm, controller
    arm.close()


def _stream(arm, deltas, period=0.2):
    applied = []
    for delta in deltas:
        applied.append(arm.apply_tilt_step(delta))
        time.sleep(period)
    return applied


def test_bring_up_checks_enables_configures_safety_and_settles(make_controller):
    controller = make_controller(start_rpy_deg=MS_BOT_RPY)
    config = _config(controller, tcp_offset=(0, 0, 172, 0, 0, 0), tcp_load=(1.025, 0, 0, 73),
                     collision_sensitivity=4, reduced_max_tcp_speed_mm_s=80, reduced_max_joint_speed_deg_s=15)
    with XArmArm(config) as arm:
        state = arm.state()
        fake = controller.arm
        assert state.status == ArmStatus.READY and state.tilt_deg == pytest.approx(0.0, abs=1e-4)
        assert (fake.mode, fake.state, fake.enabled) == (7, 2, True)
        assert fake.reduced_mode and fake.reduced_boundary == [600, 0, 300, -300, 700, 100]
        assert fake.reduced_tcp_speed == pytest.approx(80) and fake.reduced_joint_speed == pytest.approx(
            math.radians(15))
        assert fake.collision_sensitivity == 4 and fake.tcp_maxacc == pytest.approx(2000)
        assert fake.tcp_offset[2] == pytest.approx(172) and fake.tcp_load == pytest.approx([1.025, 0, 0, 73])
        calls = controller.calls
        order = [c.register for c in calls if c.register in (MOTION_EN, SET_MODE, SET_STATE)]
        assert order[:3] == [MOTION_EN, SET_MODE, SET_STATE]
        assert order[-2:] == [SET_MODE, SET_STATE] and calls[[c.register for c in calls].index(SET_MODE)]
        mode_changes = [c for c in calls if c.register in (SET_MODE, SET_STATE)]
        for before, after in zip(mode_changes, mode_changes[1:], strict=False):
            if before.register == SET_MODE:
                assert after.t - before.t >= config.settle_s  # the settle sleep of xArm-Python-SDK#59
        assert CLEAN_ERR not in [c.register for c in calls]  # nothing is cleared on the operator's behalf
        assert controller.unhandled == []
    assert controller.arm.state == 4  # close() stops motion


def test_steps_are_rotations_about_the_tool_axis_through_the_tcp(ready_arm):
    arm, controller = ready_arm
    applied = _stream(arm, [0.25] * 8 + [-0.25] * 3)
    assert applied == pytest.approx([0.25] * 8 + [-0.25] * 3)
    targets = controller.targets
    assert len(targets) == 11 and all(t.mode == 7 and t.coord == 0 for t in targets)
    expected = [0.25 * k for k in range(1, 9)] + [1.75, 1.5, 1.25]
    for target, tilt in zip(targets, expected, strict=True):
        assert target.pose[:3] == pytest.approx((300.0, 0.0, 400.0))  # the TCP stays put
        axis, angle = _relative_rotation(MS_BOT_RPY, target.pose)
        assert angle == pytest.approx(tilt, abs=1e-3)
        assert axis == pytest.approx((-1.0, 0.0, 0.0), abs=1e-3)  # about tool -x, positive = pour
    assert _wait(lambda: not arm.state().moving)
    state = arm.state()
    assert state.tilt_deg == pytest.approx(1.25, abs=0.01) and arm.commanded_tilt_deg == pytest.approx(1.25)
    assert controller.ignored_motion == 0 and controller.unhandled == []


def test_backend_enforces_step_rate_and_tilt_limits(make_controller):
    controller = make_controller(start_rpy_deg=(180.0, 0.0, 0.0))
    limits = ArmLimits(min_tilt_deg=0.0, max_tilt_deg=1.0, max_step_deg=0.4, max_rate_deg_s=2.0,
                       command_timeout_s=5.0)
    with XArmArm(_config(controller), limits=limits) as arm:
        assert arm.apply_tilt_step(-0.3) == 0.0  # never below the upright start
        assert arm.apply_tilt_step(2.0) == pytest.approx(0.4)  # max_step
        assert arm.apply_tilt_step(0.4) == pytest.approx(0.0, abs=1e-5)  # the arm has not moved: full lead
        time.sleep(0.25)
        assert arm.apply_tilt_step(0.1) == pytest.approx(0.1)
        fast = arm.apply_tilt_step(0.4)  # right after: rate limit 2 deg/s x the few ms elapsed
        assert 0.0 < fast < 0.2
        time.sleep(0.25)
        total = arm.commanded_tilt_deg  # below: the measured tilt comes as float32, a few 1e-5 deg off
        assert arm.apply_tilt_step(0.4) == pytest.approx(0.4, abs=1e-3)
        time.sleep(0.25)
        assert arm.apply_tilt_step(0.4) == pytest.approx(1.0 - total - 0.4, abs=1e-3)  # clamped at max_tilt
        time.sleep(0.25)
        assert arm.apply_tilt_step(0.4) == 0.0
        assert arm.commanded_tilt_deg == pytest.approx(1.0)
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ConfigError, match="finite"):
                arm.apply_tilt_step(bad)
        tilts = [_relative_rotation((180.0, 0.0, 0.0), t.pose)[1] for t in controller.targets]
        assert max(tilts) == pytest.approx(1.0, abs=1e-3) and len(controller.targets) == 5


def test_the_target_never_runs_ahead_of_a_slow_arm(make_controller):
    """Issue 11 on the xArm: steps streamed faster than the arm turns (here 2 deg/s) must not pile up in the
    target, or the arm keeps turning through the `wait` ticks that follow; a retract stops it at once."""
    controller = make_controller(rot_speed_deg_s=2.0)
    lag = 2.0 / 20.0 + 1e-3  # the report is 20 Hz: the measured tilt may be 50 ms (0.1 deg) old
    with XArmArm(_config(controller), limits=ArmLimits(command_timeout_s=0.6)) as arm:

        def send(step, period, seconds):
            for _ in range(round(seconds / period)):
                arm.apply_tilt_step(step)
                assert arm.commanded_tilt_deg - arm.state().tilt_deg <= arm.limits.max_step_deg + lag
                time.sleep(period)

        send(0.5, 0.02, 2.0)  # 50 Hz: the backend's rate limit passes 5 deg/s
        at_wait = arm.state().tilt_deg
        assert at_wait > 2.0
        send(0.0, 0.2, 2.0)  # wait ticks: heartbeats that move nothing
        assert arm.state().tilt_deg - at_wait <= arm.limits.max_step_deg + lag
        send(0.5, 0.02, 1.0)
        at_retract = arm.state().tilt_deg
        tilts = []
        for _ in range(3):
            send(-0.25, 0.2, 0.2)
            tilts.append(arm.state().tilt_deg)
        assert max(tilts) <= at_retract + lag and tilts[-1] < at_retract - 0.25


def test_controller_error_mid_stream_stops_and_latches_until_recover(ready_arm):
    arm, controller = ready_arm
    _stream(arm, [0.25] * 3)
    controller.inject_error(31)  # collision
    assert _wait(lambda: arm.state().status == ArmStatus.ERROR, timeout=1.0)
    state = arm.state()
    assert state.error_code == 31 and "C31" in arm.status_message and "Collision" in arm.status_message
    sent = len(controller.targets)
    assert _stream(arm, [0.25] * 3) == [0.0, 0.0, 0.0]  # refused, and nothing reaches the controller
    assert len(controller.targets) == sent
    assert arm.state().status == ArmStatus.ERROR and controller.arm.error == 31  # never cleared automatically
    assert CLEAN_ERR not in controller.registers_called()
    arm.recover()
    assert arm.state().status == ArmStatus.READY and controller.arm.mode == 7
    assert arm.commanded_tilt_deg == pytest.approx(0.75, abs=0.01)  # continues from the measured tilt
    assert arm.apply_tilt_step(0.25) == pytest.approx(0.25)
    axis, angle = _relative_rotation(MS_BOT_RPY, controller.targets[-1].pose)
    assert angle == pytest.approx(1.0, abs=0.01)


def test_recover_outside_the_tilt_range_only_steps_back_into_it(ready_arm):
    arm, controller = ready_arm
    controller.inject_error(31)
    assert _wait(lambda: arm.state().status == ArmStatus.ERROR, timeout=1.0)
    half = math.radians(-2.0) / 2  # the collision rebound left the tool 2 deg behind upright, about tool -x
    with controller.lock:
        controller.arm.quat = quat_mul(controller.arm.quat, (math.cos(half), -math.sin(half), 0.0, 0.0))
    time.sleep(0.2)
    arm.recover()
    assert arm.commanded_tilt_deg == pytest.approx(-2.0, abs=0.01)
    assert arm.apply_tilt_step(-0.25) == 0.0  # further out: refused
    time.sleep(0.2)
    assert arm.apply_tilt_step(0.25) == pytest.approx(0.25)  # back towards the range: one normal step, no jump
    assert _relative_rotation(MS_BOT_RPY, controller.targets[-1].pose)[1] == pytest.approx(1.75, abs=0.01)


def test_recover_refuses_while_the_error_persists(ready_arm):
    arm, controller = ready_arm
    controller.inject_error(14, clearable=False)  # a servo error: needs a power cycle
    assert _wait(lambda: arm.state().status == ArmStatus.ERROR, timeout=1.0)
    with pytest.raises(DeviceError, match="still controller error C14"):
        arm.recover()
    assert arm.state().status == ArmStatus.ERROR


def test_no_step_for_the_command_timeout_stops_the_arm_then_it_resumes(ready_arm):
    arm, controller = ready_arm
    _stream(arm, [0.25], period=0.1)
    last_step = time.monotonic()  # taken before the step, so a loaded machine can only lengthen the measured gap
    arm.apply_tilt_step(0.25)
    assert _wait(lambda: arm.state().status == ArmStatus.HOLDING, timeout=1.5)
    stops = [c for c in controller.calls if c.register == SET_STATE and c.payload[:1] == b"\x04"]
    assert stops and stops[-1].t - last_step >= 0.6  # set_state(4) after the 0.6 s timeout, not before
    assert _wait(lambda: controller.arm.mode == 7 and controller.arm.state == 2)  # re-armed for the next step
    time.sleep(0.1)
    assert arm.apply_tilt_step(0.25) == pytest.approx(0.25)
    assert arm.state().status == ArmStatus.READY and controller.ignored_motion == 0


def test_idle_timeout_without_motion_sends_nothing(ready_arm):
    arm, controller = ready_arm
    assert _wait(lambda: arm.state().status == ArmStatus.HOLDING, timeout=1.5)
    assert [c.payload[:1] for c in controller.calls if c.register == SET_STATE][-1] == b"\x00"  # no stop needed
    assert arm.apply_tilt_step(0.0) == 0.0 and arm.state().status == ArmStatus.READY  # a wait tick resumes


def test_estop_latches_and_only_recover_releases_it(ready_arm):
    arm, controller = ready_arm
    _stream(arm, [0.25] * 2, period=0.1)
    arm.estop()
    assert arm.state().status == ArmStatus.ESTOP and controller.arm.state == 4
    assert arm.apply_tilt_step(0.25) == 0.0
    time.sleep(0.3)
    assert arm.state().status == ArmStatus.ESTOP
    arm.recover()
    assert arm.apply_tilt_step(0.25) == pytest.approx(0.25)


def test_emergency_stop_button_and_warnings_and_studio_stop(make_controller):
    for inject, status, text in ((lambda c: c.inject_error(1), ArmStatus.ESTOP, "C1"),
                                 (lambda c: c.inject_warning(14), ArmStatus.ERROR, "W14"),
                                 (lambda c: c.press_stop(), ArmStatus.ERROR, "state 4")):
        controller = make_controller(start_rpy_deg=MS_BOT_RPY)
        with XArmArm(_config(controller), limits=ArmLimits(command_timeout_s=5.0)) as arm:
            arm.apply_tilt_step(0.25)
            time.sleep(0.7)  # past the grace period after our own mode change
            inject(controller)
            assert _wait(lambda a=arm, s=status: a.state().status == s, timeout=1.5), arm.status_message
            assert text in arm.status_message
            assert arm.apply_tilt_step(0.25) == 0.0


def test_lost_link_latches_disconnected(ready_arm):
    arm, controller = ready_arm
    controller.drop_connections()
    assert _wait(lambda: arm.state().status == ArmStatus.DISCONNECTED, timeout=5.0)
    assert arm.apply_tilt_step(0.25) == 0.0


def test_open_refuses_wrong_robot_old_firmware_and_pose_outside_workspace(make_controller):
    controller = make_controller(firmware="1.10.0")
    with pytest.raises(DeviceError, match="mode 7 needs 1.11.0"):
        XArmArm(_config(controller)).open()
    controller = make_controller(axis=7)
    with pytest.raises(DeviceError, match="7-axis"):
        XArmArm(_config(controller)).open()
    controller = make_controller(start_xyz_mm=(650.0, 0.0, 400.0))
    with pytest.raises(DeviceError, match="outside workspace_mm"):
        XArmArm(_config(controller)).open()
    assert controller.arm.mode == 0  # never reached mode 7


def test_open_with_a_pending_error_waits_for_the_operator(make_controller):
    controller = make_controller()
    controller.inject_error(31)
    arm = XArmArm(_config(controller))
    with arm:
        assert arm.state().status == ArmStatus.ERROR and "recover()" in arm.status_message
        assert MOTION_EN not in controller.registers_called() and CLEAN_ERR not in controller.registers_called()
        assert arm.apply_tilt_step(0.25) == 0.0
        arm.recover()
        assert arm.state().status == ArmStatus.READY


def test_unreachable_controller_and_unopened_backend():
    arm = XArmArm(XArmConfig(ip="127.0.0.1", workspace_mm=WORKSPACE, tilt_axis=ToolAxis.PLUS_Y))
    with pytest.raises(DeviceNotConnectedError):
        arm.apply_tilt_step(0.25)
    with pytest.raises(DeviceError, match="127.0.0.1"):
        arm.open()


def test_config_and_factory_validation():
    with pytest.raises(ConfigError, match="settle_s"):
        XArmConfig(ip="1.2.3.4", workspace_mm=WORKSPACE, tilt_axis=ToolAxis.PLUS_Y, settle_s=0.05)
    with pytest.raises(ConfigError, match="x_max"):
        XArmConfig(ip="1.2.3.4", workspace_mm=(0, 600, 300, -300, 700, 100), tilt_axis=ToolAxis.PLUS_Y)
    with pytest.raises(ConfigError, match="missing required parameter.*tilt_axis"):
        make_arm("xarm", ip="1.2.3.4", workspace_mm=list(WORKSPACE))
    with pytest.raises(ConfigError, match="tilt_axis: 'y' is not one of"):
        make_arm("xarm", ip="1.2.3.4", workspace_mm=list(WORKSPACE), tilt_axis="y")
    arm = make_arm("xarm", ip="1.2.3.4", workspace_mm=[600, 0, 300, -300, 700, 100], tilt_axis="-x",
                   tcp_offset=[0, 0, 172, 0, 0, 0], limits=ArmLimits(max_tilt_deg=90.0))
    assert isinstance(arm, XArmArm) and arm.config.tilt_axis is ToolAxis.MINUS_X
    assert arm.config.workspace_mm == WORKSPACE and arm.limits.max_tilt_deg == 90.0


def test_the_stand_in_ignores_motion_sent_before_the_settle_time(make_controller):
    """The settle assertions above mean something: without the sleep the stand-in drops the command (#59).

    A long settle window keeps this independent of machine load (the default 0.1 s could elapse between calls)."""
    from xarm.wrapper import XArmAPI

    controller = make_controller(settle_s=5.0)
    sdk = XArmAPI(controller.host, is_radian=False, forbid_uds=True)
    try:
        sdk.motion_enable(True)
        sdk.set_mode(7)
        sdk.set_state(0)
        sdk.set_position(300, 0, 401, 180, 0, 0, speed=50, wait=False)  # no settle
        assert controller.ignored_motion == 1 and controller.targets == []
    finally:
        sdk.disconnect()


def test_without_root_the_sdk_dials_the_stand_in_on_another_control_port(make_controller):
    """What CI without root does: port 502 cannot be bound, the fixture points the SDK's constant elsewhere."""
    from xarm.core.config.x_config import XCONF

    controller = make_controller(control_port=0)
    assert controller.port != 502 and controller.port == XCONF.SocketConf.TCP_CONTROL_PORT
    with XArmArm(_config(controller)) as arm:
        assert arm.apply_tilt_step(0.25) == pytest.approx(0.25)
    assert len(controller.targets) == 1
