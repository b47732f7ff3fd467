"""Run a set of processes as one unit, the way `ros2 launch` runs nodes: prefixed output, stop together.

    Supervisor([ProcessSpec("talker", [...]), ProcessSpec("teleop", [...], terminal=True)]).run()

- Each child's stdout+stderr is read line by line and printed as "[name] line". A `terminal` child (the keyboard
  teleop) keeps the operator's terminal instead: stdin, stdout and stderr inherited, in our process group.
- Other children get a session of their own, so a Ctrl-C in the terminal reaches only the supervisor, which then
  sends exactly one SIGINT to every child (a node closing a bag must not see a second one). On Linux each child also
  gets SIGTERM if the supervisor dies (PR_SET_PDEATHSIG), so even a killed supervisor leaves no orphans.
- A child that exits on its own stops the whole set: status 0 if it exited 0 (e.g. the operator quit teleop),
  1 with a message naming it otherwise. Ctrl-C / SIGTERM to the supervisor stops the set with status 0.
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

    def run(self) -> int:
        """Start everything, supervise until a child exits or a signal arrives, stop everything. Exit status."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
        status = 0
        try:
            self.start()
            while not self._stop.wait(0.1):
                ended = [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]
                if ended:
                    name, code = ended[0]
                    if code == 0:
                        self.say(f"{name} exited; stopping the other nodes")
                    else:
                        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                        self.say(f"{name} {how}; stopping the other nodes")
                        status = 1
                    break
            if self._signal is not None:
                self.say(f"{signal.Signals(self._signal).name} received; stopping all nodes")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

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
