"""Sensor models as data: the shipped files, a user's file, the refusals, and every model in one rig."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.schema import load_yaml
from anytouch_policy.sensors import NATIVE_FORMATS, SensorType
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.rig import SimRig
from anytouch_policy.sim.sensor_model import DEFAULT_SHORT_SIDE_MM, MODEL_DIR, list_sensor_models, load_sensor_model
from anytouch_policy.sim.sensor_params import Finger, SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState

SLOTS = {"gelsight_mini": SensorType.GELSIGHT_MINI, "digit": SensorType.DIGIT, "gelslim": SensorType.GELSLIM,
         "gelsight": SensorType.GELSIGHT, "duragel": SensorType.DURAGEL}
STATE = RigState(t_ns=0.0, tilt_deg=100.0, tilt_rate_deg_s=0.0, mass_left_g=80.0, mass_in_flight_g=0.0,
                 mass_on_scale_g=20.0, flow_g_s=3.0, critical_tilt_deg=101.0, stream_excess_deg=-1.0,
                 grip_force_n=67.7, load_n=1.7, torque_nmm=30.0, tare_g=90.0)


def shipped(name):
    return yaml.safe_load((MODEL_DIR / f"{name}.yaml").read_text())


def write_model(tmp_path, data, name="my_sensor.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def user_model(tmp_path):
    """A user's own sensor: GelSlim optics on a small landscape camera at 40 fps, 5 x 6 markers, in the Mini's slot."""
    data = shipped("gelslim")
    data.update(description="my bench sensor", slot="gelsight_mini", markers={
        "rows": 5, "cols": 6, "radius_px": 3.0, "darkness": 0.8, "jitter_px": 0.5})
    data["camera"].update(resolution=[200, 150], orientation="landscape", fps=40)
    return write_model(tmp_path, data)


def test_shipped_models_fill_their_token_slots():
    assert set(list_sensor_models()) == set(SLOTS)
    for name, slot in SLOTS.items():
        model = load_sensor_model(name)
        assert model.name == name and model.slot is slot and model.description
        assert load_sensor_model(slot) is model  # a SensorType means the shipped model of its name


def test_mini_and_digit_models_publish_the_real_drivers_formats():
    for slot in (SensorType.GELSIGHT_MINI, SensorType.DIGIT):
        assert load_sensor_model(slot).format == NATIVE_FORMATS[slot]
    assert set(NATIVE_FORMATS) == {SensorType.GELSIGHT_MINI, SensorType.DIGIT}  # only real drivers' formats


def test_shipped_models_differ_in_optics_resolution_gel_and_markers():
    models = [load_sensor_model(n) for n in SLOTS]
    aspects = {
        "resolution": lambda m: (m.format.height, m.format.width),
        "frame rate": lambda m: m.format.fps,
        "optics": lambda m: (m.optics.ambient, len(m.optics.leds), m.optics.vignette),
        "gel": lambda m: (m.gel.shear_px_per_n, m.gel.contact_half_width, m.gel.texture_grain_px),
        "markers": lambda m: None if m.markers is None else (m.markers.rows, m.markers.cols, m.markers.radius_px),
    }
    for aspect, key in aspects.items():
        for a, b in itertools.combinations(models, 2):
            if aspect == "frame rate" and {a.name, b.name} <= {"gelslim", "gelsight"}:
                continue  # both 30 fps, as the real sensors
            if aspect == "markers" and {a.name, b.name} <= {"gelsight_mini", "digit"}:
                continue  # neither has markers, as the real units they follow
            assert key(a) != key(b), f"{a.name} and {b.name} share their {aspect}"


def test_a_model_file_renders_deterministically(user_model):
    spec = SensorSpec.parse(f"{user_model}:right")
    assert (spec.name, spec.sensor_type, spec.finger, spec.model.description) == (
        "my_sensor_right", SensorType.GELSIGHT_MINI, Finger.RIGHT, "my bench sensor")

    def frames(seed):
        renderer = TactileRenderer(sample_sensor_params(spec, episode_seed=seed, index=0))
        return [renderer.render(STATE, k) for k in range(3)]

    first = frames(5)
    assert first[0].shape == (150, 200, 3) and first[0].dtype == np.uint8
    assert 30 < first[0].mean() < 230
    assert all(np.array_equal(a, b) for a, b in zip(first, frames(5), strict=True))  # same seed: same bytes
    assert not np.array_equal(first[0], frames(6)[0])  # another episode: another look and noise
    gelslim = TactileRenderer(sample_sensor_params(SensorSpec.parse("gelslim"), episode_seed=5, index=0))
    assert gelslim.render(STATE, 0).shape != first[0].shape


def test_a_model_file_may_name_itself_and_turn_off_markers(tmp_path):
    text = (MODEL_DIR / "gelslim.yaml").read_text().replace("slot: gelslim", "name: bench_v2\nslot: gelslim")
    text = text[:text.index("markers:")] + "markers: off\n" + text[text.index("variation:"):]
    path = tmp_path / "bench-v2.yml"
    path.write_text(text)
    model = load_sensor_model(str(path))
    assert model.name == "bench_v2" and model.markers is None
    assert SensorSpec.parse(str(path)).name == "bench_v2_left"


def test_the_mini_comes_with_and_without_markers(tmp_path):
    """The shipped Mini has none (as the real unit it is fitted to); `markers: on` prints the default grid on it."""
    text = (MODEL_DIR / "gelsight_mini.yaml").read_text()
    assert load_sensor_model("gelsight_mini").markers is None
    path = tmp_path / "mini_markers.yaml"
    path.write_text(text.replace("markers: false", "markers: on"))
    model = load_sensor_model(str(path))
    assert (model.markers.rows, model.markers.cols, model.markers.darkness) == (7, 9, 0.82)

    def rest(spec):
        return TactileRenderer(sample_sensor_params(SensorSpec.parse(spec), episode_seed=1, index=0)).render(
            RigState(**{**vars(STATE), "grip_force_n": 0.0, "load_n": 0.0, "torque_nmm": 0.0}), 0).astype(float)

    dots = rest("gelsight_mini") - rest(str(path))  # same optics and noise: only the dots differ
    h, w = dots.shape[:2]
    centre = dots[h // 2 - 1:h // 2 + 2, w // 2 - 1:w // 2 + 2].mean()  # the middle dot of a 7 x 9 grid
    between = dots[h // 2 - 1:h // 2 + 2, w // 2 + w // 18 - 1:w // 2 + w // 18 + 2].mean()  # halfway to the next
    assert centre > 50 and abs(between) < 3


def _set(path, value):
    def change(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_set(("camera", "fps"), KeyError), "missing required field(s) camera.fps"),
    (_set(("slot",), KeyError), "missing required field(s) slot"),
    (_set(("gel", "texture_per_g"), KeyError), "missing required field(s) gel.texture_per_g"),
    (_set(("camera", "fps"), 500), "field camera.fps must be in [5, 200], got 500"),
    (_set(("camera", "fps"), 0.001), "field camera.fps must be in [5, 200], got 0.001"),  # no frame per decision
    (_set(("camera", "fps"), "fast"), "field camera.fps must be a number, got 'fast'"),
    (_set(("optics", "vignette"), 1.5), "field optics.vignette must be in [0, 1), got 1.5"),
    (_set(("optics", "leds", 1, "rgb", 2), 300.0), "field optics.leds[1].rgb[2] must be in [0, 255], got 300"),
    (_set(("optics", "leds"), []), "field optics.leds must hold at least 1 item, got []"),
    (_set(("gel", "shear_px_per_n"), float("nan")), "field gel.shear_px_per_n must be in [0, 100], got nan"),
    (_set(("gel", "shear_far"), True), "field gel.shear_far must be a number, got True"),
    (_set(("gel", "stifness"), 2.0), "unknown field(s) gel.stifness; valid: shear_px_per_n, shear_far,"),
    (_set(("markers", "rows"), 0), "field markers.rows must be in [1, 64], got 0"),
    (_set(("markers", "rows"), 2.5), "field markers.rows must be an integer, got 2.5"),
    (_set(("markers",), "dots"), "field markers: false (or off) for no markers, true (or on) for the default grid"),
    (_set(("markers", "cols"), 60), "field markers: 16 x 60 dots of radius 1.8 px overlap"),
    (_set(("slot",), "tac3d"), "field slot: unknown sensor name 'tac3d'; valid names: gelsight, digit,"),
    (_set(("camera", "resolution"), [176, 288]), "field camera.resolution: give the camera's landscape resolution"),
    (_set(("camera", "orientation"), "upright"), "field camera.orientation must be one of 'landscape' or 'portr"),
    (_set(("variation", "unit", "shear"), [1.2, 0.8]), "field variation.unit.shear: a range [low, high] needs"),
    (_set(("variation", "episode", "exposure"), -0.1), "field variation.episode.exposure must be in [0, 0.5], got"),
    (_set(("camera", "px_per_mm"), 0.0), "field camera.px_per_mm must be in (0, 200], got 0.0"),
    (_set(("camera", "px_per_mm"), "8"), "field camera.px_per_mm must be a number, got '8'"),
])
def test_a_bad_model_file_is_refused_naming_file_and_field(tmp_path, change, message):
    data = shipped("gelslim")
    change(data)
    path = write_model(tmp_path, data, "bad.yaml")
    with pytest.raises(ConfigError) as err:
        SensorSpec.parse(f"{path}:left")
    assert str(err.value).startswith(f"sensor model {path}: ")
    assert message in str(err.value)


def test_a_huge_bad_value_is_quoted_short(tmp_path):
    """Nested YAML aliases: a 1 KB file whose camera.resolution expands to 10^8 numbers. The error quotes a cut
    value (it printed all of it: 522 MB, 13 s)."""
    path = tmp_path / "aliases.yaml"
    inner = "&a0 [" + ", ".join(["1.0"] * 10) + "]"
    for i in range(1, 8):
        inner = f"&a{i} [{inner}" + f", *a{i - 1}" * 9 + "]"
    data = shipped("gelslim")
    data["camera"]["resolution"] = "RES"
    path.write_text(yaml.safe_dump(data).replace("RES", inner))
    with pytest.raises(ConfigError) as err:
        SensorSpec.parse(f"{path}:left")
    message = str(err.value)
    assert message.startswith(f"sensor model {path}: ") and "camera.resolution" in message
    assert len(message) < 1000 and "..." in message


def test_the_image_scale_is_optional(tmp_path):
    """camera.px_per_mm sets what a contact of a given size in mm covers; a file without it gets the shorter side
    spanning DEFAULT_SHORT_SIDE_MM."""
    assert {n: load_sensor_model(n).px_per_mm for n in list_sensor_models()} == {
        "digit": 16.0, "duragel": 12.0, "gelsight": 16.0, "gelsight_mini": 17.0, "gelslim": 8.0}
    data = shipped("gelslim")
    del data["camera"]["px_per_mm"]
    assert load_sensor_model(str(write_model(tmp_path, data, "plain.yaml"))).px_per_mm == 176 / DEFAULT_SHORT_SIDE_MM


def test_a_slot_without_a_shipped_model_is_named():
    with pytest.raises(ConfigError, match="no shipped sensor model for token slot universal; shipped models: digit,"):
        SensorSpec(SensorType.UNIVERSAL)


def test_unreadable_model_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"sensor model file .*missing.yaml not found"):
        load_sensor_model(str(tmp_path / "missing.yaml"))
    (tmp_path / "adir.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"sensor model file .*adir.yaml is a folder, not a model file"):
        load_sensor_model(str(tmp_path / "adir.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list.yaml: expected a mapping of fields"):
        load_sensor_model(str(tmp_path / "list.yaml"))
    (tmp_path / "broken.yaml").write_text("camera: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML"):
        load_sensor_model(str(tmp_path / "broken.yaml"))
    (tmp_path / "My Sensor.yaml").write_text((MODEL_DIR / "digit.yaml").read_text())
    with pytest.raises(ConfigError, match=r"field name: 'My Sensor' cannot name a sensor"):
        load_sensor_model(Path(tmp_path / "My Sensor.yaml"))


def test_every_model_renders_the_same_physical_state_at_its_own_rate(user_model):
    specs = [SensorSpec.parse(t) for t in ("gelsight_mini", "digit:right", "gelslim", "gelsight:right", "duragel",
                                           f"{user_model}:right")]
    with SimRig(RigConfig(), specs, seed=3) as rig:
        results = [rig.step(a) for a in [Action.POUR] * 5 + [Action.WAIT] * 5]
    for spec in specs:
        fmt = spec.model.format
        frames = [f for r in results for f in r.frames[spec.name]]
        assert len(frames) == pytest.approx(fmt.fps * 0.2 * len(results), abs=1)
        stamps = np.array([f.stamp_ns for f in frames])
        assert np.all(np.diff(stamps) == round(1e9 / fmt.fps))
        assert all(f.image.shape == (fmt.height, fmt.width, 3) for f in frames)
        for r in results:  # each tick's frames show the states of that tick, whatever the rate
            assert all(r.state.t_ns - 0.2e9 < f.stamp_ns <= r.state.t_ns for f in r.frames[spec.name])
    # The same contact through two models: each frame is its renderer's picture of the rig state at its stamp, so a
    # second rig with the models in the same places reproduces every frame (aligned, deterministic).
    with SimRig(RigConfig(), specs, seed=3) as rig:
        again = [rig.step(a) for a in [Action.POUR] * 5 + [Action.WAIT] * 5]
    for a, b in zip(results, again, strict=True):
        for name in a.frames:
            assert all(np.array_equal(x.image, y.image) for x, y in zip(a.frames[name], b.frames[name], strict=True))


def test_a_key_written_twice_is_refused(tmp_path):
    """The parsers keep the last of two equal keys; a model file that sets `slot` twice names it instead."""
    path = tmp_path / "twice.yaml"
    path.write_text((MODEL_DIR / "gelsight_mini.yaml").read_text() + "\nslot: digit\n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid YAML \(key 'slot' given twice in one mapping"):
        SensorSpec.parse(str(path))
    merged = tmp_path / "merged.yaml"  # a YAML merge may be overridden: that is what it is for
    merged.write_text("base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  x: 3\n")
    assert load_yaml(merged)["over"] == {"x": 3, "y": 2}
