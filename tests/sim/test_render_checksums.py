"""GelSight Mini and DIGIT renders stay bit-identical: checksums computed with the renderer before the sensor models
became data files (main at 87ba0a6), over the rig (every frame of 30 expert ticks, both fingers, other rates, unit
seeds, randomised and nominal episodes) and over hand-made states (released grip, flow, heavy load, hard grip).
The Mini renders with its model as it was then (models/gelsight_mini_uncalibrated.yaml; the shipped one has since
been fitted to real frames), so the checksums still pin the renderer.

The checksums hold on this machine's CPU; OpenCV's SIMD paths may round differently on another one (docs/sim.md).
"""

import dataclasses
import hashlib
from pathlib import Path

import pytest

from anytouch_policy.sim.expert import ScriptedExpert
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState

#: The GelSight Mini's model before the fit (named gelsight_mini, so its sensors keep their names).
MINI = str(Path(__file__).resolve().parent / "models" / "gelsight_mini_uncalibrated.yaml")


def rig_digests(seed, specs, *, randomize=True, ticks=30):
    config = RigConfig(randomize=randomize)
    digests = {s.name: hashlib.sha256() for s in specs}
    expert = ScriptedExpert()
    with SimRig(config, specs, seed=seed) as rig:
        expert.begin_episode(rig.setup, target_g=60.0, config=config)
        expert.observe(rig.state())
        for _ in range(ticks):
            result = rig.step(expert())
            expert.observe(result.state)
            for name, frames in result.frames.items():
                for frame in frames:
                    digests[name].update(frame.stamp_ns.to_bytes(8, "little"))
                    digests[name].update(frame.image.tobytes())
    return {n: d.hexdigest()[:16] for n, d in digests.items()}


def state(**kw):
    values = dict(t_ns=0.0, tilt_deg=100.0, tilt_rate_deg_s=0.0, mass_left_g=80.0, mass_in_flight_g=0.0,
                  mass_on_scale_g=20.0, flow_g_s=0.0, critical_tilt_deg=101.0, stream_excess_deg=-1.0,
                  grip_force_n=67.7, load_n=0.17 * 9.81, torque_nmm=30.0, tare_g=90.0)
    values.update(kw)
    return RigState(**values)


STATES = [state(), state(grip_force_n=0.0), state(flow_g_s=6.0, mass_on_scale_g=31.3),
          state(load_n=2.5, torque_nmm=-80.0, tilt_deg=60.0), state(grip_force_n=120.0, flow_g_s=2.0)]


@pytest.mark.parametrize(("seed", "specs", "randomize", "expected"), [
    (0, [MINI, "digit:right"], True,
     {"gelsight_mini_left": "ab03a6bc5115caca", "digit_right": "ae81e3622ea4dc05"}),
    (5, ["digit", f"{MINI}:right:30"], True,
     {"digit_left": "9684247a5a2dfade", "gelsight_mini_right": "33bed339fe9ac59f"}),
    (11, [MINI, "digit:left:30"], False,
     {"gelsight_mini_left": "b3650a7760e7fcca", "digit_left": "1099d76bdaaf7bd5"}),
])
def test_rig_frames_match_the_renders_before_sensor_model_files(seed, specs, randomize, expected):
    sensors = [SensorSpec.parse(s) for s in specs]
    if seed == 5:  # a randomised unit with another unit seed
        sensors[1] = dataclasses.replace(sensors[1], unit_seed=3, randomize_unit=True)
    assert rig_digests(seed, sensors, randomize=randomize) == expected


@pytest.mark.parametrize(("text", "episode_seed", "index", "randomize", "expected"), [
    (MINI, 3, 0, True, "b9f1494a5661607c"),
    (f"{MINI}:right", 4, 2, False, "335b2ef0382a6f1c"),
    ("digit", 3, 1, True, "7049cb7121e9faf2"),
    ("digit:right", 9, 0, False, "511483009e903a80"),
])
def test_single_renders_match_the_renders_before_sensor_model_files(text, episode_seed, index, randomize, expected):
    params = sample_sensor_params(SensorSpec.parse(text), episode_seed=episode_seed, index=index, randomize=randomize)
    renderer = TactileRenderer(params)
    digest = hashlib.sha256()
    for k, s in enumerate(STATES):
        digest.update(renderer.render(s, 3 * k + 1).tobytes())
    assert digest.hexdigest()[:16] == expected
