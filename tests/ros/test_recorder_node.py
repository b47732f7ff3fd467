"""Recorder node over DDS, in separate processes: episodes from teleop-style events, read back with rosbags and with
the mcap library; SIGINT or SIGKILL mid-episode never costs a finished episode."""

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.context import Context
from std_msgs.msg import String

from anytouch_policy.actions import Action
from anytouch_policy.data import read_episode, scan_episodes, topics
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_ros import qos
from anytouch_ros.recorder_node import RecorderNode

RIG = str(Path(__file__).with_name("rig_publisher.py"))
SENSORS = {"left": "gelsight_mini", "right": "digit"}
SHAPES = {"left": (240, 320), "right": (320, 240)}


def _wait_for_dir(root: Path, pattern: str, timeout_s: float = 15.0) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"nothing like {pattern} in {root}: {sorted(p.name for p in root.glob('*'))}")


def _check_frames(ep, sensor: str, index: int) -> None:
    """Every recorded frame is the rig's frame k for some k, and k increases without a gap."""
    frames = ep.load_frames(sensor, range(len(ep.frame_stamps[sensor])))
    ks = []
    for i in range(len(frames)):
        img = frames[i]
        assert img.shape == (*SHAPES[sensor], 3)
        k = int(img[0, 0, 0]) + 251 * int(img[0, 0, 1])
        assert (img == np.array([k % 251, k // 251 % 251, index], np.uint8)).all()
        ks.append(k)
    assert ks == list(range(ks[0], ks[0] + len(ks))), f"{sensor}: frames missing or reordered: {ks}"


def _mcap_messages(bag: Path) -> dict[str, list]:
    (mcap_file,) = bag.glob("*.mcap")
    seen: dict[str, list] = {}
    with mcap_file.open("rb") as fh:
        for _, channel, _, msg in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            seen.setdefault(channel.topic, []).append(msg)
    return seen


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_episodes_recorded_and_interrupted(start_node, ros_node, tmp_path, stop_signal):
    out = tmp_path / "episodes"
    diagnostics = ros_node.collect(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    events = ros_node.publisher(String, topics.EPISODE_EVENT, qos.LATCHED)
    recorder = start_node("anytouch_ros.recorder_node", timeout_s=90, params={
        "output_dir": str(out), "prefix": "demo", "sensors": list(SENSORS), "sensor_types": list(SENSORS.values()),
        "target_g": 55.0, "note": "pytest", "rig": "sim", "seed": 3, "diagnostics_period_s": 0.5})
    rig = start_node(RIG, args=("--sensors", ",".join(f"{k}:{v}" for k, v in SENSORS.items())), timeout_s=90)
    rig.wait_for_output("rig: all matched", timeout_s=30)
    ros_node.wait_for_match(events, 1)

    events.publish(String(data="start"))
    first_open = _wait_for_dir(out, "demo_*_0.incomplete")
    time.sleep(1.6)
    events.publish(String(data="end"))
    first = _wait_for_dir(out, "demo_*_0")
    assert first.name == first_open.name.removesuffix(".incomplete")
    assert not [p.name for p in first.rglob("*") if "incomplete" in p.name]  # a cleanup by name spares it

    events.publish(String(data="start"))
    second_open = _wait_for_dir(out, "demo_*_1.incomplete")
    time.sleep(1.0)
    status = recorder.stop(stop_signal)
    assert status == (0 if stop_signal == signal.SIGINT else -signal.SIGKILL)
    rig.stop(signal.SIGINT)

    # the finished episode: complete, all topics, frames intact, metadata from parameters + last scale reading
    ep = read_episode(first)
    assert ep.meta.complete and ep.meta.target_g == 55.0 and ep.meta.note == "pytest" and ep.meta.seed == 3
    assert ep.meta.sensors == SENSORS and ep.meta.extra == {"end_reason": "end"}
    t_mass, mass = ep.series[topics.SCALE_MASS]
    assert ep.meta.final_g == mass[-1] and np.all(np.diff(mass) > 0)
    for index, sensor in enumerate(SENSORS):
        assert 25 <= len(ep.frame_stamps[sensor]) <= 60, "~1.6 s of 25 Hz frames"
        _check_frames(ep, sensor, index)
    assert 5 <= len(ep.actions) <= 12
    log_times = [t for t, _ in ep.actions]
    assert log_times == sorted(log_times) and {a for _, a in ep.actions} == set(Action)
    assert len(ep.series[topics.ARM_TILT][0]) == len(ep.actions)

    # the mcap library's own reader sees the same messages
    seen = _mcap_messages(first)
    assert {f"/{t}" for t in (topics.ACTION, topics.CARTESIAN_STEP, topics.ARM_TILT, topics.SCALE_MASS,
                              topics.SIM_STATE)} | {f"/tactile/{s}/image_raw" for s in SENSORS} == set(seen)
    assert [m.data for m in seen["/pour/action"]] == [a.label for _, a in ep.actions]
    for sensor in SENSORS:
        msgs = seen[f"/tactile/{sensor}/image_raw"]
        assert len(msgs) == len(ep.frame_stamps[sensor])
        assert (msgs[0].height, msgs[0].width, msgs[0].encoding) == (*SHAPES[sensor], "rgb8")
        assert msgs[0].header.frame_id == f"{sensor}_gel"
    assert list(seen["/sim/state"][-1].name) == ["tilt_deg", "poured_g"]
    assert {m.pose.orientation.y > 0 for m in seen["/pour/cartesian_step"]} == {True, False}

    # the interrupted episode: never renamed; readable when closed by SIGINT, clearly unfinished after SIGKILL
    assert second_open.exists() and not second_open.with_name(second_open.name.removesuffix(".incomplete")).exists()
    with pytest.raises(EpisodeError):
        read_episode(second_open)
    scan = scan_episodes([out])
    assert [e.path for e in scan.episodes] == [first] and [p for p, _ in scan.skipped] == [second_open]
    if stop_signal == signal.SIGINT:
        cut = read_episode(second_open, allow_incomplete=True)
        assert not cut.meta.complete and cut.meta.extra == {"end_reason": "shutdown"}
        assert len(cut.frame_stamps["left"]) >= 10 and cut.meta.final_g is not None
        assert len(_mcap_messages(second_open)["/tactile/right/image_raw"]) == len(cut.frame_stamps["right"])
        assert "episode kept as incomplete" in recorder.output()
    else:
        assert "metadata.yaml missing" in dict(scan.skipped)[second_open]

    # /diagnostics reported the recorder's state, without drops
    reports = [s for arr in diagnostics.msgs for s in arr.status if s.name == "/recorder: recorder"]
    assert reports and {kv.key: kv.value for kv in reports[-1].values}["dropped"] == "0"
    assert any(s.message == "recording" for s in reports) and reports[-1].level == b"\x00"


def test_stale_latched_start_is_ignored_and_bad_parameters_refused(start_node, ros_node, tmp_path):
    events = ros_node.publisher(String, topics.EPISODE_EVENT, qos.LATCHED)
    events.publish(String(data="start"))  # latched: a recorder that appears later still receives it
    time.sleep(1.5)
    recorder = start_node("anytouch_ros.recorder_node", timeout_s=60, params={
        "output_dir": str(tmp_path / "eps"), "event_max_age_s": 1.0})
    recorder.wait_for_output(r"ignoring episode event 'start' published \d+\.\d s ago")
    assert not (tmp_path / "eps").exists() or not any((tmp_path / "eps").iterdir())
    assert recorder.stop(signal.SIGTERM) == -signal.SIGTERM  # closed, then ends on the signal (anytouch_ros.base)
    bad = start_node("anytouch_ros.recorder_node", name="bad", timeout_s=60, params={
        "sensors": ["left", "right"], "sensor_types": ["digit"]})
    assert bad.wait() == 2
    assert "sensors (['left', 'right']) and sensor_types (['digit']) must have the same length" in bad.output()


def _construct(*args: str) -> None:
    """Build a RecorderNode in this process (as the node's main() would) and tear it down again."""
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "-r", "__node:=t", *args])
    try:
        node = RecorderNode(context=context)
        node.destroy_node()
        node.close()
    finally:
        context.try_shutdown()


@pytest.mark.parametrize(("args", "match"), [
    (["-p", "target_g:=150.0"], r"parameters of node /t: EpisodeMeta: target_g \(150.0\) must be > 0 and below "
                                r"initial_g \(100.0\)"),
    (["-p", "initial_g:=60.0"], r"target_g \(60.0\) must be > 0 and below initial_g \(60.0\)"),
    (["-p", "output_dir:={file}/episodes"], r"parameter output_dir \('.*file/episodes'\): .*file/episodes: cannot "
                                            r"create the episode folder \(Not a directory\)"),
    (["-p", "output_dir:=''"], r"parameter output_dir \(''\): the episode folder is an empty path"),
])
def test_recorder_refuses_bad_metadata_and_output_folders_at_start(ros_env, tmp_path, args, match):
    (tmp_path / "file").write_text("a plain file")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    defaults = [] if any(a.startswith("output_dir") for a in args) else ["-p", f"output_dir:={tmp_path / 'eps'}"]
    with pytest.raises(ConfigError, match=match):
        _construct(*defaults, *args)
    _construct("-p", f"output_dir:={tmp_path / 'eps'}")  # the defaults start
