"""Random sensor models: valid model files in the universal slot, drawn by seed, varied, and rendered like any other."""

import numpy as np
import pytest

from anytouch_policy.cli.main import main
from anytouch_policy.errors import ConfigError
from anytouch_policy.pretrain.dataset import PretrainDataset
from anytouch_policy.pretrain.manifest import read_manifest
from anytouch_policy.sensors import SensorType
from anytouch_policy.sim.dataset import write_dataset
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_family import FAMILY, random_sensor_models, write_random_sensor_models
from anytouch_policy.sim.sensor_model import load_sensor_model
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState

STATE = RigState(t_ns=0.0, tilt_deg=100.0, tilt_rate_deg_s=0.0, mass_left_g=80.0, mass_in_flight_g=0.0,
                 mass_on_scale_g=20.0, flow_g_s=3.0, critical_tilt_deg=101.0, stream_excess_deg=-1.0,
                 grip_force_n=67.7, load_n=1.7, torque_nmm=30.0, tare_g=90.0)


def test_the_same_seed_draws_the_same_models_and_model_n_does_not_depend_on_the_count():
    assert random_sensor_models(3, seed=4) == random_sensor_models(3, seed=4)
    assert random_sensor_models(3, seed=4) == random_sensor_models(12, seed=4)[:3]
    assert random_sensor_models(3, seed=4) != random_sensor_models(3, seed=5)


def test_the_family_varies_every_look_it_promises():
    models = random_sensor_models(40, seed=0)
    assert [m.name for m in models[:2]] == ["random_000", "random_001"]
    assert {m.slot for m in models} == {SensorType.UNIVERSAL}  # no sensor-specific token learns a drawn look
    assert {m.markers is None for m in models} == {True, False}
    assert {m.camera.orientation for m in models} == {"portrait", "landscape"}
    assert {len(m.optics.leds) for m in models} == set(range(FAMILY["leds"][0], FAMILY["leds"][1] + 1))
    ambient = np.array([m.optics.ambient for m in models])
    assert (ambient >= FAMILY["ambient"][0]).all() and (ambient <= FAMILY["ambient"][1]).all()
    assert ambient.std(axis=0).min() > 20  # each channel spread over the range, not one colour
    grids = {(m.markers.rows, m.markers.cols) for m in models if m.markers is not None}
    assert len(grids) > 5


def test_written_files_load_as_models_and_render_deterministically(tmp_path):
    paths = write_random_sensor_models(tmp_path / "rig", count=4, seed=2)
    assert [p.name for p in paths] == [f"random_00{i}.yaml" for i in range(4)]
    assert [load_sensor_model(p) for p in paths] == random_sensor_models(4, seed=2)  # the file is the drawn model
    looks = []
    for path in paths:
        spec = SensorSpec.parse(f"{path}:left")
        assert (spec.name, spec.sensor_type) == (f"{path.stem}_left", SensorType.UNIVERSAL)

        first, again = (TactileRenderer(sample_sensor_params(spec, episode_seed=3, index=0)).render(STATE, 0)
                        for _ in range(2))
        assert first.shape == (spec.model.format.height, spec.model.format.width, 3) and first.dtype == np.uint8
        assert np.array_equal(first, again)
        looks.append(first.reshape(-1, 3).mean(axis=0))
    assert np.ptp(np.array(looks), axis=0).max() > 20  # the drawn sensors look different


def test_an_output_folder_is_never_overwritten(tmp_path):
    write_random_sensor_models(tmp_path, count=1, seed=0)
    with pytest.raises(ConfigError, match="not empty"):
        write_random_sensor_models(tmp_path, count=1, seed=1)


def test_the_command_writes_the_files_and_refuses_a_bad_count(tmp_path, capsys):
    assert main(["sim", "sensors", "--out", str(tmp_path / "a"), "--count", "2", "--seed", "7"]) == 0
    assert "2 sensor models in" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["random_000.yaml", "random_001.yaml"]
    assert load_sensor_model(tmp_path / "a" / "random_001.yaml") == random_sensor_models(2, seed=7)[1]
    with pytest.raises(SystemExit):
        main(["sim", "sensors", "--out", str(tmp_path / "b"), "--count", "0"])
    assert "--count: must be an integer in [1, 1000], got '0'" in capsys.readouterr().err


def test_a_dataset_through_random_models_pairs_each_with_the_reference_sensor_on_the_universal_token(tmp_path):
    paths = write_random_sensor_models(tmp_path / "rig", count=2, seed=1)
    specs = [SensorSpec.parse("gelsight_mini"), *(SensorSpec.parse(str(p)) for p in paths)]
    write_dataset(tmp_path / "data", hours=0.002, seed=4, sensors=specs, heldout=0.0, bar=False)
    records = read_manifest(tmp_path / "data" / "manifest.jsonl")
    assert {r.sensor for r in records} == {SensorType.GELSIGHT_MINI, SensorType.UNIVERSAL}
    dataset = PretrainDataset(records, image_size=56, augment=False, seed=0)
    assert dataset.add_distill_pools(4, SensorType.GELSIGHT_MINI, partners=True) == len(records)  # all have a Mini
    for index, ref in dataset._reference.items():
        sample, reference = records[index], records[ref]
        assert reference.sensor is SensorType.GELSIGHT_MINI
        assert (reference.object, reference.position, reference.kind) == (sample.object, sample.position, sample.kind)
        # the change partners are the same drawn sensor at other times, not the other model in the universal slot
        partners = [records[j] for j in dataset._change_partners[index]]
        assert {p.unit for p in partners} == {sample.unit} and sample.unit.endswith("_left")
        assert len(partners) == 1 or all(p.position != sample.position for p in partners)
