"""Episode bags -> a LeRobotDataset v3.0 folder (no lerobot import, no Hub, no network; files: lerobot_format).

A row is an action tick cut by the training rule, `align_episode` with a 1-frame window: on every sensor the newest
frame at or before the tick, stored as a lossless PNG (dtype "image"; a video codec would blur the frame-to-frame
change the 3-frame window reads). Tilt and scale are the newest readings at or before the tick, by the same
`window_indices` rule. Bags are found and judged by training's `usable_episodes` (--skip-bad). docs/export.md.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
from PIL import Image
from pydantic import Field
from tqdm import tqdm

from anytouch_policy.actions import CONTROL_RATE_HZ, Action
from anytouch_policy.bounds import AT_LEAST_1, Interval
from anytouch_policy.data import topics
from anytouch_policy.data.episode import Episode
from anytouch_policy.data.samples import EpisodeTicks, WindowSpec, align_episode, policy_sensors, usable_episodes
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.export import lerobot_format as fmt
from anytouch_policy.export.stats import ImageHistogram, vector_stats
from anytouch_policy.outputs import OutputKind, check_output_dir, writing_dir
from anytouch_policy.policy.config import CONDITIONING_NAMES
from anytouch_policy.progress import bar_disabled
from anytouch_policy.schema import config
from anytouch_policy.tactile import window_indices


@config
class ExportConfig:
    """What `anytouch export lerobot` writes (its flags are these fields)."""

    bags: Annotated[list[Path], Field(min_length=1)] = Field(
        description="folder(s) of episode bags (MCAP or sqlite3), or single episodes; repeatable")
    out: Path = Field(description="dataset folder to write (new or empty; --overwrite replaces an earlier export)")
    fps: Annotated[int, AT_LEAST_1] = Field(
        default=int(CONTROL_RATE_HZ), description="rows per second: the episodes' action rate (5 Hz)")
    png_level: Annotated[int, Interval.parse("[0, 9]")] = Field(
        default=6, description="PNG zlib level 0-9 (lossless at any level): 6 as LeRobot; 1 is ~5x faster, ~15% larger")
    overwrite: bool = Field(default=False, description="replace an earlier dataset at --out")
    skip_bad: bool = Field(default=False, description="skip (and list) corrupt bags instead of stopping")
    progress: bool = Field(default=True, description="progress bar")
IMAGE_KEY = "observation.images.{sensor}"
STATE_KEY = "observation.state"
GOAL_KEY = "observation.goal_g"
ACTION_KEY = "action"
ACTION_NAMES = ["action_index", "tilt_step_deg"]  # Action class (0 pour, 1 wait, 2 retract), tool-frame step (deg)
#: observation.state columns: the relative topic and its name. Tilt is required, the scale joins where every
#: episode has one (a rig without a scale has no scale/mass topic).
TILT = (topics.ARM_TILT, "tilt_deg")
SCALE = (topics.SCALE_MASS, "scale_g")
#: An earlier export is the only folder --overwrite replaces (besides an empty one).
LEROBOT_DATASET = OutputKind("LeRobot dataset", markers=(fmt.INFO_PATH,), contents=("meta", "data", "images", "videos"))


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


def _state_topics(episodes: Sequence[Episode]) -> list[tuple[str, str]]:
    """Tilt, plus the scale when every episode has one; a mix is refused rather than silently dropped."""
    no_tilt = [str(e.path) for e in episodes if TILT[0] not in e.series]
    if no_tilt:
        raise EpisodeError(f"no {TILT[0]!r} messages in {no_tilt}; observation.state needs the tilt")
    no_scale = [str(e.path) for e in episodes if SCALE[0] not in e.series]
    if no_scale and len(no_scale) < len(episodes):
        raise EpisodeError(f"{len(no_scale)} of {len(episodes)} episodes have no {SCALE[0]!r} (e.g. {no_scale[0]}); "
                           f"export episodes with and without a scale into separate datasets")
    return [TILT] if no_scale else [TILT, SCALE]


def _check_fps(episodes: Sequence[Episode], fps: int) -> None:
    for ep in episodes:
        if abs(ep.meta.control_rate_hz - fps) > 1e-6:
            raise ConfigError(f"{ep.path}: recorded at {ep.meta.control_rate_hz:g} Hz (control_rate_hz), but --fps "
                              f"is {fps}; one row per action tick needs the two to agree")


def _png(rgb: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


class _Writer:
    """Episodes in, data files out; keeps each episode's record and what the dataset's statistics need."""

    def __init__(self, root: Path, *, sensors: list[str], features: dict[str, dict], tasks: list[str], fps: int,
                 png_level: int, file_size_mb: float, log: Callable[[str], None]) -> None:
        self.sensors, self.features, self.tasks = sensors, features, tasks
        self.fps, self.png_level, self.log = fps, png_level, log
        self.files = fmt.DataFiles(root, fmt.schema(features), file_size_mb)
        self.records: list[dict] = []
        self.frames = 0
        self._numeric: list[dict[str, np.ndarray]] = []
        self._histograms: list[dict[str, ImageHistogram]] = []

    def add(self, rows: _Rows) -> None:
        table, numeric, hists = self._table(rows)
        chunk, file = self.files.write(table)
        stats = {**{IMAGE_KEY.format(sensor=s): h.stats() for s, h in hists.items()},
                 **{k: vector_stats(v) for k, v in numeric.items()}}
        meta = rows.ticks.episode.meta
        self.records.append(fmt.episode_record(
            index=len(self.records), task=task_text(meta.initial_g, meta.target_g), first=self.frames,
            length=len(table), chunk=chunk, file=file, stats=stats,
            extra={"anytouch/bag": rows.ticks.episode.path.name}))
        self._numeric.append(numeric)
        self._histograms.append(hists)
        self.frames += len(table)

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """The dataset's statistics: images from the summed histograms, numbers over every row."""
        stats = {IMAGE_KEY.format(sensor=s): ImageHistogram.merged(h[s] for h in self._histograms).stats()
                 for s in self.sensors}
        stats.update({k: vector_stats(np.concatenate([c[k] for c in self._numeric])) for k in self._numeric[0]})
        return stats

    def _images(self, episode: Episode, sensor: str, positions: np.ndarray) -> tuple[pa.Array, ImageHistogram]:
        """The sensor's frames at the given positions, read and PNG-encoded once per distinct frame."""
        wanted, order, counts = np.unique(positions, return_inverse=True, return_counts=True)
        decoded = episode.load_frames(sensor, wanted.tolist())
        missing = [int(i) for i in wanted if int(i) not in decoded]
        if missing:
            raise EpisodeError(f"{episode.path}: frames {missing[:5]} of sensor {sensor!r} could not be read")
        feature = self.features[IMAGE_KEY.format(sensor=sensor)]
        hist = ImageHistogram()
        encoded = []
        for position, times in zip(wanted.tolist(), counts.tolist(), strict=True):
            rgb = decoded[position]
            feature["shape"] = feature["shape"] or list(rgb.shape)
            if list(rgb.shape) != feature["shape"]:
                raise EpisodeError(f"{episode.path}: {topics.tactile_topic(sensor)} frames are {rgb.shape[:2]}, "
                                   f"earlier ones are {feature['shape'][:2]}; one dataset needs one image size")
            hist.add(rgb, times)
            encoded.append(_png(rgb, self.png_level))
        return fmt.image_column(encoded, order.tolist()), hist

    def _table(self, rows: _Rows) -> tuple[pa.Table, dict[str, np.ndarray], dict[str, ImageHistogram]]:
        ticks, episode = rows.ticks, rows.ticks.episode
        n = len(ticks.t_ns)
        gaps = int((np.diff(ticks.t_ns) > 1.5e9 / self.fps).sum())
        if gaps:
            self.log(f"warning: {episode.path}: {gaps} gap(s) longer than 1.5 ticks between action ticks; rows are "
                     f"stamped frame_index / fps regardless")
        data: dict[str, pa.Array] = {}
        hists: dict[str, ImageHistogram] = {}
        for k, sensor in enumerate(self.sensors):
            data[IMAGE_KEY.format(sensor=sensor)], hists[sensor] = self._images(episode, sensor,
                                                                                ticks.windows[:, k, -1])
        meta = episode.meta
        steps = [Action(int(a)).tilt_step_deg(meta.delta_phi_deg) for a in ticks.actions]
        numeric = {
            STATE_KEY: rows.state,
            GOAL_KEY: np.tile(np.asarray([meta.initial_g, meta.target_g], np.float32), (n, 1)),
            ACTION_KEY: np.stack([ticks.actions.astype(np.float32), np.asarray(steps, np.float32)], axis=1),
            "timestamp": (np.arange(n) / self.fps).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, len(self.records), np.int64),
            "index": np.arange(self.frames, self.frames + n, dtype=np.int64),
            "task_index": np.full(n, self.tasks.index(task_text(meta.initial_g, meta.target_g)), np.int64),
        }
        data.update({k: fmt.column(v, self.features[k]) for k, v in numeric.items()})
        return pa.table(data, schema=self.files.schema), numeric, hists


