"""`anytouch bringup`'s supervisor with real nodes: prefixed output, namespaced topics, teleop on the operator's
terminal, Ctrl-C making every recorder close its open episode cleanly (readable, .incomplete) before the set
exits with the terminal restored, and a node stopped by a signal from elsewhere named with the cause and a non-zero
exit."""

import os
import re
import signal
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray

from anytouch_policy.actions import Action
from anytouch_policy.bringup.plan import package_config
from anytouch_policy.data import read_episode, topics
from anytouch_ros import qos
from tests.ros.diagnostics import newest_status, status_values

REPO = Path(__file__).resolve().parents[2]
RIG = str(Path(__file__).with_name("rig_publisher.py"))

DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from anytouch_policy.bringup.plan import Mode, NodeSpec, Plan, run_plan
    config, out, essential = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
    nodes = tuple(NodeSpec(name, "recorder_node", (config,), {"output_dir": out, "prefix": name, "auto_start": True,
                                                              "sensors": ["left"], "sensor_types": ["gelsight_mini"]},
                           namespace="rig7", essential=name in essential) for name in ("rec_a", "rec_b"))
    sys.exit(run_plan(Plan(Mode.RECORD, True, "rig7", nodes), stop_timeout_s=15))
""")


def _wait(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _start_recorders(ros_env, start_node, ros_node, tmp_path, *,
                     essential: str) -> tuple[subprocess.Popen, Path, Path]:
    """Two supervised recorders (rec_a, rec_b; `essential` names the essential ones) recording a rig's stream."""
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    out = tmp_path / "eps"
    log = tmp_path / "bringup.log"
    with log.open("w") as fh:
        # 150 s: more than the test's own waits (40 + 30 + 1 + 40); -k 30: the SIGINT sent to `timeout` also arms
        # its kill-after, which must outlast the supervisor's 15 s stop window
        bringup = subprocess.Popen(["timeout", "-k", "30", "150", sys.executable, "-c", DRIVER,
                                    str(package_config("record.yaml")), str(out), essential],
                                   env=ros_env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)
    rig = start_node(RIG, namespace="rig7", timeout_s=150)
    rig.wait_for_output("rig: all matched", timeout_s=40)  # a recorder subscribed to each (namespaced) topic
    # each recorder's diagnostics count what its open episode holds: wait for frames and actions in both (a loaded
    # machine can take seconds between the first match and the second recorder's first frame)
    diagnostics.wait_until(lambda items: all(_written(items, name) for name in ("rec_a", "rec_b")), timeout_s=40)
    return bringup, out, log


def _written(items, name: str) -> bool:
    """The newest diagnostics of recorder `name` report >= 10 frames of the left sensor and >= 2 actions."""
    status = newest_status((item.msg for item in items), f"/rig7/{name}: recorder")
    if status is None:
        return False
    values = status_values(status)
    return int(values.get("written tactile/left/image_raw", 0)) >= 10 and int(values.get("written pour/action", 0)) >= 2


def _check_closed_by_signal(out: Path, name: str) -> None:
    (path,) = out.glob(f"{name}_*.incomplete")
    ep = read_episode(path, allow_incomplete=True)
    assert ep.meta.extra == {"end_reason": "shutdown"} and len(ep.frame_stamps["left"]) >= 10
    assert len(ep.actions) >= 2


def test_supervised_recorders_close_their_episodes_on_ctrl_c(ros_env, start_node, ros_node, tmp_path):
    bringup, out, log = _start_recorders(ros_env, start_node, ros_node, tmp_path, essential="rec_a,rec_b")
    try:
        bringup.send_signal(signal.SIGINT)  # to `timeout`, which relays it to the supervisor only
        code = bringup.wait(timeout=40)
        assert code == 0, f"exit {code}:\n{log.read_text()[-3000:]}"
    finally:
        if bringup.poll() is None:
            bringup.kill()
    text = log.read_text()
    assert "[bringup] SIGINT received; stopping all nodes" in text and "exit status 1" not in text
    for name in ("rec_a", "rec_b"):
        assert f"[{name}] [INFO]" in text and "episode kept as incomplete" in text
        _check_closed_by_signal(out, name)


