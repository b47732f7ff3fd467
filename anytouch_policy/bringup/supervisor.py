"""Run a set of processes as one unit, the way `ros2 launch` runs nodes: prefixed output, stop together.

    Supervisor([ProcessSpec("arm", [...], essential=True), ProcessSpec("teleop", [...], terminal=True)]).run()

- Each child's stdout+stderr is read line by line and printed as "[name] line". A `terminal` child (the keyboard
  teleop) keeps the operator's terminal instead: stdin, stdout and stderr inherited, in our process group.
- Other children get a session of their own, so a Ctrl-C in the terminal reaches only the supervisor, which then
  sends exactly one SIGINT to every child (a node closing a bag must not see a second one). On Linux each child also
  gets SIGTERM if the supervisor dies (PR_SET_PDEATHSIG), so even a killed supervisor leaves no orphans.
- A child that ends is reported by name. An `essential` child's end stops the whole set (launch's
  `on_exit=Shutdown`); any other child's end is reported and the rest keep running, as under `ros2 launch`. The set
  also stops once no child is left, or on Ctrl-C / SIGTERM to the supervisor.
- Exit status: 1 if any child failed, at any time (stopping included): it exited with a non-zero status, or it ended
  on a signal the supervisor did not send it (a SIGTERM from elsewhere, a SIGKILL, a crash); its name and cause are
  printed. Otherwise 0: a clean Ctrl-C, or an essential child that exited 0 (the operator quit teleop).
- Stopping: SIGINT to all, wait `stop_timeout_s`; then SIGTERM to whatever is left (its whole process group), wait
  `kill_timeout_s`; then SIGKILL. Every child is waited for before run() returns.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    terminal: bool = False
    essential: bool = False  # its end stops the whole set (launch_ros: on_exit=Shutdown)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _die_with_parent_hook():
    """A preexec_fn asking Linux to SIGTERM the child when the supervisor dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only makes one syscall

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        env: dict[str, str] | None = None,
        out: TextIO | None = None,
        stop_timeout_s: float = 10.0,
        kill_timeout_s: float = 3.0,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique: {names}")
        self.specs = list(specs)
        self.env = env
        self.out = out or sys.stdout
        self.stop_timeout_s, self.kill_timeout_s = stop_timeout_s, kill_timeout_s
        self.procs: dict[str, subprocess.Popen] = {}
        self.failures: list[str] = []  # "<name> <cause>" of every child that failed
        self._sent: dict[str, set[int]] = {name: set() for name in names}  # signals the supervisor sent each child
        self._ended: set[str] = set()
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signal: int | None = None

    def say(self, text: str) -> None:
        self._print("bringup", text)

    def _print(self, name: str, text: str) -> None:
        with self._lock:
            self.out.write(f"[{name}] {text}\n")
            self.out.flush()

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self._print(name, raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signal = signum
        if signum == signal.SIGINT:  # the terminal's Ctrl-C reached the children that share it as well
            for spec in self.specs:
                if spec.terminal:
                    self._sent[spec.name].add(signum)
        self._stop.set()

    def start(self) -> None:
        hook = _die_with_parent_hook()
        for spec in self.specs:
            io = {} if spec.terminal else {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE,
                                           "stderr": subprocess.STDOUT}
            self.procs[spec.name] = subprocess.Popen(
                list(spec.argv), env=self.env, start_new_session=not spec.terminal, preexec_fn=hook, **io)
        for spec in self.specs:  # after every fork: preexec_fn and threads do not mix
            proc = self.procs[spec.name]
            if proc.stdout is not None:
                pump = threading.Thread(target=self._pump, args=(spec.name, proc.stdout), daemon=True)
                pump.start()
                self._pumps.append(pump)
        self.say(f"started {len(self.procs)} processes: " +
                 ", ".join(f"{n} (pid {p.pid})" for n, p in self.procs.items()))

    def _cause(self, name: str, code: int) -> str | None:
        """Why a child that ended with `code` failed; None when it ended as asked (status 0, or a signal we sent)."""
        if code > 0:
            return f"exited with status {code}"
        if code < 0 and -code not in self._sent[name]:
            return f"ended on {_signal_name(-code)} (not sent by bringup)"
        return None

    def _collect(self, *, running: bool) -> bool:
        """Report the children that ended since the last call; True if one of them was essential."""
        essential = False
        for spec in self.specs:
            proc = self.procs.get(spec.name)
            code = None if proc is None else proc.poll()
            if code is None or spec.name in self._ended:
                continue
            self._ended.add(spec.name)
            cause = self._cause(spec.name, code)
            if cause:
                self.failures.append(f"{spec.name} {cause}")
            if running:
                then = "stopping the other nodes" if spec.essential else "the other nodes keep running"
                self.say(f"{spec.name} {cause or 'exited'}; {then}")
            elif cause:
                self.say(f"{spec.name} {cause} while stopping")
            essential |= spec.essential
        return essential

    def run(self) -> int:
        """Start everything, supervise until an essential child ends, none is left or a signal arrives, then stop
        everything. Exit status: 1 if any child failed (see the module docstring), else 0."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
        try:
            self.start()
            while not self._stop.wait(0.1):
                if self._collect(running=True):
                    break
                if not self._alive():
                    self.say("no process left running")
                    break
            if self._signal is not None:
                self.say(f"{_signal_name(self._signal)} received; stopping all nodes")
        finally:
            self.stop()
            self._collect(running=False)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failures:
            self.say("exit status 1: " + "; ".join(self.failures))
            return 1
        return 0

    def _alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs.values() if p.poll() is None]

    def _wait_all(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._alive()

    def _send(self, sig: int, *, group: bool) -> None:
        for spec in self.specs:
            proc = self.procs.get(spec.name)
            if proc is None or proc.poll() is not None:
                continue
            self._sent[spec.name].add(sig)
            try:
                if group and not spec.terminal:
                    os.killpg(proc.pid, sig)  # the child leads its own group: reaches anything it started
                else:
                    proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGINT, then SIGTERM, then SIGKILL, each after its timeout; returns once every child was reaped."""
        self._send(signal.SIGINT, group=False)
        if not self._wait_all(self.stop_timeout_s):
            self.say("still running after SIGINT: " + ", ".join(n for n, p in self.procs.items() if p.poll() is None)
                     + "; sending SIGTERM")
            self._send(signal.SIGTERM, group=True)
            if not self._wait_all(self.kill_timeout_s):
                self._send(signal.SIGKILL, group=True)
        for proc in self.procs.values():
            proc.wait()
        for pump in self._pumps:
            pump.join(timeout=2.0)
