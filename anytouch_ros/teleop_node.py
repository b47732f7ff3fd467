"""Keyboard teleop for demonstrations: the same 5 Hz pour/action + pour/cartesian_step stream the policy publishes.

    ros2 run anytouch_ros teleop_node --ros-args -p mode:=latch

Reads keys from its terminal (cbreak mode via termios/tty, so it works over SSH without X), prints the key map
(anytouch_policy.control.teleop.KEYMAP) and a live status line (action, episode, arm/tilt, scale/mass). No key = wait.
The terminal is restored and a final `wait` is published on every exit path (q, Ctrl-C, SIGTERM, SIGHUP); after
SIGTERM or SIGHUP the process then ends on that signal, so `anytouch bringup` sees what stopped it (anytouch_ros.base).
rclpy spins in a background thread (one SingleThreadedExecutor); the main thread reads the keyboard.
"""

from __future__ import annotations

import shutil
import signal
import sys
import termios
import threading
import time
from typing import TextIO

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.duration import Duration
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Bool, Float64, String

from anytouch_policy.actions import CONTROL_RATE_HZ, CONTROL_RATE_RANGE, DEFAULT_DELTA_PHI_DEG, DELTA_PHI_RANGE, Action
from anytouch_policy.control.teleop import (
    HOLD_RANGE_S,
    Command,
    EpisodeState,
    KeyEffect,
    TeleopMode,
    TeleopState,
    Terminal,
    format_status,
    help_text,
)
from anytouch_policy.data import topics
from anytouch_policy.errors import AnyTouchError
from anytouch_ros import qos
from anytouch_ros.base import BackgroundSpin, BaseNode, end_on_signal
from anytouch_ros.conversions import action_to_msgs

NO_TTY_HELP = (
    "teleop_node reads keys from the terminal on its stdin, and stdin is not a terminal "
    "(termios error {code}: {text}). "
    "Run it in its own terminal or tmux pane: `ros2 run anytouch_ros teleop_node`; from a launch file use "
    "record.launch.py (teleop_prefix:='xterm -e') or teleop:=false plus a separate terminal; "
    "`anytouch bringup record` hands it your terminal."
)


STOP_ACK_S = 1.0  # how long the last wait may take to be acknowledged


class TeleopNode(BaseNode):
    NAME = "teleop"

    def __init__(self, **node_options: object) -> None:
        super().__init__(**node_options)
        rate = self.param("control_rate_hz", CONTROL_RATE_HZ, "rate of pour/action and pour/cartesian_step, Hz",
                          within=CONTROL_RATE_RANGE)
        self.delta_phi_deg = self.param("delta_phi_deg", DEFAULT_DELTA_PHI_DEG, "tilt step per pour/retract tick, deg",
                                        within=DELTA_PHI_RANGE)
        self.tilt_axis = self.param("tilt_axis", "y", "tool-frame axis of the tilt rotation", choices=("x", "y", "z"))
        self.tool_frame = self.param("tool_frame", "tool", "frame_id of pour/cartesian_step")
        mode = self.param("mode", TeleopMode.HOLD.value, "hold: action while the key is held; latch: until another "
                          "key", choices=[m.value for m in TeleopMode])
        hold_initial = self.param("hold_initial_s", 0.7, "hold mode: a fresh press lasts this long (> your "
                                  "terminal's auto-repeat delay, `xset q`)", within=HOLD_RANGE_S)
        hold_repeat = self.param("hold_repeat_s", 0.25, "hold mode: each auto-repeat extends the action this long",
                                 within=HOLD_RANGE_S)
        self.refuse_unknown_parameters()
        self.state = TeleopState(mode=TeleopMode(mode), hold_initial_s=hold_initial, hold_repeat_s=hold_repeat,
                                 control_rate_hz=rate)
        self._lock = threading.Lock()  # the state is shared by the key thread (main) and the timer (executor)
        self.tilt_deg: float | None = None
        self.mass_g: float | None = None
        self._action_pub = self.create_publisher(String, topics.ACTION, qos.COMMAND)
        self._step_pub = self.create_publisher(PoseStamped, topics.CARTESIAN_STEP, qos.COMMAND)
        self._event_pub = self.create_publisher(String, topics.EPISODE_EVENT, qos.LATCHED)
        self._estop_pub = self.create_publisher(Bool, topics.ARM_ESTOP, qos.LATCHED)
        self.create_subscription(Float64, topics.ARM_TILT, lambda m: setattr(self, "tilt_deg", m.data), qos.STATE)
        self.create_subscription(Float64, topics.SCALE_MASS, lambda m: setattr(self, "mass_g", m.data), qos.STATE)
        self.create_timer(1.0 / rate, self._tick)

    def _publish(self, action: Action) -> None:
        label, step = action_to_msgs(action, self.get_clock().now().nanoseconds, delta_phi_deg=self.delta_phi_deg,
                                     frame_id=self.tool_frame, axis=self.tilt_axis)
        self._action_pub.publish(label)
        self._step_pub.publish(step)

    def _tick(self) -> None:
        with self._lock:
            action = self.state.action(time.monotonic())
        self._publish(action)

    def handle_key(self, key: str) -> KeyEffect:
        return self.apply(self.state.keymap.get(key))

    def apply(self, command: Command | None) -> KeyEffect:
        with self._lock:
            effect = self.state.apply(command, time.monotonic())
        if effect.estop:
            self._publish(Action.WAIT)  # now, not at the next tick
            self._estop_pub.publish(Bool(data=True))
        if effect.event:
            self._event_pub.publish(String(data=effect.event))
        return effect

    def status(self) -> str:
        with self._lock:
            return format_status(self.state, time.monotonic(), tilt_deg=self.tilt_deg, mass_g=self.mass_g,
                                 recorder=self._event_pub.get_subscription_count() > 0)

    def stop(self) -> None:
        """Last words: a wait, delivered (acknowledged by reliable readers) before the process goes. One second in
        all, not per publisher: under `anytouch bringup` the readers stop at the same Ctrl-C and may never ack."""
        self._publish(Action.WAIT)
        deadline = time.monotonic() + STOP_ACK_S
        for pub in (self._action_pub, self._step_pub, self._event_pub, self._estop_pub):
            left = max(deadline - time.monotonic(), 0.0)
            if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
                break


_EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_stopped_by: list[int] = []  # the exit signal that ended the keyboard loop, if one did


def _interrupt(signum: int, frame: object) -> None:
    """First exit signal: unwind like Ctrl-C. Later ones (a terminal Ctrl-C plus bringup's SIGINT) are ignored,
    so they cannot cut the terminal restore or the final wait short."""
    for sig in _EXIT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _stopped_by.append(signum)
    raise KeyboardInterrupt


def _line(out: TextIO, text: str, *, keep: bool) -> None:
    """Rewrite the current terminal line in place (truncated so it never wraps), or print a permanent one."""
    width = shutil.get_terminal_size((120, 24)).columns
    out.write("\r\x1b[K" + text[: max(width - 1, 20)] + ("\n" if keep else ""))
    out.flush()


def run_keyboard(node: TeleopNode, fd: int, out: TextIO) -> int:
    """Read keys from `fd` until q, Ctrl-C, SIGTERM/SIGHUP or end of input; the terminal is restored on every path."""
    try:
        terminal = Terminal(fd)
    except termios.error as exc:
        node.get_logger().fatal(NO_TTY_HELP.format(code=exc.args[0], text=exc.args[1]))
        return 2
    shown = ""
    with BackgroundSpin(node):
        try:
            with terminal:
                out.write(help_text(node.state.mode) + "\n")  # cbreak keeps output processing: \n is still CR LF
                while (keys := terminal.read_keys(0.1)) is not None:
                    for key in keys:
                        effect = node.handle_key(key)
                        if effect.note:
                            _line(out, effect.note, keep=True)
                        if effect.quit:
                            return 0
                    status = node.status()
                    if status != shown or keys:
                        _line(out, status, keep=False)
                        shown = status
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            for sig in _EXIT_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)  # the terminal is restored; nothing may cut the last words short
            out.write("\n")
            out.flush()
            if node.state.episode is EpisodeState.RECORDING:  # Ctrl-C, a signal or a closed terminal
                node.apply(Command.QUIT)  # publishes the abort of the running episode
            node.stop()


def main(args: list[str] | None = None) -> int:
    status = _run(args)
    if _stopped_by and _stopped_by[0] != signal.SIGINT:  # Ctrl-C is the operator's stop request: status 0
        end_on_signal(_stopped_by[0])
    return status


def _run(args: list[str] | None) -> int:
    # rclpy's own handlers would shut the context down on Ctrl-C before we can publish the final wait.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for sig in _EXIT_SIGNALS:
        signal.signal(sig, _interrupt)
    try:
        try:
            node = TeleopNode()
        except AnyTouchError as exc:
            rclpy.logging.get_logger(TeleopNode.NAME).fatal(f"refusing to start: {exc}")
            return 2
        try:
            return run_keyboard(node, sys.stdin.fileno(), sys.stdout)
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
