"""Episodes on disk: one rosbag2 directory (MCAP by default, sqlite3 read too) per demonstration or rollout.

    EpisodeWriter ──> <root>/<name>.incomplete/<name>.incomplete.mcap   (while recording: the bag is being written)
         close() ───> <root>/<name>/<name>.mcap    (finished: metadata.yaml + custom_data complete=true; the file is
                                                   renamed before the folder, so nothing in it says "incomplete")
    interrupted ───> <root>/<name>.incomplete/    (closed cleanly but complete=false, or no metadata.yaml at all)

A finished episode is never touched again, and anything that was interrupted keeps the `.incomplete` suffix, so a
crash or Ctrl-C while recording can only ever affect the episode that was open. The reader refuses incomplete
episodes unless asked, and `scan_episodes` reports every skipped directory with its reason. Recordings made before
the rename (a finished `<name>/` holding `<name>.incomplete.mcap`) read the same: metadata.yaml names the file.

Episode metadata (initial/target grams, sensors, rig, note, ...) is one JSON string under the rosbag2
`custom_data` key "anytouch_episode", so `ros2 bag info` shows it and no sidecar file can get lost.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import Field, model_validator
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_typestore

from anytouch_policy.actions import CONTROL_RATE_HZ, DEFAULT_DELTA_PHI_DEG, Action
from anytouch_policy.bounds import POSITIVE
from anytouch_policy.data import topics
from anytouch_policy.data.messages import (
    RosbagsMessage,
    image_msg,
    joint_state_msg,
    pose_step_msg,
    rgb_from_image,
    stamp_from_cdr,
)
from anytouch_policy.errors import EpisodeError, MessageError
from anytouch_policy.schema import config, decode, dump, read_yaml
from anytouch_policy.tactile import StampedFrame

INCOMPLETE_SUFFIX = ".incomplete"
META_KEY = "anytouch_episode"
META_VERSION = 1
TYPESTORE = get_typestore(Stores.ROS2_KILTED)

_TACTILE_RE = re.compile(r"(?:^|/)tactile/(?P<sensor>[^/]+)/image_raw$")


@config(frozen=False, error=EpisodeError)
class EpisodeMeta:
    """What a person or a training run needs to know about an episode besides its messages. Every field is checked
    when it is built or read, naming the field (and the file), instead of failing later inside training without a
    word about which bag it came from."""

    initial_g: float  # beads in the cylinder at the start
    target_g: float  # mass to pour
    sensors: dict[str, str]  # sensor name (topic segment) -> sensor type label (anytouch_policy.sensors)
    rig: str = "sim"  # "sim" or a free name of the real rig
    source: str = "teleop"  # "teleop" | "expert" | "policy"
    note: str = ""
    delta_phi_deg: Annotated[float, POSITIVE] = DEFAULT_DELTA_PHI_DEG
    control_rate_hz: Annotated[float, POSITIVE] = CONTROL_RATE_HZ
    seed: int | None = None  # sim episodes: the rig seed
    final_g: float | None = None  # mass on the scale at the end, when known
    complete: bool = False
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pours_something(self) -> EpisodeMeta:
        if not 0 < self.target_g < self.initial_g:
            raise ValueError(f"target_g ({self.target_g}) must be > 0 and below initial_g ({self.initial_g})")
        return self

    def to_json(self) -> str:
        return json.dumps({"version": META_VERSION, **dump(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> EpisodeMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EpisodeError(f"{where}: custom_data {META_KEY!r} is not JSON ({exc})") from None
        if isinstance(data, dict):
            version = data.pop("version", META_VERSION)
            if version != META_VERSION:
                raise EpisodeError(f"{where}: episode metadata version {version!r}; this anytouch_ros reads version "
                                   f"{META_VERSION} (recorded by a newer release? update anytouch_ros)")
        return decode(cls, data, where=f"{where} (episode metadata)")


@config(foreign=True)
class _BagInfo:
    custom_data: dict[str, str] | None = None  # rosbag2's place for user key/values (ours: META_KEY)


@config(foreign=True)
class _BagMetadata:
    """The part of rosbag2's metadata.yaml this module reads."""

    rosbag2_bagfile_information: _BagInfo