def export_lerobot(config: ExportConfig, *, data_file_size_mb: float = fmt.DATA_FILE_SIZE_MB,
                   log: Callable[[str], None] = print) -> ExportSummary:
    """Write every complete episode under `config.bags` as one LeRobotDataset v3.0 at `config.out` (see the module
    docstring)."""
    started = time.perf_counter()
    bags, fps, png_level, overwrite, progress = config.bags, config.fps, config.png_level, config.overwrite, \
        config.progress
    out = check_output_dir(config.out, LEROBOT_DATASET, overwrite=overwrite)
    episodes, skipped = usable_episodes(bags, skip_bad=config.skip_bad, log=log)
    if not episodes:
        raise EpisodeError(f"no complete episodes under {[str(b) for b in bags]}")
    _check_fps(episodes, fps)
    sensors = policy_sensors(episodes)
    names = [n for n, _ in sensors]
    state = _state_topics(episodes)
    rows = [_rows(align_episode(ep, sensors=names, spec=WindowSpec(frames=1)), [t for t, _ in state])
            for ep in episodes]
    tasks = list(dict.fromkeys(task_text(ep.meta.initial_g, ep.meta.target_g) for ep in episodes))
    features = {IMAGE_KEY.format(sensor=n): fmt.image_feature(kind.label) for n, kind in sensors}
    features.update({STATE_KEY: fmt.vector_feature([n for _, n in state]),
                     GOAL_KEY: fmt.vector_feature(CONDITIONING_NAMES), ACTION_KEY: fmt.vector_feature(ACTION_NAMES),
                     **fmt.DEFAULT_FEATURES})
    with writing_dir(out, LEROBOT_DATASET, overwrite=overwrite) as root:
        writer = _Writer(root, sensors=names, features=features, tasks=tasks, fps=fps, png_level=png_level,
                         file_size_mb=data_file_size_mb, log=log)
        try:
            for r in tqdm(rows, desc="exporting episodes", unit="episode", disable=bar_disabled(progress)):
                writer.add(r)
        finally:
            writer.files.close()
        fmt.write_meta(root, features=features, stats=writer.stats(), tasks=tasks, episodes=writer.records, fps=fps,
                       frames=writer.frames, file_size_mb=data_file_size_mb,
                       robot_type="anytouch_" + "+".join(sorted({ep.meta.rig for ep in episodes})))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    summary = ExportSummary(out=str(out), episodes=len(rows), frames=writer.frames, tasks=tasks, sensors=names,
                            state=[n for _, n in state], dropped_ticks=sum(r.dropped for r in rows), skipped=skipped,
                            data_files=writer.files.files, bytes=size, seconds=round(time.perf_counter() - started, 2))
    log(f"exported {summary.episodes} episodes, {summary.frames} frames ({size / 1e6:.1f} MB) to {out} "
        f"in {summary.seconds:.1f} s")
    return summary
