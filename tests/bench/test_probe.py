"""`anytouch bench probe`: retrieval on hand-made embeddings, and every field on a tiny dataset with a tiny encoder."""

import numpy as np
import pytest
import torch

from anytouch_policy.bench.probe import (
    FROM_START,
    TARGETS,
    compare,
    first_pour_window,
    load_probe_set,
    pour_split,
    probe_sensors,
    regression_figures,
    target_features,
    top1_accuracy,
)
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.sim.dataset import write_dataset
from anytouch_policy.sim.probe import ridge_r2
from anytouch_policy.sim.sensor_params import SensorSpec


def test_retrieval_of_identical_embeddings_is_perfect_and_of_shuffled_ones_is_not():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert top1_accuracy(x, x) == 1.0
    assert top1_accuracy(x, x[::-1].copy()) == 0.0  # every query's twin sits at another index
    assert top1_accuracy(x, np.r_[x[:60], x[60:][::-1]]) == 0.5
    with pytest.raises(ConfigError, match="one candidate per query"):
        top1_accuracy(x, x[:10])


def test_pour_split_keeps_scenarios_whole():
    states = [{"kind": "pour", "poured_g": 1.0, "scenario": f"sc{i // 5}"} for i in range(50)]
    states += [{"kind": "touch", "poured_g": None, "scenario": "sc99"}]
    pours, train = pour_split(states)
    assert len(pours) == 50 and 0 < train.sum() < 50
    assert not {states[i]["scenario"] for i in pours[train]} & {states[i]["scenario"] for i in pours[~train]}


def _pours_of_different_fills(scenarios=20, steps=12, seed=0):
    """Synthetic pours: the window's embedding sees the mass left in the cylinder, fills differ by scenario."""
    rng = np.random.default_rng(seed)
    states, x = [], []
    for k in range(scenarios):
        fill = rng.uniform(80, 200)
        for t in rng.permutation(steps):  # state order need not be time order
            poured = 5.0 * t
            states.append({"kind": "pour", "scenario": f"sc{k:02d}", "t_s": float(t), "poured_g": poured})
            x.append([fill - poured, rng.normal()])
    states.append({"kind": "touch", "scenario": "sc99", "t_s": 0.0, "poured_g": None})
    x.append([0.0, 0.0])
    return states, np.array(x)


def test_first_pour_window_is_the_earliest_pour_state_of_the_same_scenario():
    states, _ = _pours_of_different_fills()
    pours, _ = pour_split(states)
    first = first_pour_window(states, pours)
    for i, f in zip(pours, first, strict=True):
        assert states[f]["scenario"] == states[i]["scenario"] and states[f]["t_s"] == 0.0


def test_poured_mass_needs_the_start_of_the_pour_and_the_grip_load_does_not():
    states, x = _pours_of_different_fills()
    pours, train = pour_split(states)
    y = np.array([states[i]["poured_g"] for i in pours])
    assert set(FROM_START) == {"poured_g", "flow_g_s"}
    one_window = ridge_r2(x[pours], y, train)
    with_start = ridge_r2(target_features(x, states, pours, "poured_g"), y, train)
    assert one_window < 0.6 < 0.99 < with_start  # the fill hides the poured mass in one window
    first = first_pour_window(states, pours)
    np.testing.assert_array_equal(target_features(x, states, pours, "flow_g_s"),
                                  np.c_[x[pours], x[pours] - x[first]])
    np.testing.assert_array_equal(target_features(x, states, pours, "load_n"), x[pours])


@pytest.fixture(scope="module")
def tiny_probe(tmp_path_factory):
    data = tmp_path_factory.mktemp("probe") / "data"
    write_dataset(data, hours=0.02, seed=6, sensors=[SensorSpec.parse(s) for s in probe_sensors()], size=56,
                  every_s=0.3, heldout=0.0, bar=False)
    return load_probe_set(data, 56, probe_sensors())


@pytest.mark.slow
def test_probe_reports_every_field_for_both_encoders(tiny_probe):
    """Every field for two rows; the one encoder under both names also shows the figures are deterministic and
    that equal is not above (one comparison: each row costs a pass over every sensor's windows)."""
    torch.manual_seed(0)
    enc = AnyTouchEncoder.from_preset("anytouch-tiny").eval()
    out = compare({"random_init": enc, "pretrained": enc}, tiny_probe)
    assert out["states"] == len(tiny_probe.states) and out["retrieval_chance"] == pytest.approx(1 / out["states"],
                                                                                                 abs=1e-5)
    assert out["pour_states"]["train"] >= 10 and out["pour_states"]["test"] >= 10
    assert out["encoders"]["random_init"] == out["encoders"]["pretrained"]
    for name in ("random_init", "pretrained"):
        figures = out["encoders"][name]
        assert set(figures["regression_r2"]) == set(probe_sensors())
        for sensor in probe_sensors():
            r2 = figures["regression_r2"][sensor]
            assert set(r2) == set(TARGETS) and all(np.isfinite(v) and v <= 1.0 for v in r2.values())
        assert set(figures["retrieval_top1"]) == {"gelsight_mini_to_digit_specific",
                                                  "gelsight_mini_to_digit_universal",
                                                  "gelsight_mini_to_duragel_universal"}
        assert all(0.0 <= v <= 1.0 for v in figures["retrieval_top1"].values())
    assert set(out["above_baseline"]["regression"]) == set(probe_sensors())
    assert not any(out["above_baseline"]["retrieval"].values())  # equal is not above
    assert not any(v for row in out["above_baseline"]["regression"].values() for v in row.values())
    assert set(out["features"]) == set(TARGETS) and "first pour window" in out["features"]["poured_g"]
    reference = out["reference"]["fixed_features"]
    assert "absolute differences" in reference["features"]
    assert reference["regression_r2"] == regression_figures(tiny_probe.fixed, tiny_probe.states)
    for sensor in probe_sensors():
        assert set(reference["regression_r2"][sensor]) == set(TARGETS)
        assert all(np.isfinite(v) and v <= 1.0 for v in reference["regression_r2"][sensor].values())


def test_fixed_features_are_those_of_each_state_window(tiny_probe):
    """The reference row reads the windows the encoders read: each state's last 3 frames at the encoder's size."""
    n = len(tiny_probe.states)
    for sensor in probe_sensors():
        fixed, windows = tiny_probe.fixed[sensor], tiny_probe.windows[sensor]
        assert fixed.shape[0] == n == windows.shape[0] and fixed.ndim == 2 and np.isfinite(fixed).all()
        assert len(np.unique(fixed.round(6), axis=0)) > n // 2  # states differ, so do their features


@pytest.mark.slow
def test_a_target_that_does_not_vary_is_refused(tiny_probe):
    pours, train = pour_split(tiny_probe.states)
    flat = [dict(s, flow_g_s=0.0) if s["kind"] == "pour" else s for s in tiny_probe.states]
    enc = AnyTouchEncoder.from_preset("anytouch-tiny").eval()
    with pytest.raises(ConfigError, match="flow_g_s does not vary"):
        compare({"a": enc}, type(tiny_probe)(flat, tiny_probe.windows, tiny_probe.fixed))


def test_probe_data_without_duragel_is_refused(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, hours=0.003, seed=1, size=56, heldout=0.0, bar=False)
    with pytest.raises(ConfigError, match="duragel"):
        load_probe_set(data, 56, probe_sensors())