class EpisodeWriter:
    """Writes one episode; a context manager that marks the episode incomplete when left by an exception.

    `write_raw` takes CDR bytes as rclpy hands them to a raw subscription (the recorder node); the typed helpers
    serialise the same messages for writers without ROS (the sim demo), so both paths produce identical bags.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        meta: EpisodeMeta,
        namespace: str = "",
        storage: str = "mcap",
        compress: bool = False,
    ) -> None:
        self.path = Path(path)
        if self.path.name.endswith(INCOMPLETE_SUFFIX):
            raise EpisodeError(f"{self.path}: episode names must not end in {INCOMPLETE_SUFFIX}")
        if self.path.exists():
            raise EpisodeError(f"{self.path} exists already; not overwriting a finished episode")
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise EpisodeError(f"{self.path}: storage must be one of {sorted(plugins)}, got {storage!r}")
        self.meta = meta
        self.namespace = namespace
        self.open_path = self.path.with_name(self.path.name + INCOMPLETE_SUFFIX)
        self._writer = Writer(self.open_path, version=9, storage_plugin=plugins[storage])
        if compress:
            self._writer.set_compression(CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE,
                                         CompressionFormat.ZSTD)
        self._connections: dict[str, Connection] = {}
        self._closed = False

    def open(self) -> EpisodeWriter:
        self._writer.open()
        return self

    def __enter__(self) -> EpisodeWriter:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._closed:
            self.close(complete=exc_type is None)

    def write_raw(self, name: str, msgtype: str, t_ns: int, data: bytes | memoryview) -> None:
        """Write serialised CDR bytes on a relative topic name (see anytouch_policy.data.topics) at log time t_ns."""
        conn = self._connections.get(name)
        if conn is None:
            conn = self._writer.add_connection(topics.qualify(name, self.namespace), msgtype, typestore=TYPESTORE)
            self._connections[name] = conn
        self._writer.write(conn, int(t_ns), data)

    def _write(self, name: str, t_ns: int, msg: RosbagsMessage) -> None:
        msgtype = msg.__msgtype__
        self.write_raw(name, msgtype, t_ns, TYPESTORE.serialize_cdr(msg, msgtype))

    def write_image(self, sensor: str, stamp_ns: int, rgb: np.ndarray, *, t_ns: int | None = None) -> None:
        """A tactile frame stamped at grab time; logged at `t_ns` (defaults to the stamp)."""
        msg = image_msg(TYPESTORE, rgb, stamp_ns, frame_id=f"{sensor}_gel")
        self._write(topics.tactile_topic(sensor), stamp_ns if t_ns is None else t_ns, msg)

    def write_action(self, t_ns: int, action: Action) -> None:
        self._write(topics.ACTION, t_ns, TYPESTORE.types["std_msgs/msg/String"](data=action.label))

    def write_step(self, t_ns: int, delta_deg: float, *, frame_id: str = "tool", axis: str = "y") -> None:
        msg = pose_step_msg(TYPESTORE, t_ns, delta_deg, frame_id=frame_id, axis=axis)
        self._write(topics.CARTESIAN_STEP, t_ns, msg)

    def write_float(self, name: str, t_ns: int, value: float) -> None:
        """A std_msgs/Float64 series such as topics.ARM_TILT or topics.SCALE_MASS."""
        self._write(name, t_ns, TYPESTORE.types["std_msgs/msg/Float64"](data=float(value)))

    def write_sim_state(self, t_ns: int, state: dict[str, float]) -> None:
        self._write(topics.SIM_STATE, t_ns, joint_state_msg(TYPESTORE, t_ns, state))

    def close(self, *, complete: bool = True, **meta_updates: object) -> Path:
        """Finalise the bag. Complete episodes move to their final name; others keep the .incomplete suffix."""
        if self._closed:
            raise EpisodeError(f"{self.path}: episode already closed")
        self._closed = True
        for key, value in meta_updates.items():
            if key not in EpisodeMeta.__dataclass_fields__:
                raise EpisodeError(f"{self.path}: unknown episode metadata field {key!r}")
            setattr(self.meta, key, value)
        self.meta.complete = complete
        self._writer.set_custom_data(META_KEY, self.meta.to_json())
        self._writer.close()
        if not complete:
            return self.open_path
        _name_storage_after(self.open_path, self.path.name)
        self.open_path.rename(self.path)
        return self.path


def _name_storage_after(bag: Path, name: str) -> None:
    """Rename a closed bag's storage file(s) from the open folder's name to `name` (`<name>.incomplete.mcap` ->
    `<name>.mcap`) and point metadata.yaml at them, while the folder is still named .incomplete: a finished episode
    holds no file that says "incomplete" (a cleanup by name must never hit good data).

    Every moment leaves a readable bag: the new name is a hard link until metadata.yaml (replaced atomically) points
    at it, and only then does the old name go. A crash in between leaves the folder's .incomplete name, so the
    episode is still recognised as unfinished.
    """
    meta_path = bag / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    info = meta["rosbag2_bagfile_information"]
    renames = {old: name + old[len(bag.name):] for old in info["relative_file_paths"] if old.startswith(bag.name)}
    for old, new in renames.items():
        try:
            os.link(bag / old, bag / new)
        except OSError:  # a file system without hard links
            os.replace(bag / old, bag / new)
    info["relative_file_paths"] = [renames.get(p, p) for p in info["relative_file_paths"]]
    for entry in info.get("files") or []:
        entry["path"] = renames.get(entry["path"], entry["path"])
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(meta, sort_keys=False))
    os.replace(tmp, meta_path)
    for old in renames:
        (bag / old).unlink(missing_ok=True)


@dataclass
class Episode:
    """An episode's timeline. Frames are loaded on demand: a minute of two sensors is ~1 GB of raw images."""

    path: Path
    meta: EpisodeMeta
    actions: list[tuple[int, Action]]  # (log time ns, action), time-sorted: the 5 Hz ticks
    frame_stamps: dict[str, np.ndarray]  # sensor -> grab stamps (ns), sorted ascending
    series: dict[str, tuple[np.ndarray, np.ndarray]]  # relative topic -> (log times ns, values), e.g. arm/tilt
    _frame_ordinals: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def sensors(self) -> list[str]:
        return sorted(self.frame_stamps)

    def load_frames(self, sensor: str, indices: Iterable[int]) -> dict[int, np.ndarray]:
        """Decode the frames at the given positions of `frame_stamps[sensor]` in one pass over the bag."""
        if sensor not in self.frame_stamps:
            raise EpisodeError(f"{self.path}: no tactile topic for sensor {sensor!r} (have {self.sensors})")
        wanted = {int(self._frame_ordinals[sensor][i]): int(i) for i in set(indices)}
        out: dict[int, np.ndarray] = {}
        if not wanted:
            return out
        with _open_reader(self.path) as reader:
            conns = [c for c in reader.connections if _sensor_of(c.topic) == sensor]
            for ordinal, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
                if ordinal in wanted:
                    out[wanted[ordinal]] = _decode_frame(reader, conn, raw, where=f"{self.path} {conn.topic}")
                    if len(out) == len(wanted):
                        break
        return out

    def iter_frames(self, sensor: str) -> Iterator[StampedFrame]:
        """Every frame of `sensor` in recording order, decoded one at a time (a replay streams a long episode)."""
        if sensor not in self.frame_stamps:
            raise EpisodeError(f"{self.path}: no tactile topic for sensor {sensor!r} (have {self.sensors})")
        with _open_reader(self.path) as reader:
            conns = [c for c in reader.connections if _sensor_of(c.topic) == sensor]
            for conn, _, raw in reader.messages(connections=conns):
                yield StampedFrame(_decode_frame(reader, conn, raw, where=f"{self.path} {conn.topic}"),
                                   stamp_from_cdr(raw))


