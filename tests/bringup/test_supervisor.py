"""Supervisor with real child processes: Ctrl-C stops every child (escalating), an essential child's end stops the
set, any child that fails (non-zero status, a signal the supervisor did not send) is named and makes the exit
non-zero, no orphans."""

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent(f"""
    import json, sys
    sys.path.insert(0, {str(REPO)!r})
    from anytouch_policy.bringup.supervisor import ProcessSpec, Supervisor
    specs = [ProcessSpec(name, [sys.executable, "-c", code], terminal=terminal, essential=essential)
             for name, code, terminal, essential in json.loads(sys.argv[1])]
    sys.exit(Supervisor(specs, stop_timeout_s=1.0, kill_timeout_s=1.0).run())
""")

HEAD = "import os, signal, subprocess, sys, time\n"
POLITE = HEAD + textwrap.dedent("""
    def bye(*_):
        print("bye", flush=True); sys.exit(0)
    signal.signal(signal.SIGINT, bye)
    print("ready", os.getpid(), flush=True)
    while True: signal.pause()
""")
STUBBORN = HEAD + textwrap.dedent("""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    def term(*_):
        print("term", flush=True); sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    print("ready", os.getpid(), flush=True)
    while True: signal.pause()
""")
HARD = HEAD + textwrap.dedent("""
    signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(["sleep", "60"])
    print("ready", os.getpid(), grandchild.pid, flush=True)
    while True: signal.pause()
""")
CRASHER = HEAD + 'print("ready", os.getpid(), flush=True); time.sleep(0.8); print("oops", flush=True); sys.exit(3)\n'
TERMINAL = HEAD + textwrap.dedent("""
    print("own terminal", os.getpid(), flush=True)
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    while True: signal.pause()
""")


class Driver:
    def __init__(self, children: list[tuple[str, str, bool, bool]]) -> None:
        """children: (name, code, terminal, essential)."""
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(children)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.lines):
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"supervisor output so far: {self.lines}")
            self.lines.append(line)

    def finish(self, timeout_s: float = 20.0) -> int:
        code = self.proc.wait(timeout=timeout_s)
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code

    def pids(self) -> list[int]:
        """pids the children printed ("[name] ready <pid> [<grandchild pid>]", "own terminal <pid>")."""
        return [int(token) for line in self.lines if "ready" in line.split() or line.startswith("own terminal")
                for token in line.split() if token.isdigit()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(p) for p in pids)


def _ready(count: int):
    return lambda lines: sum(("] ready " in line) or line.startswith("own terminal") for line in lines) >= count


def test_sigint_stops_every_child_escalating_to_sigterm_and_sigkill():
    drv = Driver([("polite", POLITE, False, True), ("stubborn", STUBBORN, False, False), ("hard", HARD, False, True)])
    drv.wait_for(_ready(3))
    pids = drv.pids()
    assert len(pids) == 4  # three children and the grandchild of "hard"
    drv.proc.send_signal(signal.SIGINT)
    assert drv.finish() == 0
    out = "\n".join(drv.lines)
    assert "[polite] bye" in out and "[stubborn] term" in out
    assert "[bringup] SIGINT received; stopping all nodes" in out
    assert "still running after SIGINT: stubborn, hard; sending SIGTERM" in out
    assert "exit status 1" not in out  # signals the supervisor sent itself are no failure
    assert _gone(pids), "a child or grandchild outlived the supervisor"


def test_a_crashing_essential_child_stops_the_set_with_a_clear_message():
    drv = Driver([("polite", POLITE, False, False), ("crasher", CRASHER, False, True), ("tty", TERMINAL, True, False)])
    assert drv.finish() == 1
    out = "\n".join(drv.lines)
    assert "[crasher] oops" in out and "[bringup] crasher exited with status 3; stopping the other nodes" in out
    assert drv.lines[-1] == "[bringup] exit status 1: crasher exited with status 3"
    assert "[polite] bye" in out
    assert any(line.startswith("own terminal") for line in drv.lines)  # a terminal child's output is not prefixed
    assert _gone(drv.pids())


def test_children_die_with_a_killed_supervisor():
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    drv = Driver([("a", POLITE, False, True), ("b", POLITE, False, True)])
    drv.wait_for(_ready(2))
    pids = drv.pids()
    drv.proc.kill()
    drv.proc.wait(timeout=10)
    assert len(pids) == 2 and _gone(pids), "orphans left behind"


def _pid_of(drv: Driver, name: str) -> int:
    (line,) = [line for line in drv.lines if line.startswith(f"[{name}] ready ")]
    return int(line.split()[2])


def test_children_ended_by_signals_from_elsewhere_are_named_and_fail_the_set():
    drv = Driver([("sensor", POLITE, False, False), ("gone", POLITE, False, False), ("killed", POLITE, False, False),
                  ("arm", POLITE, False, True)])
    drv.wait_for(_ready(4))
    os.kill(_pid_of(drv, "gone"), signal.SIGTERM)  # not an essential node: reported, the others keep running
    drv.wait_for(lambda lines: any("gone ended" in line for line in lines))
    os.kill(_pid_of(drv, "killed"), signal.SIGKILL)
    drv.wait_for(lambda lines: any("killed ended" in line for line in lines))
    assert drv.proc.poll() is None and _alive(_pid_of(drv, "arm")) and _alive(_pid_of(drv, "sensor"))
    os.kill(_pid_of(drv, "arm"), signal.SIGKILL)  # an essential node: the set stops
    assert drv.finish() == 1
    out = "\n".join(drv.lines)
    assert "[bringup] gone ended on SIGTERM (not sent by bringup); the other nodes keep running" in out
    assert "[bringup] killed ended on SIGKILL (not sent by bringup); the other nodes keep running" in out
    assert "[bringup] arm ended on SIGKILL (not sent by bringup); stopping the other nodes" in out
    assert "[sensor] bye" in out  # stopped by the supervisor's SIGINT: no failure of its own
    assert drv.lines[-1] == ("[bringup] exit status 1: gone ended on SIGTERM (not sent by bringup); killed ended on "
                             "SIGKILL (not sent by bringup); arm ended on SIGKILL (not sent by bringup)")
    assert _gone(drv.pids())


def test_a_failure_of_a_non_essential_child_makes_even_a_ctrl_c_exit_non_zero():
    drv = Driver([("sensor", CRASHER, False, False), ("arm", POLITE, False, True)])
    drv.wait_for(lambda lines: "[bringup] sensor exited with status 3; the other nodes keep running" in lines)
    drv.proc.send_signal(signal.SIGINT)
    assert drv.finish() == 1
    assert "[arm] bye" in drv.lines and drv.lines[-1] == "[bringup] exit status 1: sensor exited with status 3"


def test_an_essential_child_exiting_0_ends_the_set_cleanly_and_so_does_the_last_child():
    quits = HEAD + 'print("ready", os.getpid(), flush=True); time.sleep(0.5); sys.exit(0)\n'
    drv = Driver([("teleop", quits, False, True), ("recorder", POLITE, False, False)])
    assert drv.finish() == 0
    assert "[bringup] teleop exited; stopping the other nodes" in drv.lines and "[recorder] bye" in drv.lines
    drv = Driver([("a", quits, False, False), ("b", quits, False, False)])
    assert drv.finish() == 0
    assert drv.lines[-1] == "[bringup] no process left running"
