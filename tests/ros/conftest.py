"""Fixtures for tests that run real rclpy nodes over DDS: an isolated domain, node processes, an in-test probe node.

    def test_x(ros_env, start_node, ros_node):
        actions = ros_node.collect(String, "pour/action")              # in-test subscriber, receive times kept
        teleop = start_node("anytouch_ros.teleop_node", tty=True, params={"mode": "latch"})
        ros_node.wait_for_match(actions.subscription, 1)                # DDS matched, not just discovered
        teleop.write(b"w"); actions.wait_until(lambda ms: ms[-1].msg.data == "pour")
        assert teleop.stop(signal.SIGINT) == 0

Isolation (reference/stack.md section 2): every test session claims a private ROS_DOMAIN_ID with an flock (two
sessions on one machine never share one) and sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (no traffic leaves the
host; ROS_LOCALHOST_ONLY is ignored in Kilted). FASTDDS_BUILTIN_TRANSPORTS=UDPv4 turns Fast DDS shared memory off:
tests SIGKILL nodes on purpose, and a killed participant leaves /dev/shm/fastdds_* segments behind that later
runs would trip over; loopback UDP costs a few ms of latency, irrelevant here (latency benches must not set it).
Every node process runs under `timeout -k 30 N`, so nothing outlives a hung test, and is stopped at teardown.
The kill-after is long on purpose: `timeout` also arms it when it is itself sent a signal (a Ctrl-C typed on the
pty reaches its whole process group, `timeout` included), so it must outlast any clean stop a test waits for; at
5 s a loaded 2-core CI machine SIGKILLed a supervised set still closing its episodes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOMAIN_RANGE = range(30, 100)  # leaves 0 (everyone's default) and low ids to people


def _claim_domain() -> tuple[int, object]:
    lock_dir = Path(tempfile.gettempdir()) / "anytouch_ros_test_domains"
    lock_dir.mkdir(exist_ok=True)
    ids = list(DOMAIN_RANGE)
    random.shuffle(ids)
    for domain in ids:
        handle = open(lock_dir / f"{domain}.lock", "w")  # noqa: SIM115 - held open (locked) for the whole session
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return domain, handle
        except BlockingIOError:
            handle.close()
    raise RuntimeError(f"every ROS_DOMAIN_ID in {DOMAIN_RANGE} is claimed by another test session")


@pytest.fixture(scope="session")
def ros_env() -> Iterator[dict[str, str]]:
    """The isolated DDS environment, applied to this process (for in-test nodes) and returned for children."""
    domain, lock = _claim_domain()
    values = {
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        yield dict(os.environ)
    lock.close()


def write_params(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    """A ROS parameter file: {node name: {param: value}} -> "/**/<node>: ros__parameters: ..."."""
    path.write_text(yaml.safe_dump({f"/**/{node}": {"ros__parameters": p} for node, p in sections.items()}))
    return path


KILL_AFTER_S = 30  # > every stop window a test waits for (supervisor stop_timeout_s 15); see the module docstring


class NodeProcess:
    """A node (or any command) started under `timeout -k 30 <timeout_s>`; output goes to a log file or a pty."""

    def __init__(self, argv: list[str], *, name: str, env: dict[str, str], log: Path, timeout_s: float,
                 tty: bool) -> None:
        self.name, self.log = name, log
        self.master: int | None = None
        self._pty_out = bytearray()
        hard = ["timeout", "-k", str(KILL_AFTER_S), str(int(timeout_s))]
        if tty:
            master, slave = os.openpty()
            self.master = master
            self.tty_attrs_before = termios.tcgetattr(slave)
            self._slave = slave
            # a session of its own with the pty as controlling terminal, so \x03 becomes SIGINT as in a real terminal
            self.proc = subprocess.Popen(hard + argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                                         start_new_session=True, cwd=log.parent,
                                         preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()
        else:
            with open(log, "wb") as out:
                self.proc = subprocess.Popen(hard + argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True, cwd=log.parent)

    def _drain(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if ready:
                    data = os.read(self.master, 4096)
                    if not data:
                        return
                    self._pty_out += data
                elif self.proc.poll() is not None:
                    return
            except OSError:  # EIO: every slave end closed
                return

    def output(self) -> str:
        data = bytes(self._pty_out) if self.master is not None else self.log.read_bytes()
        return data.decode("utf-8", "replace")

    def wait_for_output(self, pattern: str, timeout_s: float = 20.0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if m := re.search(pattern, self.output()):
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no output matching {pattern!r} (exit {self.proc.poll()}):\n"
                             + self.output()[-3000:])

    def write(self, data: bytes) -> None:
        """Type into the pty (tty=True only)."""
        os.write(self.master, data)

    def node_pid(self) -> int:
        """pid of the command itself (the child of `timeout`)."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            children = psutil.Process(self.proc.pid).children()
            if children:
                return children[0].pid
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: timeout has no child")

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 20.0) -> int:
        """Send `sig` to the node itself (not to `timeout`) and wait; returns the node's exit status (`timeout`
        passes it on, and re-raises a fatal signal n on itself: then -n, as for a direct child)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.kill(self.node_pid(), sig)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout_s} s:\n{self.output()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        if self.master is not None:
            self._reader.join(timeout=2)
            for fd in (self.master, self._slave):
                os.close(fd)
            self.master = None


@pytest.fixture
def start_node(ros_env, tmp_path) -> Iterator[Callable[..., NodeProcess]]:
    """Factory: start_node(module, *, name=None, namespace="", params=None, params_file=None, overrides=None,
    timeout_s=60, tty=False, args=()) starts `python -m module <args> --ros-args ...` (`python path.py ...` for a
    script); every process is killed at teardown."""
    started: list[NodeProcess] = []

    def start(module: str, *, name: str | None = None, namespace: str = "", params: dict[str, object] | None = None,
              params_file: Path | None = None, overrides: dict[str, object] | None = None, timeout_s: float = 60,
              tty: bool = False, args: tuple[str, ...] = ()) -> NodeProcess:
        script = module.endswith(".py")
        label = name or (Path(module).stem if script else module.rsplit(".", 1)[-1])
        argv = [sys.executable, *([module] if script else ["-m", module]), *args, "--ros-args"]
        if name:
            argv += ["-r", f"__node:={name}"]
        if namespace:
            argv += ["-r", f"__ns:=/{namespace.strip('/')}"]
        if params is not None:  # keyed by `name`, else by the module name less "_node" (teleop_node -> teleop)
            node = name or label.removesuffix("_node")
            params_file = write_params(tmp_path / f"{label}.params.yaml", {node: params})
        if params_file is not None:
            argv += ["--params-file", str(params_file)]
        for key, value in (overrides or {}).items():
            argv += ["-p", f"{key}:={json.dumps(value)}"]  # JSON is YAML: strings stay strings
        proc = NodeProcess(argv, name=label, env=ros_env, log=tmp_path / f"{label}.log", timeout_s=timeout_s, tty=tty)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()


@dataclass
class Received:
    t_ns: int  # time.monotonic_ns() when the callback ran
    msg: object


class Collector:
    """Messages of one topic as the in-test node received them."""

    def __init__(self) -> None:
        self.items: list[Received] = []
        self._cond = threading.Condition()
        self.subscription = None

    def __call__(self, msg: object) -> None:
        with self._cond:
            self.items.append(Received(time.monotonic_ns(), msg))
            self._cond.notify_all()

    @property
    def msgs(self) -> list[object]:
        with self._cond:
            return [r.msg for r in self.items]

    def wait_until(self, predicate: Callable[[list[Received]], bool], timeout_s: float = 15.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self.items) and predicate(self.items), timeout=timeout_s):
                raise AssertionError(f"condition not met within {timeout_s} s; last messages: "
                                     f"{[r.msg for r in self.items[-5:]]}")
            return list(self.items)

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[Received]:
        return self.wait_until(lambda items: len(items) >= count, timeout_s)


class RosProbe:
    """An rclpy node inside the test process, spinning on its own executor thread in a private context."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException):
            self._executor.spin()

    def collect(self, msg_type: type, topic: str, qos=None) -> Collector:
        from anytouch_ros import qos as profiles

        collector = Collector()
        collector.subscription = self.node.create_subscription(msg_type, topic, collector, qos or profiles.STATE)
        return collector

    def publisher(self, msg_type: type, topic: str, qos=None):
        from anytouch_ros import qos as profiles

        return self.node.create_publisher(msg_type, topic, qos or profiles.STATE)

    @staticmethod
    def wait_for_match(endpoint, count: int = 1, timeout_s: float = 20.0) -> None:
        """Until a publisher has `count` matched subscriptions, or a subscription `count` matched publishers
        (discovery takes 0.5-3.6 s; messages sent before the match are lost)."""
        counter = getattr(endpoint, "get_subscription_count", None) or endpoint.get_publisher_count
        deadline = time.monotonic() + timeout_s
        while counter() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{endpoint.topic_name}: {counter()} matched endpoints after {timeout_s} s, "
                                     f"wanted {count}")
            time.sleep(0.02)

    def wait_for_graph(self, topic: str, *, publishers: int = 0, subscribers: int = 0, timeout_s: float = 20.0) -> None:
        """Until the ROS graph shows that many publishers/subscribers on `topic` (fully qualified)."""
        deadline = time.monotonic() + timeout_s
        while (self.node.count_publishers(topic) < publishers or self.node.count_subscribers(topic) < subscribers):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: {self.node.count_publishers(topic)} publishers, "
                                     f"{self.node.count_subscribers(topic)} subscribers after {timeout_s} s")
            time.sleep(0.05)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture
