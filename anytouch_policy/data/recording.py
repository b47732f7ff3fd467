"""Episodes recorded from live message streams: a writer thread behind a bounded queue (the recorder node's core).

    subscription callbacks ──submit()──> [ bounded queue, counted in bytes ] ──writer thread──> EpisodeWriter.write_raw
    start(meta) / finish(...) ─────────> [ same queue, in order, never dropped ]            ──> open / close the bag

Callers never touch the disk: `submit` appends or, when the queue holds `max_queue_bytes` already, drops the
message and counts the drop per topic. Episode boundaries travel through the same queue, so every message
submitted between start() and finish() lands in that episode and nothing else. `close()` finishes an open episode
as incomplete (it stays `<name>.incomplete`, readable), writes what is queued and joins the thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from anytouch_policy.data.episode import INCOMPLETE_SUFFIX, EpisodeMeta, EpisodeWriter
from anytouch_policy.errors import EpisodeError


def episode_name(prefix: str, when: datetime, index: int) -> str:
    """`<prefix>_<YYYYmmdd-HHMMSS>_<index>`: sorts by time, and the index keeps two starts in one second apart."""
    return f"{prefix}_{when:%Y%m%d-%H%M%S}_{index}"


@dataclass
class RecorderStats:
    """Counters for /diagnostics (a snapshot; the recorder keeps its own)."""

    recording: bool = False
    episode: str = ""  # path of the open episode (.incomplete while open), "" when idle
    episodes_closed: int = 0
    messages_written: int = 0
    queued_messages: int = 0
    queued_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # relative topic -> messages dropped (queue full)
    # relative topic -> messages written into the open episode: a sensor whose frames never arrive shows as missing
    episode_written: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


@dataclass
class _Open:
    path: Path
    meta: EpisodeMeta


@dataclass
class _Finish:
    complete: bool
    updates: dict


_STOP = object()


def _check_meta_fields(updates: dict) -> None:
    unknown = sorted(set(updates) - set(EpisodeMeta.__dataclass_fields__))
    if unknown:
        raise EpisodeError(f"unknown episode metadata fields {unknown}")


class EpisodeRecorder:
    """Owns the writer thread; one episode open at a time. Thread-safe: submit from any thread."""

    def __init__(
        self,
        root: Path | str,
        *,
        prefix: str = "episode",
        namespace: str = "",
        storage: str = "mcap",
        compress: bool = False,
        max_queue_bytes: int = 256 * 1024 * 1024,
        on_closed: Callable[[Path, EpisodeMeta, int], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if max_queue_bytes <= 0:
            raise EpisodeError(f"max_queue_bytes must be > 0, got {max_queue_bytes}")
        self.root = Path(root)
        if not str(root):
            raise EpisodeError("the episode folder is an empty path")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EpisodeError(f"{self.root}: cannot create the episode folder ({exc.strerror or exc})") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise EpisodeError(f"{self.root}: the episode folder is not writable")
        self.prefix, self.namespace, self.storage, self.compress = prefix, namespace, storage, compress
        self.max_queue_bytes = max_queue_bytes
        self._on_closed, self._on_error = on_closed, on_error
        self._cond = threading.Condition()
        self._queue: deque = deque()
        self._stats = RecorderStats()
        self._started = 0
        self._recording = False
        self._closing = False
        self._busy = False  # the writer thread is handling an item taken off the queue
        self._thread = threading.Thread(target=self._run, name="episode-writer", daemon=True)
        self._thread.start()

    @property
    def recording(self) -> bool:
        return self._recording

    def stats(self) -> RecorderStats:
        with self._cond:
            s = self._stats
            return RecorderStats(recording=self._recording, episode=s.episode, episodes_closed=s.episodes_closed,
                                 messages_written=s.messages_written, queued_messages=s.queued_messages,
                                 queued_bytes=s.queued_bytes, dropped=dict(s.dropped),
                                 episode_written=dict(s.episode_written), last_error=s.last_error)

    def _next_path(self, when: datetime) -> Path:
        while True:
            path = self.root / episode_name(self.prefix, when, self._started)
            self._started += 1
            if not path.exists() and not path.with_name(path.name + INCOMPLETE_SUFFIX).exists():
                return path

    def start(self, meta: EpisodeMeta, *, when: datetime | None = None) -> Path:
        """Open a new episode; returns its final path (it is written at that path + .incomplete until finished)."""
        with self._cond:
            if self._closing:
                raise EpisodeError(f"{self.root}: recorder is closing; no new episode")
            if self._recording:
                raise EpisodeError(f"{self.root}: an episode is already being recorded ({self._stats.episode})")
            path = self._next_path(when or datetime.now())
            self._recording = True
            self._stats.episode = str(path) + INCOMPLETE_SUFFIX
            self._queue.append(_Open(path, meta))
            self._cond.notify()
        return path

    def submit(self, topic: str, msgtype: str, t_ns: int, data: bytes | memoryview) -> bool:
        """Queue one serialised message for the open episode. False: no episode open, or dropped (queue full)."""
        with self._cond:
            if not self._recording:
                return False
            if self._stats.queued_bytes + len(data) > self.max_queue_bytes:
                self._stats.dropped[topic] = self._stats.dropped.get(topic, 0) + 1
                return False
            self._queue.append((topic, msgtype, t_ns, data))
            self._stats.queued_bytes += len(data)
            self._stats.queued_messages += 1
            self._cond.notify()
        return True

    def finish(self, *, complete: bool = True, **meta_updates: object) -> bool:
        """Close the open episode after everything submitted so far (complete -> renamed to its final name).
        `meta_updates` are EpisodeMeta fields (final_g, extra, ...). False when no episode is open."""
        _check_meta_fields(meta_updates)
        with self._cond:
            if not self._recording:
                return False
            self._recording = False
            self._queue.append(_Finish(complete, meta_updates))
            self._cond.notify()
        return True

    def close(self, *, timeout_s: float = 60.0, **meta_updates: object) -> None:
        """Finish an open episode as incomplete, write what is queued, stop the thread (idempotent)."""
        _check_meta_fields(meta_updates)
        with self._cond:
            if self._recording:
                self._recording = False
                self._queue.append(_Finish(False, meta_updates))
            if not self._closing:
                self._closing = True
                self._queue.append(_STOP)
                self._cond.notify()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            raise EpisodeError(f"{self.root}: episode writer did not finish within {timeout_s} s")

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until everything queued has been written (tests, orderly shutdown); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout=timeout_s)

    def _error(self, text: str) -> None:
        with self._cond:
            self._stats.last_error = text
        if self._on_error is not None:
            self._on_error(text)

    def _run(self) -> None:
        writer: EpisodeWriter | None = None
        failed = False  # the open episode hit a write error: drop its remaining messages, close it incomplete
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                item = self._queue.popleft()
                self._busy = True
                if isinstance(item, tuple):
                    self._stats.queued_bytes -= len(item[3])
                    self._stats.queued_messages -= 1
            try:
                if item is _STOP:
                    return
                if isinstance(item, _Open):
                    writer, failed = None, False  # episode_written is empty: the last _Finish emptied it
                    try:
                        writer = EpisodeWriter(item.path, meta=item.meta, namespace=self.namespace,
                                               storage=self.storage, compress=self.compress).open()
                    except Exception as exc:  # disk full, permissions, a clashing name: report, record nothing
                        self._error(f"{item.path}: cannot open episode ({type(exc).__name__}: {exc})")
                elif isinstance(item, _Finish):
                    if writer is not None:
                        with self._cond:
                            count = sum(self._stats.episode_written.values())
                        self._close(writer, complete=item.complete and not failed, updates=item.updates, count=count)
                    writer = None
                    with self._cond:
                        self._stats.episode, self._stats.episode_written = "", {}
                elif writer is not None and not failed:
                    try:
                        writer.write_raw(*item)
                        with self._cond:
                            self._stats.messages_written += 1
                            written = self._stats.episode_written
                            written[item[0]] = written.get(item[0], 0) + 1
                    except Exception as exc:
                        failed = True
                        self._error(f"{writer.open_path}: write failed on {item[0]} ({type(exc).__name__}: {exc}); "
                                    "the rest of this episode is dropped")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _close(self, writer: EpisodeWriter, *, complete: bool, updates: dict, count: int) -> None:
        try:
            path = writer.close(complete=complete, **updates)
        except Exception as exc:
            self._error(f"{writer.open_path}: closing failed ({type(exc).__name__}: {exc}); "
                        "the episode stays .incomplete")
            return
        with self._cond:
            self._stats.episodes_closed += 1
        if self._on_closed is not None:
            self._on_closed(path, writer.meta, count)
