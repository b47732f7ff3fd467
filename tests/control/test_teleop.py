"""Keyboard decoding, the hold/latch teleop state machine (bytes and times passed in) and cbreak mode on a pty."""

import errno
import os
import termios

import pytest

from anytouch_policy.actions import Action
from anytouch_policy.control.teleop import (
    KEYMAP,
    Command,
    EpisodeState,
    KeyDecoder,
    TeleopMode,
    TeleopState,
    Terminal,
    format_status,
    help_text,
)
from anytouch_policy.errors import ConfigError


@pytest.mark.parametrize(("data", "keys"), [
    (b"wW s", ["w", "w", "space", "s"]),
    (b"\x1b[A\x1b[B\x1b[C\x1b[D", ["up", "down", "right", "left"]),
    (b"\x1bOA\x1bOB", ["up", "down"]),  # application cursor mode (SS3)
    (b"\x1b[1;5A\x1b[1;2B", ["up", "down"]),  # Ctrl/Shift + arrow still name the arrow
    (b"\x1b[15~x", ["x"]),  # F5 is consumed whole and ignored; it is not Esc
    (b"\x1bw", ["alt+w"]),  # Alt+w is not Esc followed by w (no e-stop, no pour)
    (b"\x1b\x1b[A", ["esc", "up"]),
    (b"\r\x7f\x01", ["enter", "backspace", "ctrl+a"]),
    ("é".encode() + b"q", ["q"]),  # non-ASCII bytes are no key of ours
])
def test_decoder_names_keys(data, keys):
    assert KeyDecoder().feed(data, 0.0) == keys


def test_decoder_waits_for_split_escape_sequences_and_times_out_a_lone_esc():
    dec = KeyDecoder(escape_timeout_s=0.05)
    assert dec.feed(b"w\x1b", 1.0) == ["w"]
    assert dec.flush(1.02) == []  # could still be the start of an arrow key
    assert dec.feed(b"[", 1.03) == []
    assert dec.feed(b"A", 1.04) == ["up"]
    assert dec.feed(b"\x1b", 2.0) == []
    assert dec.flush(2.01) == []
    assert dec.flush(2.06) == ["esc"]  # nothing followed: the Esc key itself
    assert dec.flush(3.0) == []


def test_hold_covers_the_auto_repeat_delay_and_stops_soon_after_release():
    st = TeleopState(mode=TeleopMode.HOLD, hold_initial_s=0.7, hold_repeat_s=0.25)
    assert st.action(0.0) is Action.WAIT  # no key = wait
    st.press("w", 10.0)
    assert [st.action(t) for t in (10.0, 10.2, 10.4, 10.6)] == [Action.POUR] * 4  # before the first repeat
    for k in range(30):  # auto-repeat from 10.5 s every 33 ms, last at 11.457 s
        st.press("w", 10.5 + 0.033 * k)
    last = 10.5 + 0.033 * 29
    assert st.action(last + 0.2) is Action.POUR
    assert st.action(last + 0.26) is Action.WAIT  # released: stops within hold_repeat_s, not hold_initial_s
    st.press("up", 20.0)  # a single tap still spans at least one 5 Hz tick
    assert st.action(20.19) is Action.POUR and st.action(20.71) is Action.WAIT


def test_other_keys_stop_or_switch_the_motion():
    st = TeleopState(mode=TeleopMode.HOLD)
    st.press("w", 0.0)
    st.press("down", 0.1)
    assert st.action(0.15) is Action.RETRACT
    st.press("space", 0.2)
    assert st.action(0.25) is Action.WAIT
    st.press("w", 1.0)
    st.press("b", 1.1)  # episode start is another key: motion stops
    assert st.action(1.15) is Action.WAIT and st.episode is EpisodeState.RECORDING
    st.press("w", 2.0)
    st.press("z", 2.1)  # unbound keys are ignored entirely
    assert st.action(2.15) is Action.POUR


