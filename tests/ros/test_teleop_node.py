"""Teleop node driven through a pseudo-terminal: keys become actions and steps on the topics, e-stop is immediate and
latched, and the terminal attributes are exactly restored on every exit path."""

import signal
import termios
import time

import pytest
from geometry_msgs.msg import PoseStamped
from std_msgs.msg import Bool, String

from anytouch_policy.data import topics
from anytouch_ros import qos
from anytouch_ros.conversions import step_from_msg

SEC = 1e9


def _labels(collector, since_ns: int = 0, until_ns: int | None = None) -> list[str]:
    return [r.msg.data for r in collector.items if r.t_ns >= since_ns and (until_ns is None or r.t_ns <= until_ns)]


def _start(start_node, ros_node, **params):
    collectors = {
        "action": ros_node.collect(String, topics.ACTION, qos.COMMAND),
        "step": ros_node.collect(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND),
        "event": ros_node.collect(String, topics.EPISODE_EVENT, qos.LATCHED),
    }
    teleop = start_node("anytouch_ros.teleop_node", tty=True, params=params, timeout_s=60)
    for c in collectors.values():
        ros_node.wait_for_match(c.subscription, 1)
    return teleop, collectors


def test_hold_keys_episode_keys_and_quit(start_node, ros_node):
    teleop, c = _start(start_node, ros_node)
    teleop.wait_for_output(r"anytouch teleop \(hold mode")
    assert not termios.tcgetattr(teleop._slave)[3] & termios.ICANON  # cbreak while running
    c["action"].wait_for(3)
    assert set(_labels(c["action"])) == {"wait"}  # no key = wait, at 5 Hz

    # hold "w": one press, the auto-repeat delay (0.5 s), then repeats every 33 ms for 1.2 s
    t0 = time.monotonic_ns()
    teleop.write(b"w")
    time.sleep(0.5)
    for _ in range(36):
        teleop.write(b"w")
        time.sleep(0.033)
    released = time.monotonic_ns()
    time.sleep(1.2)
    held = _labels(c["action"], t0 + 0.3 * SEC, released)
    assert len(held) >= 5 and set(held) == {"pour"}, "the hold survived the auto-repeat delay"
    after = _labels(c["action"], released + 0.7 * SEC)
    assert len(after) >= 2 and set(after) == {"wait"}, "released: back to wait within hold_repeat_s + a tick"

    t1 = time.monotonic_ns()
    teleop.write(b"\x1b[B")  # one tap of the down arrow
    time.sleep(1.2)
    tapped = _labels(c["action"], t1)
    assert 2 <= tapped.count("retract") <= 5 and tapped[-1] == "wait"

    for key in (b"b", b"e", b"c", b"b", b"c"):  # start, end, cancel (ignored: none running), start, cancel
        teleop.write(key)
        time.sleep(0.15)
    c["event"].wait_for(4)
    assert [m.data for m in c["event"].msgs] == ["start", "end", "start", "abort"]

    teleop.write(b"q")
    assert teleop.wait(15) == 0
    assert termios.tcgetattr(teleop._slave) == teleop.tty_attrs_before
    assert c["action"].msgs[-1].data == "wait"  # the last word on exit
    out = teleop.output()
    assert "episode started" in out and "no episode running" in out and "action: pour" in out

    # every step matches its action (+delta pour, -delta retract, identity wait), in the tool frame about y
    sign = {"pour": 1, "wait": 0, "retract": -1}
    c["step"].wait_for(len(c["action"].items))
    angles = [round(step_from_msg(m, axis="y", frame_id="tool"), 9) for m in c["step"].msgs]
    assert angles == [0.25 * sign[m.data] for m in c["action"].msgs]


def test_latch_mode_estop_and_ctrl_c(start_node, ros_node):
    teleop, c = _start(start_node, ros_node, mode="latch", control_rate_hz=1.0, hold_initial_s=1.0)
    teleop.wait_for_output(r"anytouch teleop \(latch mode")
    teleop.write(b"b")  # episode start
    c["event"].wait_for(1)
    teleop.write(b"w")  # one press, no repeats
    c["action"].wait_until(lambda items: [r.msg.data for r in items[-2:]] == ["pour", "pour"], timeout_s=10)

    teleop.write(b"x")
    pressed = time.monotonic_ns()
    items = c["action"].wait_until(lambda items: items[-1].msg.data == "wait", timeout_s=5)
    assert items[-1].t_ns - pressed < 0.5 * SEC, "e-stop publishes wait now, not at the next 1 Hz tick"
    c["event"].wait_until(lambda items: [r.msg.data for r in items] == ["start", "abort"])
    late = ros_node.collect(Bool, topics.ARM_ESTOP, qos.LATCHED)  # subscribes after the fact: latched
    late.wait_for(1)
    assert late.msgs[0].data is True

    teleop.write(b"\x03")  # Ctrl-C through the terminal driver: SIGINT to the teleop's process group
    assert teleop.wait(15) == 0
    assert termios.tcgetattr(teleop._slave) == teleop.tty_attrs_before
    assert c["action"].msgs[-1].data == "wait"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signals_restore_the_terminal(start_node, ros_node, sig):
    teleop, c = _start(start_node, ros_node)
    teleop.wait_for_output(r"action: wait")
    assert termios.tcgetattr(teleop._slave) != teleop.tty_attrs_before
    assert teleop.stop(sig) == -sig  # restored and said its last wait, then ends on the signal for its parent
    assert termios.tcgetattr(teleop._slave) == teleop.tty_attrs_before


def test_without_a_terminal_it_says_what_to_do(start_node):
    teleop = start_node("anytouch_ros.teleop_node", timeout_s=30)  # stdin is /dev/null
    assert teleop.wait() == 2
    out = teleop.output()
    assert "stdin is not a terminal (termios error 25: Inappropriate ioctl for device)" in out
    assert "ros2 run anytouch_ros teleop_node" in out and "anytouch bringup record" in out


def test_contradictory_parameters_are_refused(start_node):
    teleop = start_node("anytouch_ros.teleop_node", tty=True, timeout_s=30, params={"hold_initial_s": 0.05})
    assert teleop.wait() == 2
    assert "refusing to start" in teleop.output() and "hold_initial_s (0.05) must be at least" in teleop.output()
    assert termios.tcgetattr(teleop._slave) == teleop.tty_attrs_before
