"""Rig state records travel as flat name/value lists; parameters, seeds and sensor specs validate."""

import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.episode import sample_episode
from anytouch_policy.sim.params import EVAL_SEED_BASE, RigConfig, SeedSplit, episode_seed
from anytouch_policy.sim.physics import critical_tilt_deg
from anytouch_policy.sim.sensor_params import Finger, SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState


def a_state(**kw):
    values = dict.fromkeys(RigState.field_names(), 0.0)
    values.update(t_ns=123_456_789_012.0, tilt_deg=97.123456789, mass_left_g=41.234, **kw)
    return RigState(**values)


def test_state_roundtrips_exactly_through_dicts_and_lists():
    state = a_state(flow_g_s=3.3)
    assert RigState.from_dict(state.to_dict()) == state
    names, values = list(reversed(RigState.field_names())), list(reversed(state.to_list()))
    assert RigState.from_lists(names, values) == state  # order does not matter, values are exact


def test_state_names_missing_and_unknown_fields():
    d = a_state().to_dict()
    del d["tilt_deg"]
    d["bogus"] = 1.0
    with pytest.raises(ConfigError, match=r"RigState: missing required field\(s\) tilt_deg; unknown field\(s\) bogus"):
        RigState.from_dict(d)
    with pytest.raises(ConfigError, match="names but"):
        RigState.from_lists(["t_ns"], [1.0, 2.0])


def test_train_and_eval_seeds_are_disjoint_ranges():
    assert episode_seed(SeedSplit.TRAIN, 0, 0) == 0
    assert episode_seed(SeedSplit.TRAIN, 99_999, 9_999) < EVAL_SEED_BASE <= episode_seed(SeedSplit.EVAL, 0, 0)
    with pytest.raises(ConfigError, match="episode index"):
        episode_seed(SeedSplit.EVAL, 0, 10_000)


def test_episode_draw_is_deterministic_and_starts_below_critical():
    config = RigConfig()
    a, b, c = sample_episode(config, 11), sample_episode(config, 11), sample_episode(config, 12)
    assert a == b and a != c
    lo, hi = config.ranges.pre_pour_margin_deg
    margin = critical_tilt_deg(config.initial_g, a.physics) - a.initial_tilt_deg
    assert lo <= margin <= hi
    nominal = sample_episode(RigConfig(randomize=False), 11)
    assert nominal.physics == config.physics and nominal.tare_g == sum(config.ranges.tare_g) / 2
    assert sample_episode(RigConfig(initial_tilt_deg=42.0), 3).initial_tilt_deg == 42.0
    with pytest.raises(ConfigError, match="outside the arm limits"):
        sample_episode(RigConfig(initial_tilt_deg=150.0), 3)


def test_sensor_specs_parse_and_validate():
    spec = SensorSpec.parse("digit:right:30")
    assert (spec.sensor_type, spec.finger, spec.fps, spec.name) == (SensorType.DIGIT, Finger.RIGHT, 30.0,
                                                                    "digit_right")
    assert SensorSpec.parse("gelsight_mini").name == "gelsight_mini_left"
    with pytest.raises(ConfigError, match="unknown sensor model 'tac3d'"):
        SensorSpec.parse("tac3d")
    with pytest.raises(ConfigError, match="sensor model file .*nowhere.yaml not found"):
        SensorSpec.parse("nowhere.yaml:right")
    with pytest.raises(ConfigError, match="finger"):
        SensorSpec.parse("digit:middle")
    with pytest.raises(ConfigError, match="fps"):
        SensorSpec.parse("digit:left:fast")
    for slow in ("0", "0.001", "4.9", "nan", "201"):  # below the 5 Hz control rate (or absurd): refused, named
        with pytest.raises(ConfigError, match=rf"sensor spec 'digit:left:{slow}': fps must be in \[5, 200\]"):
            SensorSpec.parse(f"digit:left:{slow}")
    assert SensorSpec.parse("digit:left:5").fps == 5.0


def test_sensor_unit_is_fixed_across_episodes_unless_randomised():
    spec = SensorSpec(SensorType.GELSIGHT_MINI)
    a = sample_sensor_params(spec, episode_seed=1, index=0)
    b = sample_sensor_params(spec, episode_seed=2, index=0)
    assert a.unit == b.unit and a.contact_offset_px != b.contact_offset_px
    wild = SensorSpec(SensorType.GELSIGHT_MINI, randomize_unit=True)
    assert sample_sensor_params(wild, episode_seed=1, index=0).unit != sample_sensor_params(
        wild, episode_seed=2, index=0).unit
    flat = sample_sensor_params(spec, episode_seed=1, index=0, randomize=False)
    assert flat.contact_offset_px == 0.0 and flat.illum_gain == 1.0