def test_latch_keeps_the_action_until_another_key():
    st = TeleopState(mode=TeleopMode.LATCH)
    st.press("w", 0.0)
    assert st.action(100.0) is Action.POUR
    st.press("w", 100.5)  # auto-repeat of the same key keeps it
    assert st.action(200.0) is Action.POUR
    st.press("s", 201.0)
    assert st.action(300.0) is Action.RETRACT
    st.press("e", 301.0)  # any other key stops (here: end with no episode running)
    assert st.action(400.0) is Action.WAIT


def test_episode_keys_emit_events_once():
    st = TeleopState()
    assert st.press("e", 0.0).event is None and "no episode" in st.press("c", 0.0).note
    assert st.press("b", 1.0).event == "start"
    again = st.press("b", 2.0)
    assert again.event is None and "already running" in again.note
    assert st.press("e", 3.0).event == "end" and st.episode is EpisodeState.IDLE
    assert st.press("b", 4.0).event == "start"
    assert st.press("c", 5.0).event == "abort"


def test_estop_stops_motion_cancels_the_episode_and_latches_nothing_in_teleop():
    st = TeleopState(mode=TeleopMode.LATCH)
    st.press("b", 0.0)
    st.press("w", 0.5)
    effect = st.press("x", 1.0)
    assert effect.estop and effect.event == "abort" and st.action(1.0) is Action.WAIT
    assert st.episode is EpisodeState.IDLE and st.estop_count == 1
    esc = st.press("esc", 2.0)
    assert esc.estop and esc.event is None  # nothing left to cancel
    st.press("w", 3.0)  # teleop keeps working; the arm node holds the e-stop until arm/recover
    assert st.action(3.0) is Action.POUR


def test_quit_cancels_a_running_episode():
    st = TeleopState()
    assert st.press("q", 0.0) == st.apply(Command.QUIT, 0.0)  # idle: just quit
    st.press("b", 1.0)
    effect = st.press("q", 2.0)
    assert effect.quit and effect.event == "abort"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"hold_initial_s": 0.1}, "hold_initial_s"),  # shorter than a 5 Hz tick: a tap could be lost
    ({"hold_repeat_s": 0.0}, "hold_repeat_s"),
    ({"hold_repeat_s": 1.0}, "hold_repeat_s"),
    ({"control_rate_hz": 0.0}, "control_rate_hz"),
])
def test_contradictory_timing_is_refused(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        TeleopState(**kwargs)


def test_help_lists_every_key_and_status_shows_live_state():
    text = help_text(TeleopMode.LATCH)
    assert "latch mode" in text
    for key in KEYMAP:
        assert key in text
    st = TeleopState()
    st.press("b", 10.0)
    st.press("w", 11.0)
    line = format_status(st, 11.5, tilt_deg=23.456, mass_g=None, recorder=True)
    assert "action: pour" in line and "recording   1.5 s" in line and "23.46 deg" in line
    assert "scale: --" in line and "recorder: connected" in line and "E-STOP" not in line
    st.press("x", 13.0)
    assert "E-STOP SENT" in format_status(st, 13.0, tilt_deg=None, mass_g=41.2, recorder=False)


def test_terminal_cbreak_reads_keys_and_restores_on_error():
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        term = Terminal(slave)
        with pytest.raises(RuntimeError), term:
            assert not termios.tcgetattr(slave)[3] & (termios.ICANON | termios.ECHO)
            assert termios.tcgetattr(slave)[3] & termios.ISIG  # Ctrl-C still signals
            os.write(master, b"w\x1b[A ")
            assert term.read_keys(1.0) == ["w", "up", "space"]
            assert term.read_keys(0.01) == []
            raise RuntimeError("the node failed")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)
    read_end, write_end = os.pipe()
    with pytest.raises(termios.error) as info:
        Terminal(read_end)
    assert info.value.args[0] == errno.ENOTTY == 25
    os.close(read_end)
    os.close(write_end)
