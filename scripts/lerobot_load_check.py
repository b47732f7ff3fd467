"""Load an `anytouch export lerobot` dataset with LeRobot itself and print what a training loop would see.

Runs in the separate Python >= 3.12 environment that scripts/check_lerobot_export.sh makes (lerobot pins its own
torch, so it cannot live in the project's 3.11 .venv); it imports lerobot, never anytouch_policy.

    HF_HUB_OFFLINE=1 <venv>/bin/python scripts/lerobot_load_check.py DATASET_DIR

Exits non-zero when LeRobot's view disagrees with the files (row count, tasks, images, statistics).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from lerobot.datasets import LeRobotDataset
from lerobot.datasets.compute_stats import get_feature_stats
from PIL import Image


def check(condition: bool, what: str) -> None:
    print(f"  {'ok  ' if condition else 'FAIL'} {what}")
    if not condition:
        raise SystemExit(1)


def main() -> int:
    root = Path(sys.argv[1]).resolve()
    ds = LeRobotDataset("anytouch/export-check", root=root, video_backend="pyav")  # images only: no video decoder
    meta = ds.meta
    print(f"lerobot loaded {root}: codebase {meta.info.codebase_version}, fps {meta.fps}, robot_type "
          f"{meta.robot_type}, {meta.total_episodes} episodes, {meta.total_frames} frames, len {len(ds)}")
    print(f"tasks: {list(meta.tasks.index)}")
    print("features: " + ", ".join(f"{k} {v['dtype']}{list(v['shape'])}" for k, v in meta.features.items()))
    check(len(ds) == meta.total_frames, "len(dataset) == info.total_frames")

    item = ds[0]
    print("item 0: " + ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" if torch.is_tensor(v) else f"{k} {v!r}"
                                 for k, v in item.items()))
    check(item["task"] == meta.tasks.index[int(item["task_index"])], "item['task'] is the task string")

    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=0)
    batch = next(iter(loader))
    print("DataLoader batch: " + ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" if torch.is_tensor(v)
                                           else f"{k} [{len(v)} x {type(v[0]).__name__}]" for k, v in batch.items()))

    image_keys = meta.camera_keys
    for key in image_keys:
        img = batch[key]
        check(img.dtype == torch.float32 and float(img.min()) >= 0.0 and float(img.max()) <= 1.0,
              f"{key}: float32 in [0, 1], shape {tuple(img.shape)}")

    # The tensor LeRobot returns is the PNG in the parquet file, pixel for pixel: the last row of the first and of
    # the last episode, wherever their data files are.
    for episode in sorted({0, meta.total_episodes - 1}):
        table = pq.read_table(root / meta.get_data_file_path(episode), columns=[*image_keys, "index", "episode_index"])
        rows = [r for r in table.to_pylist() if r["episode_index"] == episode]
        row = rows[-1]
        for key in image_keys:
            png = np.asarray(Image.open(io.BytesIO(row[key]["bytes"])).convert("RGB"))
            from_lerobot = (ds[row["index"]][key] * 255).round().byte().permute(1, 2, 0).numpy()
            check(np.array_equal(png, from_lerobot),
                  f"{key}: ds[{row['index']}] equals the PNG in {meta.get_data_file_path(episode)}")

    # delta_timestamps: a 3-row history at 1/fps spacing, as a policy with n_obs_steps=3 would ask for.
    fps = meta.fps
    history = LeRobotDataset("anytouch/export-check", root=root, video_backend="pyav",
                             delta_timestamps={k: [-2 / fps, -1 / fps, 0.0] for k in image_keys})
    stacked = history[5]
    print("delta_timestamps item 5: " + ", ".join(f"{k} {tuple(stacked[k].shape)}" for k in image_keys))
    check(all(stacked[k].shape[0] == 3 for k in image_keys), "image history of 3 rows")

    # Statistics: LeRobot's own routine over episode 0's full data against the exported per-episode values. float64
    # input: on float32 input its running E[x^2] - E[x]^2 loses ~1e-3 of a tilt std near 100 deg (cancellation).
    ep = meta.episodes[0]
    rows = ds.hf_dataset.select(range(ep["dataset_from_index"], ep["dataset_to_index"]))[:]
    episodes_table = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()[0]
    worst = 0.0
    for key, feature in meta.features.items():
        if feature["dtype"] == "image":
            data = torch.stack(rows[key]).double().numpy() * 255.0
            ours = get_feature_stats(data, axis=(0, 2, 3), keepdims=True)
            ours = {k: v if k == "count" else np.squeeze(v / 255.0, axis=0) for k, v in ours.items()}
        else:
            data = np.stack([np.asarray(v, np.float64) for v in rows[key]])
            ours = get_feature_stats(data, axis=0, keepdims=data.ndim == 1)
        for stat in ("min", "max", "mean", "std"):
            exported = np.asarray(episodes_table[f"stats/{key}/{stat}"])
            worst = max(worst, float(np.abs(exported - ours[stat]).max()))
    print(f"episode 0 stats vs lerobot.compute_stats.get_feature_stats: max |difference| {worst:.2e}")
    check(worst < 1e-6, "min/max/mean/std agree with LeRobot's routine")
    print("stats.json keys: " + json.dumps({k: sorted(v) for k, v in list(meta.stats.items())[:1]}))
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
