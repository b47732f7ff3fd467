"""Episode bags: round trip in both storages, other readers agree, interruptions never lose finished episodes."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from anytouch_policy.actions import Action
from anytouch_policy.data import EpisodeMeta, EpisodeWriter, read_episode, scan_episodes, topics
from anytouch_policy.data.messages import stamp_from_cdr
from anytouch_policy.errors import EpisodeError

SEC = 1_000_000_000


def _meta(**kw):
    return EpisodeMeta(initial_g=100.0, target_g=60.0, sensors={"left": "gelsight_mini", "right": "digit"}, **kw)


def _frame(value, shape=(240, 320, 3)):
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _write_episode(path, *, storage="mcap", ticks=5, namespace=""):
    with EpisodeWriter(path, meta=_meta(note="unit"), storage=storage, namespace=namespace) as w:
        for k in range(ticks * 5):  # 25 Hz frames
            t = 10 * SEC + k * 40_000_000
            w.write_image("left", t, _frame(k))
            w.write_image("right", t + 5_000_000, _frame(1000 + k, (320, 240, 3)))
        for k in range(ticks):
            t = 10 * SEC + (k + 1) * 200_000_000
            w.write_action(t, [Action.POUR, Action.WAIT, Action.RETRACT][k % 3])
            w.write_step(t, 0.25)
            w.write_float(topics.ARM_TILT, t, 40.0 + k)
            w.write_float(topics.SCALE_MASS, t, 1.5 * k)
        w.write_sim_state(t, {"tilt_deg": 41.0, "mass_left_g": 90.0})
    return path


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_roundtrip(tmp_path, storage):
    path = _write_episode(tmp_path / "ep0", storage=storage, namespace="rig1")
    ep = read_episode(path)
    assert ep.meta.complete and ep.meta.note == "unit" and ep.meta.sensors["right"] == "digit"
    assert [a for _, a in ep.actions] == [Action.POUR, Action.WAIT, Action.RETRACT, Action.POUR, Action.WAIT]
    assert ep.sensors == ["left", "right"]
    assert ep.frame_stamps["left"][0] == 10 * SEC and len(ep.frame_stamps["left"]) == 25
    frames = ep.load_frames("left", [0, 7, 24])
    for i in (0, 7, 24):
        np.testing.assert_array_equal(frames[i], _frame(i))
    right = ep.load_frames("right", [3])
    assert right[3].shape == (320, 240, 3)
    np.testing.assert_array_equal(right[3], _frame(1003, (320, 240, 3)))
    t, v = ep.series[topics.ARM_TILT]
    assert list(v) == [40.0, 41.0, 42.0, 43.0, 44.0]


def test_mcap_library_reads_our_bag(tmp_path):
    path = _write_episode(tmp_path / "ep", ticks=3)
    mcap_file = next(path.glob("*.mcap"))
    seen = {}
    with mcap_file.open("rb") as fh:
        for _, channel, _, msg in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            seen.setdefault(channel.topic, []).append(msg)
    assert [m.data for m in seen["/pour/action"]] == ["pour", "wait", "retract"]
    img = seen["/tactile/left/image_raw"][4]
    assert (img.height, img.width, img.encoding) == (240, 320, "rgb8")
    np.testing.assert_array_equal(np.frombuffer(bytes(img.data), np.uint8).reshape(240, 320, 3), _frame(4))
    step = seen["/pour/cartesian_step"][0]
    assert step.header.frame_id == "tool" and step.pose.orientation.y == pytest.approx(np.sin(np.radians(0.125)))


def test_exception_marks_open_episode_incomplete(tmp_path):
    _write_episode(tmp_path / "done")
    with pytest.raises(RuntimeError), EpisodeWriter(tmp_path / "broken", meta=_meta()) as w:
        w.write_image("left", SEC, _frame(0))
        w.write_image("right", SEC, _frame(1))
        raise RuntimeError("operator pulled the plug")
    assert not (tmp_path / "broken").exists()
    assert (tmp_path / "broken.incomplete" / "metadata.yaml").is_file()
    with pytest.raises(EpisodeError, match="incomplete"):
        read_episode(tmp_path / "broken.incomplete")
    assert not read_episode(tmp_path / "broken.incomplete", allow_incomplete=True, require_actions=False).meta.complete
    scan = scan_episodes([tmp_path])
    assert [e.path.name for e in scan.episodes] == ["done"]
    assert [p.name for p, _ in scan.skipped] == ["broken.incomplete"]


def test_kill_mid_episode_leaves_finished_ones_readable(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {str(os.getcwd())!r})
        from anytouch_policy.actions import Action
        from anytouch_policy.data import EpisodeMeta, EpisodeWriter
        meta = lambda: EpisodeMeta(initial_g=100, target_g=60, sensors={{"left": "gelsight_mini"}})
        with EpisodeWriter({str(tmp_path / "first")!r}, meta=meta()) as w:
            w.write_image("left", 1, np.zeros((24, 32, 3), np.uint8)); w.write_action(2, Action.WAIT)
        w = EpisodeWriter({str(tmp_path / "second")!r}, meta=meta()).open()
        for k in range(10**6):
            w.write_image("left", 10 + k, np.zeros((24, 32, 3), np.uint8))
            if k == 50:
                print("recording", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "recording"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert read_episode(tmp_path / "first").meta.complete
    scan = scan_episodes([tmp_path])
    assert [e.path.name for e in scan.episodes] == ["first"]
    (skipped, reason), = scan.skipped
    assert skipped.name == "second.incomplete" and "metadata.yaml missing" in reason


def test_missing_topic_and_corrupt_bag(tmp_path):
    with EpisodeWriter(tmp_path / "noimg", meta=_meta()) as w:
        w.write_action(SEC, Action.WAIT)
    with pytest.raises(EpisodeError, match=r"noimg: no frames on topic\(s\) \['tactile/left/image_raw'"):
        read_episode(tmp_path / "noimg")
    path = _write_episode(tmp_path / "trunc")
    mcap_file = next(path.glob("*.mcap"))
    mcap_file.write_bytes(mcap_file.read_bytes()[: mcap_file.stat().st_size // 2])
    with pytest.raises(EpisodeError, match="trunc"):
        read_episode(path)


def test_a_malformed_image_in_a_bag_makes_the_episode_corrupt(tmp_path):
    """Readers (training, replay) catch EpisodeError: a bad frame names the bag and topic, and is no MessageError."""
    from anytouch_policy.data.episode import TYPESTORE
    from anytouch_policy.data.messages import image_msg

    msg = image_msg(TYPESTORE, _frame(1, (2, 2, 3)), 10 * SEC, frame_id="left_gel")
    msg.encoding = "mono8"
    path = tmp_path / "ep"
    with EpisodeWriter(path, meta=EpisodeMeta(initial_g=100.0, target_g=60.0, sensors={"left": "digit"})) as w:
        w.write_raw(topics.tactile_topic("left"), "sensor_msgs/msg/Image", 10 * SEC,
                    TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))
        w.write_action(11 * SEC, Action.WAIT)
    ep = read_episode(path)
    with pytest.raises(EpisodeError, match=f"{path}.*tactile/left/image_raw: encoding 'mono8' is not rgb8/bgr8"):
        ep.load_frames("left", [0])
    with pytest.raises(EpisodeError, match="encoding 'mono8'"):
        next(ep.iter_frames("left"))


def test_writer_refuses_overwrite_and_bad_names(tmp_path):
    _write_episode(tmp_path / "ep")
    with pytest.raises(EpisodeError, match="exists already"):
        EpisodeWriter(tmp_path / "ep", meta=_meta())
    with pytest.raises(EpisodeError, match="must not end"):
        EpisodeWriter(tmp_path / "x.incomplete", meta=_meta())


def test_stamp_read_without_decoding(tmp_path):
    from anytouch_policy.data.episode import TYPESTORE
    from anytouch_policy.data.messages import image_msg
    raw = TYPESTORE.serialize_cdr(image_msg(TYPESTORE, _frame(1, (2, 2, 3)), 1_700_000_000_123_456_789, frame_id="a"),
                                  "sensor_msgs/msg/Image")
    assert stamp_from_cdr(raw) == 1_700_000_000_123_456_789


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_finished_episode_holds_no_file_named_incomplete(tmp_path, storage):
    """`find -name '*.incomplete*' -delete` must only ever hit unfinished recordings."""
    path = _write_episode(tmp_path / "ep", storage=storage, ticks=2)
    names = [p.name for p in path.rglob("*")]
    assert not [n for n in names if "incomplete" in n], names
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert f"ep{suffix}" in names
    assert read_episode(path).meta.complete and len(read_episode(path).load_frames("left", [0])) == 1


def test_episodes_recorded_before_the_rename_still_read(tmp_path):
    """Older recordings: a finished `<name>/` holding `<name>.incomplete.mcap`, which metadata.yaml names."""
    path = _write_episode(tmp_path / "old", ticks=2)
    (path / "old.mcap").rename(path / "old.incomplete.mcap")
    meta = path / "metadata.yaml"
    meta.write_text(meta.read_text().replace("old.mcap", "old.incomplete.mcap"))
    ep = read_episode(path)
    assert ep.meta.complete and [a for _, a in ep.actions] == [Action.POUR, Action.WAIT]
    np.testing.assert_array_equal(ep.load_frames("left", [3])[3], _frame(3))
    assert [e.path.name for e in scan_episodes([tmp_path]).episodes] == ["old"]


def test_a_crash_while_finishing_leaves_a_readable_incomplete_episode(tmp_path, monkeypatch):
    """Killed after the storage file got its final name but before the folder did: still .incomplete, readable."""
    from pathlib import Path

    def crash(self, target):
        raise KeyboardInterrupt("killed")

    writer = EpisodeWriter(tmp_path / "ep", meta=_meta()).open()
    writer.write_image("left", SEC, _frame(0))
    writer.write_image("right", SEC, _frame(1, (320, 240, 3)))
    writer.write_action(SEC, Action.WAIT)
    monkeypatch.setattr(Path, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        writer.close()
    monkeypatch.undo()
    assert not (tmp_path / "ep").exists()
    left = tmp_path / "ep.incomplete"
    assert sorted(p.name for p in left.iterdir()) == ["ep.mcap", "metadata.yaml"]
    with pytest.raises(EpisodeError, match="marked incomplete"):
        read_episode(left)
    assert [a for _, a in read_episode(left, allow_incomplete=True).actions] == [Action.WAIT]
    scan = scan_episodes([tmp_path])
    assert scan.episodes == [] and [p.name for p, _ in scan.skipped] == ["ep.incomplete"]


def test_scan_names_what_it_cannot_use(tmp_path):
    _write_episode(tmp_path / "bags" / "good", ticks=2)
    (tmp_path / "bags" / "notes").mkdir()  # no metadata.yaml and not an interrupted recording
    (tmp_path / "bags" / ".hidden").mkdir()
    scan = scan_episodes([tmp_path / "bags"])
    assert [e.path.name for e in scan.episodes] == ["good"]
    ((skipped, reason),) = scan.skipped
    assert skipped.name == "notes" and "notes: metadata.yaml missing, so this is no rosbag2 episode" in reason
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(EpisodeError, match="file.txt: a file, not a folder"):
        scan_episodes([tmp_path / "file.txt"])


@pytest.mark.parametrize(("fields", "message"), [
    ({"target_g": "sixty"}, "target_g must be a number, got 'sixty'"),
    ({"target_g": 150.0}, r"target_g \(150.0\) must be > 0 and below initial_g \(100.0\)"),
    ({"initial_g": float("nan")}, "initial_g must be a finite number, got nan"),
    ({"sensors": ["left"]}, r"sensors must be a mapping, got \['left'\]"),
    ({"sensors": {"left": 3}}, r"sensors.left must be a string, got 3"),
    ({"seed": "3"}, "seed must be an integer, got '3'"),
    ({"complete": 1}, "complete must be true or false, got 1"),
])
def test_metadata_values_are_checked(fields, message):
    base = {"initial_g": 100.0, "target_g": 60.0, "sensors": {"left": "digit"}}
    with pytest.raises(EpisodeError, match=message):
        EpisodeMeta(**(base | fields))
    with pytest.raises(EpisodeError, match=r"^bag/metadata.yaml \(episode metadata\): "):  # the file is named too
        EpisodeMeta.from_json(json.dumps(base | fields), where="bag/metadata.yaml")


def test_metadata_of_another_version_is_refused_naming_the_file():
    base = {"initial_g": 100.0, "target_g": 60.0, "sensors": {"left": "digit"}}
    assert EpisodeMeta.from_json(json.dumps(base), where="bag").target_g == 60.0  # no version: the first format
    assert EpisodeMeta.from_json(EpisodeMeta(**base).to_json(), where="bag") == EpisodeMeta(**base)
    with pytest.raises(EpisodeError, match=r"^bag/metadata.yaml: episode metadata version 99; this anytouch_ros "
                                           r"reads version 1"):
        EpisodeMeta.from_json(json.dumps(base | {"version": 99}), where="bag/metadata.yaml")
