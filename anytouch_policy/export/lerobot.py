"""Episode bags -> a LeRobotDataset v3.0 folder, written with pyarrow (no lerobot import, no Hub, no network).

    meta/info.json                            codebase_version "v3.0", fps, robot_type, features (dtype, shape, names)
    meta/stats.json                           per feature min max mean std count q01..q99 (images per channel, 0..1)
    meta/tasks.parquet                        task_index + task ("pour 60 g of beads from 100 g"), pandas index "task"
    meta/episodes/chunk-000/file-000.parquet  per episode: length, tasks, row range, data file, stats/<feature>/<stat>
    data/chunk-000/file-000.parquet           one row per action tick, one row group per episode, many episodes a file

The layout is LeRobot's own (read from its code, lerobot v0.6.1; docs/export.md). A row is an action tick cut by
the training rule, `align_episode` with a 1-frame window: on every sensor the newest frame at or before the tick,
stored as a lossless PNG (dtype "image"; a video codec would blur the frame-to-frame change the 3-frame window reads).
Tilt and scale are the newest readings at or before the tick, by the same `window_indices` rule.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from anytouch_policy.actions import Action
from anytouch_policy.data import topics
from anytouch_policy.data.samples import (
    EpisodeTicks,
    WindowSpec,
    align_episode,
    policy_sensors,
    usable_episodes,
)
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.export.stats import ImageHistogram, to_json, vector_stats
from anytouch_policy.policy import CONDITIONING_NAMES
from anytouch_policy.tactile import window_indices

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot DEFAULT_CHUNK_SIZE)
DATA_FILE_SIZE_MB = 100  # a data file takes episodes until the next would reach this (DEFAULT_DATA_FILE_SIZE_IN_MB)
VIDEO_FILE_SIZE_MB = 200  # written to info.json as LeRobot does; no videos here
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/" + CHUNK_FILE
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
PNG_LEVEL = 6  # zlib level LeRobot saves "image" features with; 1 encodes ~5x faster, files ~15 % larger
IMAGE_KEY = "observation.images.{sensor}"
STATE_KEY = "observation.state"
GOAL_KEY = "observation.goal_g"
ACTION_KEY = "action"
ACTION_NAMES = ["action_index", "tilt_step_deg"]  # Action class (0 pour, 1 wait, 2 retract), tool-frame step (deg)
#: The columns LeRobot adds to every dataset (lerobot.utils.constants.DEFAULT_FEATURES).
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
#: observation.state columns: the relative topic and its name. Tilt is required, the scale joins where every
#: episode has one (a rig without a scale has no scale/mass topic).
TILT = (topics.ARM_TILT, "tilt_deg")
SCALE = (topics.SCALE_MASS, "scale_g")


def task_text(initial_g: float, target_g: float) -> str:
    """The task string of an episode, e.g. "pour 60 g of beads from 100 g"."""
    return f"pour {target_g:g} g of beads from {initial_g:g} g"


@dataclass
class ExportSummary:
    out: str
    episodes: int
    frames: int
    tasks: list[str]
    sensors: list[str]
    state: list[str]
    dropped_ticks: int  # action ticks before every sensor had a frame (or the arm a tilt reading)
    skipped: list[tuple[str, str]]  # (bag, reason) of every episode not exported
    data_files: int
    bytes: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def output_folder(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """The CLI's output rule: refuse an existing folder unless `overwrite`.

    Yields an empty folder beside `path` that is renamed into place when the block succeeds, so a failed or
    interrupted export leaves nothing half-written. `overwrite` replaces only an earlier dataset (meta/info.json)
    or an empty folder: a mistyped --out must not delete someone's files.
    """
    if path.exists():
        if not overwrite:
            raise ConfigError(f"{path} exists already; pass --overwrite to replace it")
        if not path.is_dir() or (any(path.iterdir()) and not (path / INFO_PATH).is_file()):
            raise ConfigError(f"{path} is not a LeRobot dataset (no {INFO_PATH}); not replacing it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class _Rows:
    """The rows of one episode before its images are read."""

    ticks: EpisodeTicks  # the kept action ticks and their frame positions
    state: np.ndarray  # (N, S) float32
    dropped: int  # ticks without a frame on every sensor or without a state reading


def _series_at(times: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """Position of the newest reading at or before each tick, -1 where there is none yet."""
    return np.asarray([(window_indices(times, int(t), frames=1) or [-1])[0] for t in t_ns], np.int64)


def _rows(ticks: EpisodeTicks, state_topics: Sequence[str]) -> _Rows:
    """Attach the state at each tick; ticks before the first reading of every state topic are dropped."""
    episode = ticks.episode
    at = np.stack([_series_at(episode.series[t][0], ticks.t_ns) for t in state_topics], axis=1)
    keep = (at >= 0).all(axis=1)
    if not keep.any():
        raise EpisodeError(f"{episode.path}: no action tick has a reading of {list(state_topics)} at or before it")
    state = np.stack([episode.series[t][1][at[keep, j]] for j, t in enumerate(state_topics)], axis=1)
    kept = EpisodeTicks(episode=episode, t_ns=ticks.t_ns[keep], actions=ticks.actions[keep],
                        windows=ticks.windows[keep], dropped_ticks=ticks.dropped_ticks)
    return _Rows(ticks=kept, state=state.astype(np.float32), dropped=ticks.dropped_ticks + int((~keep).sum()))


def _state_topics(episodes: Sequence) -> list[tuple[str, str]]:
    """Tilt, plus the scale when every episode has one; a mix is refused rather than silently dropped."""
    no_tilt = [str(e.path) for e in episodes if TILT[0] not in e.series]
    if no_tilt:
        raise EpisodeError(f"no {TILT[0]!r} messages in {no_tilt}; observation.state needs the tilt")
    no_scale = [str(e.path) for e in episodes if SCALE[0] not in e.series]
    if no_scale and len(no_scale) < len(episodes):
        raise EpisodeError(f"{len(no_scale)} of {len(episodes)} episodes have no {SCALE[0]!r} (e.g. {no_scale[0]}); "
                           f"export episodes with and without a scale into separate datasets")
    return [TILT] if no_scale else [TILT, SCALE]


def _check_fps(episodes: Sequence, fps: int) -> None:
    if fps <= 0:
        raise ConfigError(f"--fps must be a positive whole number, got {fps}")
    for ep in episodes:
        if abs(ep.meta.control_rate_hz - fps) > 1e-6:
            raise ConfigError(f"{ep.path}: recorded at {ep.meta.control_rate_hz:g} Hz (control_rate_hz), but --fps "
                              f"is {fps}; one row per action tick needs the two to agree")


def _png(rgb: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def _arrow_type(feature: dict) -> pa.DataType:
    if feature["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    value = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    return value if feature["shape"] == [1] else pa.list_(value, feature["shape"][0])


def _hf_feature(feature: dict) -> dict:
    """The Hugging Face `datasets` type LeRobot gives a feature (get_hf_features_from_features), as Features.to_dict."""
    if feature["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    return value if feature["shape"] == [1] else {"feature": value, "length": feature["shape"][0], "_type": "List"}


def _schema(features: dict[str, dict]) -> pa.Schema:
    hf = json.dumps({"info": {"features": {k: _hf_feature(f) for k, f in features.items()}}})
    return pa.schema([(k, _arrow_type(f)) for k, f in features.items()], metadata={"huggingface": hf})


def _column(values: np.ndarray, feature: dict) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(values, dtype=feature["dtype"]).reshape(-1))
    return flat if feature["shape"] == [1] else pa.FixedSizeListArray.from_arrays(flat, feature["shape"][0])


class _DataFiles:
    """data/chunk-XXX/file-XXX.parquet: whole episodes appended; the next file once one would reach the size limit."""

    def __init__(self, root: Path, schema: pa.Schema, limit_mb: float) -> None:
        self.root, self.schema, self.limit = root, schema, limit_mb * 1024**2
        self.chunk = self.file = 0
        self.files = 0
        self._writer: pq.ParquetWriter | None = None
        self._bytes = 0

    def write(self, table: pa.Table) -> tuple[int, int]:
        """Append one episode (one row group); returns the (chunk, file) it landed in."""
        if self._writer is not None and self._bytes + table.nbytes >= self.limit:
            self.close()
            self.file += 1
            if self.file == CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        if self._writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, compression="snappy", use_dictionary=True)
            self._bytes = 0
            self.files += 1
        self._writer.write_table(table, row_group_size=max(len(table), 1))
        self._bytes += table.nbytes
        return self.chunk, self.file

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _pandas_index_metadata() -> bytes:
    """tasks.parquet's `pandas` metadata: LeRobot reads it with pandas and looks tasks up by the index "task"."""
    def column(name: str, pandas_type: str, numpy_type: str) -> dict:
        return {"name": name, "field_name": name, "pandas_type": pandas_type, "numpy_type": numpy_type,
                "metadata": None}
    return json.dumps({"index_columns": ["task"], "column_indexes": [],
                       "columns": [column("task_index", "int64", "int64"), column("task", "unicode", "object")],
                       "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}}).encode()


def _write_tasks(root: Path, tasks: list[str]) -> None:
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": _pandas_index_metadata()}), root / TASKS_PATH)


def _features(sensors: Sequence[tuple[str, str]], shapes: dict[str, tuple[int, ...]],
              state_names: Sequence[str]) -> dict[str, dict]:
    features = {IMAGE_KEY.format(sensor=name): {
        "dtype": "image", "shape": list(shapes[name]), "names": ["height", "width", "channels"],
        "info": {"is_depth_map": False, "sensor_type": label}} for name, label in sensors}
    features[STATE_KEY] = {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)}
    features[GOAL_KEY] = {"dtype": "float32", "shape": [len(CONDITIONING_NAMES)], "names": list(CONDITIONING_NAMES)}
    features[ACTION_KEY] = {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": list(ACTION_NAMES)}
    return {**features, **DEFAULT_FEATURES}


def export_lerobot(bags: Sequence[Path | str], out: Path | str, *, fps: int = 5, skip_bad: bool = False,
                   overwrite: bool = False, png_level: int = PNG_LEVEL, data_file_size_mb: float = DATA_FILE_SIZE_MB,
                   progress: bool = True, log: Callable[[str], None] = print) -> ExportSummary:
    """Write every complete episode under `bags` as one LeRobotDataset v3.0 at `out` (see the module docstring)."""
    started = time.perf_counter()
    out = Path(out)
    episodes, skipped = usable_episodes(bags, skip_bad=skip_bad, log=log)
    if not episodes:
        raise EpisodeError(f"no complete episodes under {[str(b) for b in bags]}")
    _check_fps(episodes, fps)
    if not 0 <= png_level <= 9:
        raise ConfigError(f"--png-level must be 0..9 (zlib), got {png_level}")
    sensors = policy_sensors(episodes)
    names = [n for n, _ in sensors]
    state = _state_topics(episodes)
    rows = [_rows(align_episode(ep, sensors=names, spec=WindowSpec(frames=1)), [t for t, _ in state])
            for ep in episodes]
    tasks: list[str] = []
    for r in rows:
        if (task := task_text(r.ticks.episode.meta.initial_g, r.ticks.episode.meta.target_g)) not in tasks:
            tasks.append(task)
    # Image shapes are known once frames are read; info.json (written last) is the only place that needs them.
    provisional = _features([(n, k.label) for n, k in sensors], dict.fromkeys(names, (0, 0, 3)),
                            [n for _, n in state])
    with output_folder(out, overwrite=overwrite) as root:
        files = _DataFiles(root, _schema(provisional), data_file_size_mb)
        shapes: dict[str, tuple[int, ...]] = {}
        episode_rows, columns, histograms = [], [], []
        first = 0
        try:
            for e, r in enumerate(tqdm(rows, desc="exporting episodes", unit="episode", disable=not progress)):
                table, numeric, hists = _episode_table(r, e, first, tasks, names, shapes, provisional, fps, png_level,
                                                       log)
                chunk, file = files.write(table)
                stats = {**{IMAGE_KEY.format(sensor=n): h.stats() for n, h in hists.items()},
                         **{k: vector_stats(v) for k, v in numeric.items()}}
                episode_rows.append(_episode_record(e, r, tasks, first, len(table), chunk, file, stats))
                columns.append(numeric)
                histograms.append(hists)
                first += len(table)
        finally:
            files.close()
        features = _features([(n, k.label) for n, k in sensors], shapes, [n for _, n in state])
        stats = {IMAGE_KEY.format(sensor=n): ImageHistogram.merged(h[n] for h in histograms).stats() for n in names}
        stats.update({k: vector_stats(np.concatenate([c[k] for c in columns])) for k in columns[0]})
        _write_meta(root, features, stats, tasks, episode_rows, fps=fps, frames=first, file_size_mb=data_file_size_mb,
                    robot_type="anytouch_" + "+".join(sorted({ep.meta.rig for ep in episodes})))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    summary = ExportSummary(out=str(out), episodes=len(rows), frames=first, tasks=tasks, sensors=names,
                            state=[n for _, n in state], dropped_ticks=sum(r.dropped for r in rows), skipped=skipped,
                            data_files=files.files, bytes=size, seconds=round(time.perf_counter() - started, 2))
    log(f"exported {summary.episodes} episodes, {summary.frames} frames ({size / 1e6:.1f} MB) to {out} "
        f"in {summary.seconds:.1f} s")
    return summary


def _episode_table(rows: _Rows, episode_index: int, first: int, tasks: list[str], sensors: list[str],
                   shapes: dict[str, tuple[int, ...]], features: dict[str, dict], fps: int, png_level: int,
                   log: Callable[[str], None]) -> tuple[pa.Table, dict[str, np.ndarray], dict[str, ImageHistogram]]:
    """One episode's rows (images read and PNG-encoded once per distinct frame), its numeric columns and histograms."""
    ticks = rows.ticks
    episode = ticks.episode
    n = len(ticks.t_ns)
    gaps = int((np.diff(ticks.t_ns) > 1.5e9 / fps).sum())
    if gaps:
        log(f"warning: {episode.path}: {gaps} gap(s) longer than 1.5 ticks between action ticks; rows are "
            f"stamped frame_index / fps regardless")
    data: dict[str, object] = {}
    hists: dict[str, ImageHistogram] = {}
    for k, sensor in enumerate(sensors):
        positions = ticks.windows[:, k, -1]
        wanted, inverse, counts = np.unique(positions, return_inverse=True, return_counts=True)
        decoded = episode.load_frames(sensor, wanted.tolist())
        missing = [int(i) for i in wanted if int(i) not in decoded]
        if missing:
            raise EpisodeError(f"{episode.path}: frames {missing[:5]} of sensor {sensor!r} could not be read")
        hist = hists[sensor] = ImageHistogram()
        encoded = []
        for position, times in zip(wanted.tolist(), counts.tolist(), strict=True):
            rgb = decoded[position]
            if shapes.setdefault(sensor, rgb.shape) != rgb.shape:
                raise EpisodeError(f"{episode.path}: {topics.tactile_topic(sensor)} frames are {rgb.shape[:2]}, "
                                   f"earlier episodes' are {shapes[sensor][:2]}; one dataset needs one image size")
            hist.add(rgb, times)
            encoded.append(_png(rgb, png_level))
        data[IMAGE_KEY.format(sensor=sensor)] = pa.array(
            [{"bytes": encoded[j], "path": f"frame-{i:06d}.png"} for i, j in enumerate(inverse.tolist())],
            _arrow_type(features[IMAGE_KEY.format(sensor=sensor)]))
    meta = episode.meta
    steps = [Action(int(a)).tilt_step_deg(meta.delta_phi_deg) for a in ticks.actions]
    numeric = {
        STATE_KEY: rows.state,
        GOAL_KEY: np.tile(np.asarray([meta.initial_g, meta.target_g], np.float32), (n, 1)),
        ACTION_KEY: np.stack([ticks.actions.astype(np.float32), np.asarray(steps, np.float32)], axis=1),
        "timestamp": (np.arange(n) / fps).astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, episode_index, np.int64),
        "index": np.arange(first, first + n, dtype=np.int64),
        "task_index": np.full(n, tasks.index(task_text(meta.initial_g, meta.target_g)), np.int64),
    }
    data.update({k: _column(v, features[k]) for k, v in numeric.items()})
    return pa.table(data, schema=_schema(features)), numeric, hists


def _episode_record(index: int, rows: _Rows, tasks: list[str], first: int, length: int, chunk: int, file: int,
                    stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """One row of meta/episodes, in LeRobot's column order (dataset_metadata.save_episode)."""
    meta = rows.ticks.episode.meta
    record: dict = {"episode_index": index, "tasks": [task_text(meta.initial_g, meta.target_g)], "length": length,
                    "data/chunk_index": chunk, "data/file_index": file,
                    "dataset_from_index": first, "dataset_to_index": first + length}
    for feature, values in to_json(stats).items():
        for key, value in values.items():
            record[f"stats/{feature}/{key}"] = value
    record["meta/episodes/chunk_index"] = 0
    record["meta/episodes/file_index"] = 0
    record["anytouch/bag"] = rows.ticks.episode.path.name
    return record


def _write_meta(root: Path, features: dict[str, dict], stats: dict[str, dict[str, np.ndarray]], tasks: list[str],
                episode_rows: list[dict], *, fps: int, frames: int, file_size_mb: float, robot_type: str) -> None:
    (root / "meta").mkdir(exist_ok=True)
    info = {"codebase_version": CODEBASE_VERSION, "fps": fps, "features": features,
            "total_episodes": len(episode_rows), "total_frames": frames, "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": file_size_mb,
            "video_files_size_in_mb": VIDEO_FILE_SIZE_MB, "data_path": DATA_PATH, "video_path": None,
            "robot_type": robot_type, "splits": {"train": f"0:{len(episode_rows)}"}}
    (root / INFO_PATH).write_text(json.dumps(info, indent=4) + "\n")
    (root / STATS_PATH).write_text(json.dumps(to_json(stats), indent=4) + "\n")
    _write_tasks(root, tasks)
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), path, compression="snappy")
