"""Keyboard teleoperation without ROS: the key table, decoding a cbreak terminal's bytes, the hold/latch state machine.

A terminal (also over SSH) reports key presses and auto-repeats but never releases. Holding a key gives one press,
then nothing for the auto-repeat delay (250 ms on the Linux console, 500 ms in GNOME, 660 ms with X's default
`xset r rate`), then a press every 25-40 ms. Hold mode therefore keeps an action alive for `hold_initial_s` after a
fresh press (longer than the repeat delay, and at least one 5 Hz tick so a tap always moves) and, once repeats
arrive, for `hold_repeat_s` after the latest one, so letting go stops the motion within that shorter window. Latch
mode keeps the action from one press until any other key. Any key other than the active motion key stops motion.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from anytouch_policy.actions import Action
from anytouch_policy.bounds import Interval
from anytouch_policy.errors import ConfigError

#: Range of the hold-mode windows, s: one press may keep an action alive for at most 5 s (25 ticks), so a stuck
#: terminal cannot keep pouring; auto-repeat delays are 0.25-0.66 s.
HOLD_RANGE_S = Interval.parse("(0, 5]")

class Command(StrEnum):
    """What a key does."""

    POUR = "pour"
    RETRACT = "retract"
    WAIT = "wait"
    START = "start"  # episode start (recorder opens a bag)
    END = "end"  # episode end (recorder keeps it as finished)
    ABORT = "abort"  # episode abort (recorder keeps it, marked .incomplete)
    ESTOP = "estop"
    QUIT = "quit"


#: Key table. Key names: lower-case characters, "space", arrows "up"/"down"/"left"/"right", "esc".
#: Destructive keys sit apart from the motion keys: cancel (c) next to e-stop (x), not next to s.
KEYMAP: dict[str, Command] = {
    "w": Command.POUR,
    "up": Command.POUR,
    "s": Command.RETRACT,
    "down": Command.RETRACT,
    "space": Command.WAIT,
    "b": Command.START,
    "e": Command.END,
    "c": Command.ABORT,
    "x": Command.ESTOP,
    "esc": Command.ESTOP,
    "q": Command.QUIT,
}

_HELP: dict[Command, str] = {
    Command.POUR: "pour: tilt further by delta_phi each tick",
    Command.RETRACT: "retract: tilt back by delta_phi each tick",
    Command.WAIT: "wait: hold the tilt (also what no key means)",
    Command.START: "begin an episode (recorder starts a bag)",
    Command.END: "end the episode (kept as a finished demonstration)",
    Command.ABORT: "cancel the episode (kept, but marked .incomplete)",
    Command.ESTOP: "EMERGENCY STOP: wait now + latched arm/estop (clear with the arm/recover service)",
    Command.QUIT: "quit (publishes wait; cancels a running episode)   Ctrl-C does the same",
}

MOTION = {Command.POUR: Action.POUR, Command.RETRACT: Action.RETRACT}


class TeleopMode(StrEnum):
    HOLD = "hold"  # the action lasts while the key is held (auto-repeat heuristic above)
    LATCH = "latch"  # one press keeps the action until another key


class EpisodeState(StrEnum):
    IDLE = "idle"
    RECORDING = "recording"


def help_text(mode: TeleopMode, keymap: dict[str, Command] = KEYMAP) -> str:
    """The key map as printed on start-up, one command per line."""
    keys: dict[Command, list[str]] = {}
    for key, command in keymap.items():
        keys.setdefault(command, []).append(key)
    hint = "hold the key" if mode is TeleopMode.HOLD else "press once; any other key stops"
    lines = [f"anytouch teleop ({mode.value} mode: {hint})"]
    lines += [f"  {', '.join(keys[c]):<12} {_HELP[c]}" for c in Command if c in keys]
    return "\n".join(lines)


def _char_name(byte: int) -> str | None:
    if byte == 0x20:
        return "space"
    if byte in (0x0A, 0x0D):
        return "enter"
    if byte in (0x08, 0x7F):
        return "backspace"
    if byte == 0x09:
        return "tab"
    if byte < 0x20:
        return f"ctrl+{chr(byte + 0x60)}"
    if byte < 0x7F:
        return chr(byte).lower()
    return None  # non-ASCII (UTF-8 continuation bytes and the like): no key of ours


_ARROWS = {ord("A"): "up", ord("B"): "down", ord("C"): "right", ord("D"): "left"}


def _escape_end(buf: bytes, i: int) -> int | None:
    """Index just past the escape sequence starting at buf[i] == ESC; None if it may still be incomplete."""
    if i + 1 >= len(buf):
        return None
    nxt = buf[i + 1]
    if nxt == ord("["):  # CSI: parameter/intermediate bytes 0x20-0x3F, then one final byte 0x40-0x7E
        j = i + 2
        while j < len(buf) and 0x20 <= buf[j] <= 0x3F:
            j += 1
        if j >= len(buf):
            return None
        return j + 1 if 0x40 <= buf[j] <= 0x7E else j
    if nxt == ord("O"):  # SS3 (application cursor keys: ESC O A)
        return None if i + 2 >= len(buf) else i + 3
    if nxt == 0x1B:
        return i + 1  # ESC ESC: the first one was a lone Esc
    return i + 2  # ESC + character: Alt+key


def _escape_name(seq: bytes) -> str | None:
    if len(seq) == 1:
        return "esc"
    if seq[1] in (ord("["), ord("O")):
        return _ARROWS.get(seq[-1])  # modifiers (ESC [ 1 ; 5 A) still name the arrow
    name = _char_name(seq[1])
    return f"alt+{name}" if name else None


class KeyDecoder:
    """Bytes read from a cbreak terminal -> key names. An Esc press and the start of an arrow key's escape sequence
    look alike until more bytes arrive, so a trailing ESC waits `escape_timeout_s` (call `flush`) before it counts."""

    def __init__(self, *, escape_timeout_s: float = 0.05) -> None:
        self.escape_timeout_s = escape_timeout_s
        self._pending = b""
        self._pending_since = 0.0

    def feed(self, data: bytes, now: float) -> list[str]:
        buf = self._pending + data
        keys: list[str | None] = []
        i = 0
        while i < len(buf):
            if buf[i] == 0x1B:
                end = _escape_end(buf, i)
                if end is None:
                    break
                keys.append(_escape_name(buf[i:end]))
                i = end
            else:
                keys.append(_char_name(buf[i]))
                i += 1
        if buf[i:] and not self._pending:
            self._pending_since = now
        self._pending = buf[i:]
        return [k for k in keys if k]

    def flush(self, now: float) -> list[str]:
        """Keys whose bytes stopped arriving: a lone Esc after the timeout (an unfinished sequence is dropped)."""
        if not self._pending or now - self._pending_since < self.escape_timeout_s:
            return []
        pending, self._pending = self._pending, b""
        return ["esc"] if pending == b"\x1b" else []


class Terminal:
    """A terminal in cbreak mode (no echo, no line buffering; Ctrl-C still signals) for a with-block, restored on
    every way out. Constructing it on something that is not a terminal raises termios.error (25, ENOTTY)."""

    def __init__(self, fd: int, *, decoder: KeyDecoder | None = None) -> None:
        self.fd = fd
        self.decoder = decoder or KeyDecoder()
        self._saved = termios.tcgetattr(fd)

    def __enter__(self) -> Terminal:
        tty.setcbreak(self.fd)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read_keys(self, timeout_s: float) -> list[str] | None:
        """Keys pressed within `timeout_s` (often none); None once the terminal is gone (hang-up, end of input)."""
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        now = time.monotonic()
        if not ready:
            return self.decoder.flush(now)
        data = os.read(self.fd, 64)
        return self.decoder.feed(data, now) if data else None


@dataclass(frozen=True)
class KeyEffect:
    """What the node must do for one key press, besides the 5 Hz action stream."""

    command: Command | None  # None: the key is not in the table (ignored)
    event: str | None = None  # publish on episode/event: "start" | "end" | "abort"
    estop: bool = False  # publish a wait now and the latched e-stop
    quit: bool = False
    note: str = ""  # a line for the operator


class TeleopState:
    """The keyboard state machine. Pure logic: times are monotonic seconds passed in by the caller."""

    def __init__(
        self,
        *,
        mode: TeleopMode = TeleopMode.HOLD,
        hold_initial_s: float = 0.7,
        hold_repeat_s: float = 0.25,
        control_rate_hz: float = 5.0,
        keymap: dict[str, Command] = KEYMAP,
    ) -> None:
        if control_rate_hz <= 0:
            raise ConfigError(f"control_rate_hz must be > 0, got {control_rate_hz}")
        if hold_initial_s < 1.0 / control_rate_hz:
            raise ConfigError(f"hold_initial_s ({hold_initial_s}) must be at least one control period "
                              f"({1.0 / control_rate_hz:.3g} s), or a short tap could fall between two ticks")
        if not 0 < hold_repeat_s <= hold_initial_s:
            raise ConfigError(f"hold_repeat_s ({hold_repeat_s}) must be > 0 and <= hold_initial_s ({hold_initial_s})")
        self.mode = TeleopMode(mode)
        self.hold_initial_s, self.hold_repeat_s = hold_initial_s, hold_repeat_s
        self.keymap = keymap
        self.episode = EpisodeState.IDLE
        self.episode_started_at: float | None = None
        self.estop_count = 0
        self._motion: Action | None = None
        self._deadline = 0.0  # hold mode: the motion lasts until then

    def action(self, now: float) -> Action:
        """The action of the tick at `now`."""
        if self._motion is not None and self.mode is TeleopMode.HOLD and now > self._deadline:
            self._motion = None
        return self._motion if self._motion is not None else Action.WAIT

    def _start_motion(self, action: Action, now: float) -> None:
        if self.mode is TeleopMode.LATCH:
            self._motion = action
        elif self._motion is action and now <= self._deadline:  # an auto-repeat (or a quick second tap)
            self._deadline = max(self._deadline, now + self.hold_repeat_s)
        else:
            self._motion, self._deadline = action, now + self.hold_initial_s

    def _end_episode(self, event: str) -> KeyEffect:
        self.episode, self.episode_started_at = EpisodeState.IDLE, None
        return KeyEffect(Command.END if event == "end" else Command.ABORT, event=event,
                         note=f"episode {'ended' if event == 'end' else 'cancelled'}")

    def press(self, key: str, now: float) -> KeyEffect:
        """Apply the command bound to `key` (unbound keys are ignored)."""
        return self.apply(self.keymap.get(key), now)

    def apply(self, command: Command | None, now: float) -> KeyEffect:
        if command is None:
            return KeyEffect(None)
        if command in MOTION and MOTION[command] is self.action(now):
            self._start_motion(MOTION[command], now)
            return KeyEffect(command)
        self._motion = None  # any other key stops the current motion
        if command in MOTION:
            self._start_motion(MOTION[command], now)
        elif command is Command.START:
            if self.episode is EpisodeState.RECORDING:
                return KeyEffect(command, note="an episode is already running: e to end it, c to cancel it")
            self.episode, self.episode_started_at = EpisodeState.RECORDING, now
            return KeyEffect(command, event="start", note="episode started")
        elif command in (Command.END, Command.ABORT):
            if self.episode is EpisodeState.IDLE:
                return KeyEffect(command, note="no episode running: b begins one")
            return self._end_episode("end" if command is Command.END else "abort")
        elif command is Command.ESTOP:
            self.estop_count += 1
            running = self.episode is EpisodeState.RECORDING
            if running:
                self.episode, self.episode_started_at = EpisodeState.IDLE, None
            return KeyEffect(command, event="abort" if running else None, estop=True,
                             note="E-STOP sent" + (" (episode cancelled)" if running else "")
                             + "; the arm stays stopped until arm/recover is called")
        elif command is Command.QUIT:
            running = self.episode is EpisodeState.RECORDING
            if running:
                self.episode, self.episode_started_at = EpisodeState.IDLE, None
            return KeyEffect(command, event="abort" if running else None, quit=True)
        return KeyEffect(command)


def format_status(
    state: TeleopState, now: float, *, tilt_deg: float | None, mass_g: float | None, recorder: bool
) -> str:
    """The live status line shown under the key map."""
    episode = state.episode.value
    if state.episode_started_at is not None:
        episode += f" {now - state.episode_started_at:5.1f} s"
    parts = [
        f"[{state.mode.value}]",
        f"action: {state.action(now).label:<7}",
        f"episode: {episode}",
        "tilt: " + ("--" if tilt_deg is None else f"{tilt_deg:6.2f} deg"),
        "scale: " + ("--" if mass_g is None else f"{mass_g:7.1f} g"),
        "recorder: " + ("connected" if recorder else "none"),
    ]
    if state.estop_count:
        parts.append("E-STOP SENT")
    return "  ".join(parts)
