"""Demonstrations of the scripted expert on the simulated rig, written as the recorder node writes them.

Each episode is one rosbag2 MCAP folder `<prefix>_<YYYYmmdd-HHMMSS>_<k>` written through EpisodeWriter (the writer
behind the recorder node), with the topics and stamps a live recording has:

    tick k decided at t_k = base + (k - 1) * 0.2 s       pour/action (String), pour/cartesian_step (PoseStamped)
    frames rendered during the tick, (t_k, t_k + 0.2 s]    tactile/<sensor>/image_raw, logged at their grab stamp
    end of the tick, t_k + 0.2 s                            arm/tilt (from the start pose), scale/mass, sim/state

The action of tick k is what the expert chose at t_k, having seen the frames up to t_k: exactly what training cuts
("latest frame at or before the action"). Metadata: source "expert", the rig seed, final_g = the last scale
reading, extra.end_reason, as the recorder node stores them. Seeds come from the TRAIN range, disjoint from the
evaluation seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from anytouch_policy.data import EpisodeMeta, EpisodeWriter, topics
from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.evaluate import EpisodeReport, run_episode
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed, sample_episode
from anytouch_policy.sim.rig import TickResult
from anytouch_policy.sim.sensor_params import SensorSpec


def episode_name(prefix: str, when: datetime, index: int) -> str:
    """The recorder node's folder name: `<prefix>_<YYYYmmdd-HHMMSS>_<index>`."""
    return f"{prefix}_{when:%Y%m%d-%H%M%S}_{index}"


def record_expert_episode(root: Path, *, index: int, seed: int, config: RigConfig, sensors: Sequence[SensorSpec],
                          target_g: float, prefix: str = "expert", storage: str = "mcap") -> tuple[Path, EpisodeReport]:
    """Run the expert on the rig of episode seed `seed` and write every frame, action and state into a bag."""
    setup = sample_episode(config, seed)
    tick_ns = round(config.tick_s * 1e9)
    base = time.time_ns()
    meta = EpisodeMeta(initial_g=config.initial_g, target_g=target_g,
                       sensors={s.name: s.sensor_type.label for s in sensors}, rig="sim", source="expert",
                       delta_phi_deg=config.delta_phi_deg, control_rate_hz=1.0 / config.tick_s, seed=seed)
    path = root / episode_name(prefix, datetime.now(), index)
    last_mass = [0.0]
    with EpisodeWriter(path, meta=meta, storage=storage) as writer:
        def on_tick(result: TickResult) -> None:
            t_decided = base + (result.tick - 1) * tick_ns
            writer.write_action(t_decided, result.action)
            writer.write_step(t_decided, result.action.tilt_step_deg(config.delta_phi_deg))
            for name, frames in result.frames.items():
                for frame in frames:
                    writer.write_image(name, base + frame.stamp_ns, frame.image)
            t_end = base + result.tick * tick_ns
            state = result.state
            writer.write_float(topics.ARM_TILT, t_end, state.tilt_deg - setup.initial_tilt_deg)
            writer.write_float(topics.SCALE_MASS, t_end, state.mass_on_scale_g)
            writer.write_sim_state(t_end, state.to_dict())
            last_mass[0] = state.mass_on_scale_g

        report = run_episode(ScriptedExpert(), config=config, sensors=sensors, seed=seed, target_g=target_g,
                             index=index, record_all_frames=True, on_tick=on_tick)
        path = writer.close(complete=True, final_g=last_mass[0],
                            extra={"end_reason": "timeout" if report.timed_out else "end"})
    return path, report


def record_expert_episodes(root: Path | str, *, episodes: int, target_g: float, sensors: Sequence[SensorSpec],
                           config: RigConfig | None = None, seed: int = 0, prefix: str = "expert",
                           storage: str = "mcap",
                           progress: Callable[[int, Path, EpisodeReport], None] | None = None) -> list[Path]:
    """Record `episodes` expert demonstrations (TRAIN seed range of run `seed`) into folders under `root`."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if not sensors:
        raise ConfigError("record at least one sensor")
    config = config or RigConfig()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(episodes):
        path, report = record_expert_episode(root, index=i, seed=episode_seed(SeedSplit.TRAIN, seed, i),
                                             config=config, sensors=sensors, target_g=target_g, prefix=prefix,
                                             storage=storage)
        paths.append(path)
        if progress is not None:
            progress(i, path, report)
    return paths
