"""EpisodeRecorder: the writer thread behind the recorder node (ordering, names, drops, errors, shutdown)."""

from datetime import datetime

import numpy as np
import pytest

from anytouch_policy.actions import Action
from anytouch_policy.data import EpisodeMeta, read_episode, scan_episodes, topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.messages import image_msg
from anytouch_policy.data.recording import EpisodeRecorder, episode_name
from anytouch_policy.errors import EpisodeError

SEC = 1_000_000_000
IMAGE = "sensor_msgs/msg/Image"
STRING = "std_msgs/msg/String"


def _meta():
    return EpisodeMeta(initial_g=100.0, target_g=60.0, sensors={"left": "gelsight_mini"})


def _image(k: int) -> bytes:
    rgb = np.full((24, 32, 3), k % 256, np.uint8)
    return bytes(TYPESTORE.serialize_cdr(image_msg(TYPESTORE, rgb, k * SEC, frame_id="left_gel"), IMAGE))


def _action(action: Action) -> bytes:
    return bytes(TYPESTORE.serialize_cdr(TYPESTORE.types[STRING](data=action.label), STRING))


def _feed(rec: EpisodeRecorder, first: int, count: int) -> None:
    for k in range(first, first + count):
        rec.submit(topics.tactile_topic("left"), IMAGE, k * SEC, _image(k))
        rec.submit(topics.ACTION, STRING, k * SEC + 1, _action(Action.POUR if k % 2 else Action.WAIT))


def test_episodes_get_exactly_the_messages_between_start_and_finish(tmp_path):
    closed = []
    rec = EpisodeRecorder(tmp_path, prefix="demo", on_closed=lambda p, m, n: closed.append((p.name, m.complete, n)))
    assert not rec.submit(topics.ACTION, STRING, 0, _action(Action.WAIT))  # nothing open: ignored
    when = datetime(2026, 11, 25, 9, 30, 5)
    first = rec.start(_meta(), when=when)
    assert first.name == "demo_20261125-093005_0" == episode_name("demo", when, 0)
    _feed(rec, 1, 10)
    assert rec.finish(complete=True, final_g=58.5)
    _feed(rec, 100, 3)  # between episodes: not recorded anywhere
    second = rec.start(_meta(), when=when)
    assert second.name == "demo_20261125-093005_1"
    _feed(rec, 200, 4)
    assert rec.wait_idle()  # the open episode's own counts, per topic (the first episode's 10 + 10 are not in them)
    assert rec.stats().episode_written == {"tactile/left/image_raw": 4, "pour/action": 4}
    rec.close(extra={"end_reason": "shutdown"})
    assert rec.stats().episode_written == {}
    assert closed == [(first.name, True, 20), (second.name + ".incomplete", False, 8)]
    ep = read_episode(first)
    assert ep.meta.complete and ep.meta.final_g == 58.5
    assert list(ep.frame_stamps["left"]) == [k * SEC for k in range(1, 11)]
    assert [a for _, a in ep.actions][:2] == [Action.POUR, Action.WAIT]
    np.testing.assert_array_equal(ep.load_frames("left", [4])[4], np.full((24, 32, 3), 5, np.uint8))
    cut = read_episode(tmp_path / (second.name + ".incomplete"), allow_incomplete=True)
    assert list(cut.frame_stamps["left"]) == [k * SEC for k in range(200, 204)]
    assert not cut.meta.complete and cut.meta.extra == {"end_reason": "shutdown"}
    assert rec.stats().episodes_closed == 2 and rec.stats().messages_written == 28


def test_names_never_reuse_an_existing_episode(tmp_path):
    when = datetime(2026, 1, 2, 3, 4, 5)
    (tmp_path / "ep_20260102-030405_0").mkdir()
    (tmp_path / "ep_20260102-030405_1.incomplete").mkdir()
    rec = EpisodeRecorder(tmp_path, prefix="ep")
    assert rec.start(_meta(), when=when).name == "ep_20260102-030405_2"
    with pytest.raises(EpisodeError, match="already being recorded"):
        rec.start(_meta(), when=when)
    rec.close()


def test_full_queue_drops_and_counts_per_topic(tmp_path):
    rec = EpisodeRecorder(tmp_path, max_queue_bytes=len(_image(0)) - 1)
    rec.start(_meta())
    assert not rec.submit(topics.tactile_topic("left"), IMAGE, SEC, _image(1))  # larger than the whole queue
    assert rec.submit(topics.ACTION, STRING, SEC, _action(Action.WAIT))
    assert rec.wait_idle()
    stats = rec.stats()
    assert stats.dropped == {"tactile/left/image_raw": 1} and stats.messages_written == 1 and stats.queued_bytes == 0
    rec.close()


def test_write_error_is_reported_and_the_episode_stays_incomplete(tmp_path):
    errors = []
    rec = EpisodeRecorder(tmp_path, prefix="x", on_error=errors.append)
    path = rec.start(_meta())
    _feed(rec, 2, 1)
    rec.submit("bogus/topic", "no_such_pkg/msg/Nothing", SEC, b"\x00\x01\x00\x00")
    rec.submit(topics.ACTION, STRING, 2 * SEC, _action(Action.POUR))  # dropped: the episode already failed
    rec.finish(complete=True)
    rec.close()
    assert len(errors) == 1 and "write failed on bogus/topic" in errors[0] and rec.stats().last_error == errors[0]
    assert not path.exists()
    ep = read_episode(path.with_name(path.name + ".incomplete"), allow_incomplete=True)
    assert not ep.meta.complete and [a for _, a in ep.actions] == [Action.WAIT]


def test_bad_metadata_is_refused_before_it_reaches_the_thread(tmp_path):
    rec = EpisodeRecorder(tmp_path)
    rec.start(_meta())
    with pytest.raises(EpisodeError, match="unknown episode metadata fields"):
        rec.finish(complete=True, final_mass=3.0)
    assert rec.recording  # still open, still closable
    rec.close()
    assert scan_episodes([tmp_path]).episodes == []
    with pytest.raises(EpisodeError, match="closing"):
        rec.start(_meta())
