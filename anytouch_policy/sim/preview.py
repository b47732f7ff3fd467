"""What each simulated sensor sees over one expert pour, as files a person can look at.

Per sensor: `<name>_strip.png` (top row: frames at evenly spaced moments with tilt / poured / flow captions;
bottom row: the difference to the previous frame, amplified, where the flow signature lives) and `<name>.gif`
(one frame per control tick).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anytouch_policy.errors import ConfigError
from anytouch_policy.outputs import OutputKind, check_output_dir, writing_dir
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.runs import SimRender
from anytouch_policy.sim.state import RigState

#: Gain applied to frame differences in the strip's bottom row.
DIFF_GAIN = 8.0

#: A preview folder, for the output-folder rule (anytouch_policy.outputs).
PREVIEW_FOLDER = OutputKind("sensor preview folder", markers=(), contents=("*_strip.png", "*.gif"))


@dataclass(frozen=True)
class PreviewFiles:
    strips: dict[str, Path]
    gifs: dict[str, Path]
    ticks: int
    poured_g: float


def _caption(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    band = np.full((14 * len(lines) + 6, image.shape[1], 3), 24, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(band, text, (4, 14 * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def render_pour(request: SimRender) -> PreviewFiles:
    """Run the scripted expert for one episode rendering every frame, and write a PNG strip and a GIF per sensor.

    `request.out` must be new or empty, or (with `overwrite`) an earlier preview folder, which is then replaced."""
    from PIL import Image  # its fast octree quantiser writes a GIF in well under a second

    sensors, columns, overwrite, target_g, seed = (request.sensor_specs(), request.columns, request.overwrite,
                                                   request.target_g, request.seed)
    if not sensors:
        raise ConfigError("render_pour needs at least one sensor")
    out = check_output_dir(request.out, PREVIEW_FOLDER, overwrite=overwrite)
    config = request.rig(request.initial_g)
    frames: dict[str, list[tuple[np.ndarray, RigState]]] = {s.name: [] for s in sensors}
    per_tick: dict[str, list[np.ndarray]] = {s.name: [] for s in sensors}
    expert = ScriptedExpert()
    with SimRig(config, sensors, seed=seed) as rig:
        expert.begin_episode(rig.setup, target_g=target_g, config=config)
        expert.observe(rig.state())
        done = False
        while not done:
            result = rig.step(expert())
            expert.observe(result.state)
            for name, got in result.frames.items():
                frames[name].extend((f.image, result.state) for f in got)
                if got:
                    per_tick[name].append(_caption(got[-1].image, _status(result.state)))
            done = result.done
        ticks, poured = result.tick, rig.poured_g

    strips = {name: out / f"{name}_strip.png" for name in frames}
    gifs = {name: out / f"{name}.gif" for name in frames}
    with writing_dir(out, PREVIEW_FOLDER, overwrite=overwrite) as staged:
        for name, seq in frames.items():
            picks = np.linspace(1, len(seq) - 1, columns).round().astype(int)
            top = [_caption(seq[i][0], _status(seq[i][1])) for i in picks]
            bottom = [_caption(np.clip(DIFF_GAIN * np.abs(seq[i][0].astype(np.int16) - seq[i - 1][0]), 0, 255)
                               .astype(np.uint8), [f"|frame - previous| x{DIFF_GAIN:g}", ""]) for i in picks]
            sheet = np.concatenate([np.concatenate(top, axis=1), np.concatenate(bottom, axis=1)], axis=0)
            cv2.imwrite(str(staged / strips[name].name), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
            images = [Image.fromarray(f).quantize(colors=256, method=Image.Quantize.FASTOCTREE)
                      for f in per_tick[name]]
            images[0].save(staged / gifs[name].name, save_all=True, append_images=images[1:],
                           duration=round(config.tick_s * 1000), loop=0)
    return PreviewFiles(strips=strips, gifs=gifs, ticks=ticks, poured_g=poured)


def _status(state: RigState) -> list[str]:
    return [f"t {state.t_ns / 1e9:5.1f} s  tilt {state.tilt_deg:5.1f} deg",
            f"out {state.mass_out_g:5.1f} g  flow {state.flow_g_s:4.1f} g/s"]
