"""Demonstrations of the scripted expert on the simulated rig, recorded exactly as the recorder node records them.

The messages go, serialised to CDR, through `data.recording.EpisodeRecorder` (the recorder node's core: writer
thread, bounded queue, `<prefix>_<YYYYmmdd-HHMMSS>_<k>` folders, `.incomplete` until finished) into rosbag2 MCAP
bags, with the topics and stamps a live recording has:

    tick k decided at t_k = base + (k - 1) * 0.2 s       pour/action (String), pour/cartesian_step (PoseStamped)
    frames rendered during the tick, (t_k, t_k + 0.2 s]    tactile/<sensor>/image_raw, logged at their grab stamp
    end of the tick, t_k + 0.2 s                            arm/tilt (from upright), scale/mass, sim/state

The action of tick k is what the expert chose at t_k, having seen the frames up to t_k: exactly what training cuts
("latest frame at or before the action"). Metadata: source "expert", the rig seed, final_g = the last scale
reading and extra.end_reason, as the recorder node stores them. Seeds come from the TRAIN range, disjoint from the
evaluation seeds. A dropped message (writer queue full) fails the recording rather than leaving a gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from anytouch_policy.actions import Action
from anytouch_policy.data import EpisodeMeta, topics
from anytouch_policy.data.episode import TYPESTORE
from anytouch_policy.data.messages import image_msg, joint_state_msg, pose_step_msg
from anytouch_policy.data.recording import EpisodeRecorder
from anytouch_policy.errors import ConfigError, EpisodeError
from anytouch_policy.eval.rollout import EpisodeReport, run_episode
from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.rig import TickResult
from anytouch_policy.sim.sensor_params import SensorSpec

#: Writer queue of the demo's recorder: the sim renders faster than real time, so allow a whole episode in flight.
QUEUE_BYTES = 1 << 30


def _submit(recorder: EpisodeRecorder, name: str, t_ns: int, msg: object) -> None:
    msgtype = msg.__msgtype__
    if not recorder.submit(name, msgtype, t_ns, TYPESTORE.serialize_cdr(msg, msgtype)):
        raise EpisodeError(f"{recorder.root}: the recorder dropped a message on {name} (queue full or not recording)")


def record_expert_episode(recorder: EpisodeRecorder, *, index: int, seed: int, config: RigConfig,
                          sensors: Sequence[SensorSpec], target_g: float) -> tuple[Path, EpisodeReport]:
    """Run the expert on the rig of episode seed `seed`, streaming every frame, action and state to `recorder`."""
    tick_ns = round(config.tick_s * 1e9)
    base = time.time_ns()
    meta = EpisodeMeta(initial_g=config.initial_g, target_g=target_g,
                       sensors={s.name: s.sensor_type.label for s in sensors}, rig="sim", source="expert",
                       delta_phi_deg=config.delta_phi_deg, control_rate_hz=1.0 / config.tick_s, seed=seed)
    path = recorder.start(meta)
    last_mass = 0.0
    string, float64 = TYPESTORE.types["std_msgs/msg/String"], TYPESTORE.types["std_msgs/msg/Float64"]

    def on_tick(result: TickResult) -> None:
        nonlocal last_mass
        t_decided = base + (result.tick - 1) * tick_ns
        _submit(recorder, topics.ACTION, t_decided, string(data=Action(result.action).label))
        step = result.action.tilt_step_deg(config.delta_phi_deg)
        _submit(recorder, topics.CARTESIAN_STEP, t_decided,
                pose_step_msg(TYPESTORE, t_decided, step, frame_id="tool", axis="y"))
        for name, frames in result.frames.items():
            for frame in frames:
                stamp = base + frame.stamp_ns
                _submit(recorder, topics.tactile_topic(name), stamp,
                        image_msg(TYPESTORE, frame.image, stamp, frame_id=f"{name}_gel"))
        t_end = base + result.tick * tick_ns
        state = result.state
        _submit(recorder, topics.ARM_TILT, t_end, float64(data=state.tilt_deg))
        _submit(recorder, topics.SCALE_MASS, t_end, float64(data=state.mass_on_scale_g))
        _submit(recorder, topics.SIM_STATE, t_end, joint_state_msg(TYPESTORE, t_end, state.to_dict()))
        last_mass = state.mass_on_scale_g

    try:
        report = run_episode(ScriptedExpert(), config=config, sensors=sensors, seed=seed, target_g=target_g,
                             index=index, record_all_frames=True, on_tick=on_tick)
    except BaseException:
        recorder.finish(complete=False, extra={"end_reason": "abort"})
        raise
    recorder.finish(complete=True, final_g=last_mass, extra={"end_reason": "timeout" if report.timed_out else "end"})
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
    errors: list[str] = []
    recorder = EpisodeRecorder(root, prefix=prefix, storage=storage, max_queue_bytes=QUEUE_BYTES,
                               on_error=errors.append)
    try:
        for i in range(episodes):
            path, report = record_expert_episode(recorder, index=i, seed=episode_seed(SeedSplit.TRAIN, seed, i),
                                                 config=config, sensors=sensors, target_g=target_g)
            if not recorder.wait_idle(timeout_s=120.0) or errors:
                raise EpisodeError(f"{path}: recording failed: {errors or 'writer did not catch up in 120 s'}")
            paths.append(path)
            if progress is not None:
                progress(i, path, report)
    finally:
        recorder.close()
    return paths