def _message(reader: AnyReader, conn: Connection, raw: bytes) -> Any:
    """A bag message of the connection's type, a class rosbags builds at run time (so its fields are not typed)."""
    return reader.deserialize(raw, conn.msgtype)


def _decode_frame(reader: AnyReader, conn: Connection, raw: bytes, *, where: str) -> np.ndarray:
    """One tactile image of a bag; a malformed one makes the episode corrupt (EpisodeError)."""
    try:
        return rgb_from_image(_message(reader, conn, raw), where=where)
    except MessageError as exc:
        raise EpisodeError(str(exc)) from None


def _sensor_of(topic: str) -> str | None:
    m = _TACTILE_RE.search(topic)
    return m.group("sensor") if m else None


def _relative(topic: str) -> str | None:
    for name in topics.MSGTYPES:
        if "{" not in name and (topic == "/" + name or topic.endswith("/" + name)):
            return name
    return None


@contextmanager
def _open_reader(path: Path) -> Iterator[AnyReader]:
    reader = AnyReader([path], default_typestore=TYPESTORE)
    try:
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated types for unreadable bags
        raise EpisodeError(f"{path}: cannot open as a rosbag2 episode ({type(exc).__name__}: {exc})") from None
    try:
        yield reader
    finally:
        reader.close()


def _read_meta(path: Path) -> EpisodeMeta:
    """Episode metadata from metadata.yaml's custom_data (the rosbag2 place for user key/values)."""
    info = read_yaml(path / "metadata.yaml", _BagMetadata, error=EpisodeError).rosbag2_bagfile_information
    custom = info.custom_data or {}
    if META_KEY not in custom:
        raise EpisodeError(f"{path}/metadata.yaml: no custom_data {META_KEY!r}; not an anytouch episode")
    return EpisodeMeta.from_json(custom[META_KEY], where=f"{path}/metadata.yaml")