def ros_node(ros_env) -> Iterator[RosProbe]:
    probe = RosProbe()
    yield probe
    probe.close()


@pytest.fixture(scope="session")
def encoder_bundle(tmp_path_factory) -> Path:
    """A tiny-preset encoder bundle (random weights, real forward passes) whose token table trained slots 0-4 + 9,
    i.e. every sensor family but not slots 5-8."""
    import torch

    from anytouch_policy.model import AnyTouchEncoder, save_encoder_bundle

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bundles") / "encoder-tiny"
    save_encoder_bundle(path, AnyTouchEncoder.from_preset("anytouch-tiny"))
    return path


@pytest.fixture(scope="session")
def pour_policy(tmp_path_factory, encoder_bundle) -> Path:
    """A policy bundle over sensors left (gelsight_mini) and right (digit) on the tiny encoder, built with the policy
    API's public save function; its head always says pour (zero output weights, a pour bias), so a test knows the
    actions while every input still goes through the real encoder and head."""
    import torch

    from anytouch_policy.actions import Action
    from anytouch_policy.model.runtime import TokenMode
    from anytouch_policy.policy.bundle import save_policy_bundle
    from anytouch_policy.policy.config import HeadConfig, PolicySensor, PolicySpec, ReferenceMode
    from anytouch_policy.policy.head import PolicyHead
    from anytouch_policy.sensors import SensorType

    sensors = [("left", SensorType.GELSIGHT_MINI), ("right", SensorType.DIGIT)]
    head_config = HeadConfig(sensors=2, embed_dim=32, reference=True, conditioning=2, hidden=16, layers=1)
    head = PolicyHead(head_config)
    with torch.no_grad():
        last = head.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([5.0 if a is Action.POUR else 0.0 for a in Action]))
    config = PolicySpec(sensors=[PolicySensor(n, k) for n, k in sensors], frames=3, stride=1,
                        token_mode=TokenMode.SPECIFIC, conditioning=("initial_g", "target_g"),
                        reference=ReferenceMode.EPISODE_START, head=head_config,
                        variant={"mode": "frozen", "dynamic": True},
                        training={"note": "test fixture: always pour"})
    return save_policy_bundle(tmp_path_factory.mktemp("bundles") / "policy-pour", config=config, head=head,
                              encoder_bundle=encoder_bundle)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the DDS environment (directly or through start_node / ros_node) are `ros` tests."""
    for item in items:
        if "ros_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ros)