def test_a_node_stopped_by_a_signal_from_elsewhere_is_named_and_fails_the_set(ros_env, start_node, ros_node,
                                                                              tmp_path):
    bringup, out, log = _start_recorders(ros_env, start_node, ros_node, tmp_path, essential="rec_a")
    pids = dict(re.findall(r"(rec_[ab]) \(pid (\d+)\)", log.read_text()))
    try:
        os.kill(int(pids["rec_b"]), signal.SIGKILL)  # not essential: named, the set keeps recording
        _wait(lambda: "rec_b ended on SIGKILL" in log.read_text())
        time.sleep(0.5)
        assert bringup.poll() is None
        os.kill(int(pids["rec_a"]), signal.SIGTERM)  # mid-episode, as a stray `kill` would
        assert bringup.wait(timeout=40) == 1
    finally:
        if bringup.poll() is None:
            bringup.kill()
    text = log.read_text()
    assert "[bringup] rec_b ended on SIGKILL (not sent by bringup); the other nodes keep running" in text
    assert "[bringup] rec_a ended on SIGTERM (not sent by bringup); stopping the other nodes" in text
    assert text.rstrip().splitlines()[-1] == ("[bringup] exit status 1: rec_b ended on SIGKILL (not sent by "
                                              "bringup); rec_a ended on SIGTERM (not sent by bringup)")
    _check_closed_by_signal(out, "rec_a")  # SIGTERM still closes the episode cleanly before the node ends on it


TERMINAL_DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from anytouch_policy.bringup.plan import Mode, NodeSpec, Plan, run_plan
    config, out = Path(sys.argv[1]), sys.argv[2]
    nodes = (NodeSpec("teleop", "teleop_node", (config,), {}, terminal=True),
             NodeSpec("recorder", "recorder_node", (config,), {"output_dir": out, "sensors": [], "sensor_types": []}))
    sys.exit(run_plan(Plan(Mode.RECORD, True, "", nodes), stop_timeout_s=15))
""")


def test_teleop_shares_the_terminal_and_ctrl_c_stops_the_set(start_node, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(TERMINAL_DRIVER)
    out = tmp_path / "eps"
    bringup = start_node(str(driver), tty=True, timeout_s=150,  # more than the waits below (40 + 30 + 0.6 + 40)
                         args=(str(package_config("record.yaml")), str(out)))
    bringup.wait_for_output(r"recorder: connected", timeout_s=40)  # teleop's status line, straight to the terminal
    bringup.write(b"b")  # a key typed in the shared terminal reaches teleop, whose event reaches the recorder
    _wait(lambda: len(list(out.glob("demo_*.incomplete"))) == 1)
    time.sleep(0.6)
    bringup.write(b"\x03")  # Ctrl-C: the terminal's SIGINT to supervisor + teleop; the supervisor SIGINTs the recorder
    code = bringup.wait(40)
    assert code == 0, f"exit {code}:\n{bringup.output()[-3000:]}"
    assert termios.tcgetattr(bringup._slave) == bringup.tty_attrs_before
    text = bringup.output()
    assert "anytouch teleop (hold mode" in text and "[recorder] [INFO]" in text and "[teleop]" not in text
    (path,) = out.glob("demo_*.incomplete")
    ep = read_episode(path, allow_incomplete=True)
    assert not ep.meta.complete and ep.meta.extra["end_reason"] in ("abort", "shutdown")
    assert {a for _, a in ep.actions} == {Action.WAIT}


def test_bringup_pour_runs_a_demo_policy_without_being_told_its_sensors(ros_env, ros_node, mini_policy, tmp_path):
    """README: `anytouch bringup pour --sim --policy B` with a policy of `anytouch demo` (sensor gelsight_mini_left):
    the sensor node publishes under the bundle's name, the encoder accepts it, the policy decides on its embeddings."""
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String

    from anytouch_policy.data import topics
    from anytouch_ros import qos

    actions = ros_node.collect(String, topics.ACTION, qos.COMMAND)
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    log = tmp_path / "bringup.log"
    with log.open("w") as fh:
        bringup = subprocess.Popen(["timeout", "-k", "60", "400", sys.executable, "-m", "anytouch_policy.cli.main",
                                    "bringup", "pour", "--sim", "--policy", str(mini_policy)],
                                   env=ros_env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)

    def deciding() -> bool:
        return any(s.name == "/policy: policy" and s.message == "deciding" for a in diagnostics.msgs for s in a.status)

    try:
        _wait(deciding, timeout_s=300)  # fresh embeddings of gelsight_mini_left reach the policy (4 processes start)
        decided = actions.wait_for(5, timeout_s=30)
        bringup.send_signal(signal.SIGINT)  # `timeout` relays it; its -k must outlast bringup's 10 s stop timeout
        assert bringup.wait(timeout=60) == 0
    finally:
        if bringup.poll() is None:
            bringup.kill()
    assert {r.msg.data for r in decided} <= {a.label for a in Action}
    text = log.read_text()
    assert "[sensor_gelsight_mini_left]" in text and "exit status 1" not in text