def episode_stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime_ns) of every file of a bag folder: changes whenever the bag's content may have."""
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file()))


def read_episode(path: Path | str, *, allow_incomplete: bool = False, require_actions: bool = True) -> Episode:
    """Read an episode's metadata and timeline (actions, frame stamps, scalar series), not its images."""
    path = Path(path)
    if not path.is_dir():
        raise EpisodeError(f"{path}: episode directory not found")
    if not (path / "metadata.yaml").is_file():
        if path.name.endswith(INCOMPLETE_SUFFIX):
            raise EpisodeError(f"{path}: metadata.yaml missing; the recording was interrupted before the bag was "
                               f"closed")
        raise EpisodeError(f"{path}: metadata.yaml missing, so this is no rosbag2 episode (an interrupted recording "
                           f"would be named *{INCOMPLETE_SUFFIX}; `ros2 bag reindex` rebuilds a lost metadata.yaml)")
    if path.name.endswith(INCOMPLETE_SUFFIX) and not allow_incomplete:
        raise EpisodeError(f"{path}: episode is marked incomplete (recording was interrupted)")
    meta = _read_meta(path)
    if not meta.complete and not allow_incomplete:
        raise EpisodeError(f"{path}: episode is marked incomplete (recording was interrupted)")
    with _open_reader(path) as reader:
        actions: list[tuple[int, Action]] = []
        stamps: dict[str, list[int]] = {}
        series: dict[str, tuple[list[int], list[float]]] = {}
        try:
            for conn, t_ns, raw in reader.messages():
                sensor = _sensor_of(conn.topic)
                if sensor is not None:
                    stamps.setdefault(sensor, []).append(stamp_from_cdr(raw))
                    continue
                rel = _relative(conn.topic)
                if rel == topics.ACTION:
                    actions.append((t_ns, Action.from_label(_message(reader, conn, raw).data)))
                elif rel in (topics.ARM_TILT, topics.SCALE_MASS):
                    ts, vs = series.setdefault(rel, ([], []))
                    ts.append(t_ns)
                    vs.append(_message(reader, conn, raw).data)
        except EpisodeError:
            raise
        except Exception as exc:
            raise EpisodeError(f"{path}: corrupt bag ({type(exc).__name__}: {exc})") from None
    missing = [s for s in meta.sensors if s not in stamps]
    if missing:
        raise EpisodeError(f"{path}: no frames on topic(s) {[topics.tactile_topic(s) for s in missing]}")
    if require_actions and not actions:
        raise EpisodeError(f"{path}: no messages on topic {topics.ACTION!r}")
    actions.sort(key=lambda a: a[0])
    frame_stamps, ordinals = {}, {}
    for sensor, values in stamps.items():
        arr = np.asarray(values, dtype=np.int64)
        order = np.argsort(arr, kind="stable")
        frame_stamps[sensor], ordinals[sensor] = arr[order], order
    return Episode(
        path=path,
        meta=meta,
        actions=actions,
        frame_stamps=frame_stamps,
        series={k: (np.asarray(t, np.int64), np.asarray(v, np.float64)) for k, (t, v) in series.items()},
        _frame_ordinals=ordinals,
    )


@dataclass
class EpisodeScan:
    """Episodes found under some roots: the usable ones (timelines read) and every skipped one with its reason."""

    episodes: list[Episode]
    skipped: list[tuple[Path, str]]


def _candidates(root: Path) -> list[Path]:
    """`root` itself when it is one episode (metadata.yaml, the .incomplete name, or storage files), else every
    visible folder in it: a folder that is no episode is then reported, not silently passed over."""
    if not root.exists():
        raise EpisodeError(f"{root}: no such directory")
    if not root.is_dir():
        raise EpisodeError(f"{root}: a file, not a folder; give the folder that holds the episode folders (or one "
                           f"episode folder)")
    if ((root / "metadata.yaml").is_file() or root.name.endswith(INCOMPLETE_SUFFIX)
            or any(root.glob("*.mcap")) or any(root.glob("*.db3"))):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_episodes(roots: Sequence[Path | str], *,
                  read: Callable[[Path], Episode] = read_episode) -> EpisodeScan:
    """Read every episode folder under the given roots; each one once, however many roots reach it (the same
    root twice, a root and an episode inside it, a symlink), and every folder that cannot be used is listed.
    `read` reads one folder (BagMemo.read_episode keeps each for later runs)."""
    episodes: list[Episode] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for root in map(Path, roots):
        for path in _candidates(root):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                episodes.append(read(path))
            except EpisodeError as exc:
                skipped.append((path, str(exc)))
    return EpisodeScan(episodes=episodes, skipped=skipped)
