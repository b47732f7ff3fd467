"""The LeRobotDataset v3.0 files, written with pyarrow: paths, feature schema, parquet types, metadata files.

Every rule here is LeRobot's (lerobot v0.6.1, src/lerobot/datasets/; the table in docs/export.md says which file):

    meta/info.json                            codebase_version "v3.0", fps, robot_type, features (dtype, shape, names)
    meta/stats.json                           per feature min max mean std count q01..q99 (images per channel, 0..1)
    meta/tasks.parquet                        task_index + task, with the pandas index "task" LeRobot looks tasks up by
    meta/episodes/chunk-000/file-000.parquet  per episode: length, tasks, row range, data file, stats/<feature>/<stat>
    data/chunk-XXX/file-XXX.parquet           the rows; whole episodes, one row group each, a new file at 100 MB
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from anytouch_policy.export.stats import to_json

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder (DEFAULT_CHUNK_SIZE)
DATA_FILE_SIZE_MB = 100  # a data file takes episodes until the next would reach this (DEFAULT_DATA_FILE_SIZE_IN_MB)
VIDEO_FILE_SIZE_MB = 200  # recorded in info.json as LeRobot does; no videos here
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/" + CHUNK_FILE
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
#: The columns LeRobot adds to every dataset (lerobot.utils.constants.DEFAULT_FEATURES).
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def image_feature(label: str) -> dict:
    """An RGB camera stored as PNG images (not video); the shape is filled in from the first frame."""
    return {"dtype": "image", "shape": None, "names": ["height", "width", "channels"],
            "info": {"is_depth_map": False, "sensor_type": label}}


def vector_feature(names: Sequence[str]) -> dict:
    return {"dtype": "float32", "shape": [len(names)], "names": list(names)}


def arrow_type(feature: dict) -> pa.DataType:
    """datasets.Image -> struct<bytes, path>; shape [1] -> a plain column; [n] -> fixed_size_list[n]."""
    if feature["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    value = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    return value if feature["shape"] == [1] else pa.list_(value, feature["shape"][0])


def _hf_feature(feature: dict) -> dict:
    """The Hugging Face `datasets` type LeRobot gives a feature, as Features.to_dict writes it."""
    if feature["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    return value if feature["shape"] == [1] else {"feature": value, "length": feature["shape"][0], "_type": "List"}


def schema(features: dict[str, dict]) -> pa.Schema:
    """The data files' schema, with the `huggingface` metadata `datasets` reads the column types from."""
    hf = json.dumps({"info": {"features": {k: _hf_feature(f) for k, f in features.items()}}})
    return pa.schema([(k, arrow_type(f)) for k, f in features.items()], metadata={"huggingface": hf})


def column(values: np.ndarray, feature: dict) -> pa.Array:
    """A numeric column: (N,) for shape [1], (N, n) as a fixed-size list for shape [n]."""
    flat = pa.array(np.ascontiguousarray(values, dtype=feature["dtype"]).reshape(-1))
    return flat if feature["shape"] == [1] else pa.FixedSizeListArray.from_arrays(flat, feature["shape"][0])


def image_column(encoded: Sequence[bytes], order: Sequence[int]) -> pa.Array:
    """PNG cells, row i holding encoded[order[i]], named frame-<i>.png as LeRobot's image writer names them."""
    return pa.array([{"bytes": encoded[j], "path": f"frame-{i:06d}.png"} for i, j in enumerate(order)],
                    arrow_type({"dtype": "image"}))


class DataFiles:
    """data/chunk-XXX/file-XXX.parquet: whole episodes appended; the next file once one would reach the size limit."""

    def __init__(self, root: Path, data_schema: pa.Schema, limit_mb: float) -> None:
        self.root, self.schema, self.limit = root, data_schema, limit_mb * 1024**2
        self.chunk = self.file = 0
        self.files = 0
        self._writer: pq.ParquetWriter | None = None
        self._bytes = 0

    def write(self, table: pa.Table) -> tuple[int, int]:
        """Append one episode as one row group; returns the (chunk, file) it landed in."""
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


def episode_record(*, index: int, task: str, first: int, length: int, chunk: int, file: int,
                   stats: dict[str, dict[str, np.ndarray]], extra: dict) -> dict:
    """One row of meta/episodes, in LeRobot's column order (dataset_metadata.save_episode); `extra` goes last."""
    record: dict = {"episode_index": index, "tasks": [task], "length": length, "data/chunk_index": chunk,
                    "data/file_index": file, "dataset_from_index": first, "dataset_to_index": first + length}
    for feature, values in to_json(stats).items():
        for key, value in values.items():
            record[f"stats/{feature}/{key}"] = value
    record["meta/episodes/chunk_index"] = 0
    record["meta/episodes/file_index"] = 0
    return {**record, **extra}


def _pandas_index_metadata() -> bytes:
    """tasks.parquet's `pandas` metadata: LeRobot reads the file with pandas and looks tasks up by the index "task"."""
    def field(name: str, pandas_type: str, numpy_type: str) -> dict:
        return {"name": name, "field_name": name, "pandas_type": pandas_type, "numpy_type": numpy_type,
                "metadata": None}
    return json.dumps({"index_columns": ["task"], "column_indexes": [],
                       "columns": [field("task_index", "int64", "int64"), field("task", "unicode", "object")],
                       "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}}).encode()


def write_meta(root: Path, *, features: dict[str, dict], stats: dict[str, dict[str, np.ndarray]], tasks: list[str],
               episodes: list[dict], fps: int, frames: int, file_size_mb: float, robot_type: str) -> None:
    """info.json, stats.json, tasks.parquet and the episodes table (one file: a row per episode is small)."""
    (root / "meta").mkdir(exist_ok=True)
    info = {"codebase_version": CODEBASE_VERSION, "fps": fps, "features": features,
            "total_episodes": len(episodes), "total_frames": frames, "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": file_size_mb,
            "video_files_size_in_mb": VIDEO_FILE_SIZE_MB, "data_path": DATA_PATH, "video_path": None,
            "robot_type": robot_type, "splits": {"train": f"0:{len(episodes)}"}}
    (root / INFO_PATH).write_text(json.dumps(info, indent=4) + "\n")
    (root / STATS_PATH).write_text(json.dumps(to_json(stats), indent=4) + "\n")
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": _pandas_index_metadata()}), root / TASKS_PATH)
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), path, compression="snappy")
