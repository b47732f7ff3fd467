"""The heightmap contact path: shapes as indentation maps, their normal force, and TactileRenderer.render_heightmap
(slope shading per LED, pressed tint, shear and twist of the gel layer), checked against the analytic band."""

import math

import cv2
import numpy as np
import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.sim.heightmap import (
    WINKLER_N_MM3,
    Corner,
    Cylinder,
    ForceTable,
    Grating,
    Knurl,
    Ridge,
    Sphere,
    indentation_px,
)
from anytouch_policy.sim.renderer import TactileRenderer
from anytouch_policy.sim.sensor_model import list_sensor_models
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params
from anytouch_policy.sim.state import RigState

MODELS = list_sensor_models()
SHAPES = [(Sphere(5.0), 0.4), (Cylinder(4.0, 20.0), 0.3), (Ridge(90.0, 0.3, 20.0), 0.3),
          (Grating(0.8, 0.1, 10.0), 0.2), (Knurl(1.0, 0.1, 10.0), 0.2), (Corner(4.0), 0.8)]


def renderer(model, text=None, seed=3):
    return TactileRenderer(sample_sensor_params(SensorSpec.parse(text or model), episode_seed=seed, index=0))


def pressed(r, shape, depth, angle=0.3):
    p = r.params
    return indentation_px(shape, depth_mm=depth, centre_px=(p.width / 2, p.height / 2), angle_rad=angle,
                          px_per_mm=p.model.px_per_mm, height=p.height, width=p.width)


def band_state(**kw):
    values = dict(t_ns=0.0, tilt_deg=0.0, tilt_rate_deg_s=0.0, mass_left_g=80.0, mass_in_flight_g=0.0,
                  mass_on_scale_g=0.0, flow_g_s=0.0, critical_tilt_deg=101.0, stream_excess_deg=-1.0,
                  grip_force_n=67.7, load_n=0.0, torque_nmm=0.0, tare_g=90.0)
    values.update(kw)
    return RigState(**values)


def test_sphere_indentation_is_the_cap_the_sphere_presses_in():
    d = pressed(renderer("gelsight_mini"), Sphere(5.0), 0.4, angle=0.0)
    ppm = 17.0
    assert d.max() == pytest.approx(0.4 * ppm, rel=0.05)  # smoothed a little by the gel's skin
    radius_px = (d > 0.05 * d.max()).sum(axis=1).max() / 2
    assert radius_px == pytest.approx(math.sqrt(2 * 5.0 * 0.4 - 0.16) * ppm, rel=0.15)


def test_force_table_matches_the_winkler_sphere_and_grows_with_depth():
    table = ForceTable(Sphere(6.0), 1.0)
    for d in (0.1, 0.3, 0.8):  # Winkler sphere: k * pi * R * d^2 (plus d^3 / 3 terms)
        exact = WINKLER_N_MM3 * math.pi * (6.0 * d * d - d**3 / 3)
        assert table.force_n(d) == pytest.approx(exact, rel=0.03)
    forces = table.force_n(np.linspace(0, 1, 11))
    assert forces[0] == 0.0 and np.all(np.diff(forces) > 0)
    assert table.area_mm2(0.5) == pytest.approx(math.pi * (2 * 6.0 * 0.5 - 0.25), rel=0.03)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("shape", "depth"), SHAPES, ids=[s.kind for s, _ in SHAPES])
def test_every_shape_renders_through_every_model_and_differs_from_rest(model, shape, depth):
    r = renderer(model)
    rest = r.render_heightmap(np.zeros((r.params.height, r.params.width), np.float32), 4).astype(np.int16)
    image = r.render_heightmap(pressed(r, shape, depth), 4)
    assert image.shape == rest.shape and image.dtype == np.uint8
    changed = np.abs(image.astype(np.int16) - rest).sum(axis=2) > 30
    assert changed.mean() > 0.001  # the contact shows
    assert changed.mean() < 0.6  # and only there


def test_shapes_look_different_from_each_other():
    """Two shapes differ by at least half what the fainter of them shows against the gel at rest (same frame index:
    same noise), whatever the model's optics make of a contact's size."""
    r = renderer("gelsight_mini")
    images = [r.render_heightmap(pressed(r, shape, depth), 4).astype(np.int16) for shape, depth in SHAPES]
    rest = r.render_heightmap(np.zeros((r.params.height, r.params.width), np.float32), 4).astype(np.int16)
    shown = [np.abs(image - rest).mean() for image in images]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 0.5 * min(shown[i], shown[j]), (
                SHAPES[i][0].kind, SHAPES[j][0].kind)


def test_rest_frames_of_both_paths_are_the_same_picture():
    """No contact: the heightmap path shows the gel at rest exactly as render() does with the gripper open."""
    for model in MODELS:
        r = renderer(model)
        empty = np.zeros((r.params.height, r.params.width), np.float32)
        assert np.array_equal(r.render_heightmap(empty, 9), r.render(band_state(grip_force_n=0.0), 9))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("finger", ["left", "right"])
def test_the_band_as_a_heightmap_renders_as_the_analytic_band(model, finger):
    """The same contact through both paths: the band's depth profile given to render_heightmap. Without load they
    differ only by the numerical slope (Sobel vs the analytic derivative); with load by where the shear reaches (a
    blurred contact vs the band's own falloff), which moves marker edges by a fraction of a pixel."""
    r = renderer(model, f"{model}:{finger}")
    p = r.params
    gain = p.unit.shear_px_per_n * p.shear_gain
    a = math.radians(p.mount_angle_deg)
    mirror = -1.0 if finger == "right" else 1.0
    for grip in (30.0, 67.7, 100.0):
        band = r.render(band_state(grip_force_n=grip), 5).astype(np.int16)
        rest = r.render(band_state(grip_force_n=0.0), 5).astype(np.int16)
        same = r.render_heightmap(r.band_depth_px(grip), 5).astype(np.int16)
        assert np.abs(band - same).mean() < 0.1 and np.abs(band - same).max() <= 3
        assert np.abs(band - rest).mean() > 1.0  # the contact itself is far larger than that
        load = 2.0  # at tilt 0 the shear runs along the band, and there is no torque
        loaded = r.render(band_state(grip_force_n=grip, load_n=load), 5).astype(np.int16)
        shear = (mirror * gain * 0.5 * load * math.sin(a), gain * 0.5 * load * math.cos(a))
        moved = r.render_heightmap(r.band_depth_px(grip), 5, shear_px=shear).astype(np.int16)
        assert np.abs(loaded - moved).mean() < 1.5
        assert np.abs(loaded - band).mean() > 2 * np.abs(loaded - moved).mean()


def marker_centres(image):
    dark = (image.mean(axis=2) < 70).astype(np.uint8)
    _, _, stats, centres = cv2.connectedComponentsWithStats(dark)
    return centres[1:][stats[1:, cv2.CC_STAT_AREA] > 5]


def test_shear_displaces_markers_at_the_contact_and_less_far_from_it():
    r = renderer("gelsight")  # large markers grid, soft gel
    p = r.params
    depth = indentation_px(Grating(0.8, 0.05, 12.0), depth_mm=0.05, centre_px=(p.width / 2, p.height / 2),
                           angle_rad=0.0, px_per_mm=p.model.px_per_mm, height=p.height, width=p.width)
    still = marker_centres(r.render_heightmap(depth, 2))
    moved = marker_centres(r.render_heightmap(depth, 2, shear_px=(6.0, 0.0)))
    nearest = moved[np.argmin(((still[:, None] - moved[None]) ** 2).sum(-1), axis=1)]
    shift = nearest - still
    centre = np.hypot(still[:, 0] - p.width / 2, still[:, 1] - p.height / 2) < 40
    edge = np.hypot(still[:, 0] - p.width / 2, still[:, 1] - p.height / 2) > 170
    assert np.median(shift[centre, 0]) == pytest.approx(6.0, abs=1.0)
    assert np.median(np.abs(shift[centre, 1])) < 0.5
    assert np.median(shift[edge, 0]) < 0.8 * np.median(shift[centre, 0])


def test_twist_turns_the_gel_about_the_contact():
    r = renderer("gelsight")
    p = r.params
    depth = pressed(r, Sphere(8.0), 0.5, angle=0.0)
    still = marker_centres(r.render_heightmap(depth, 2))
    turned = marker_centres(r.render_heightmap(depth, 2, twist_rad=0.05))
    nearest = turned[np.argmin(((still[:, None] - turned[None]) ** 2).sum(-1), axis=1)]
    rel = still - np.array([p.width / 2, p.height / 2])
    near = np.hypot(*rel.T) < 60
    cross = rel[near, 0] * (nearest - still)[near, 1] - rel[near, 1] * (nearest - still)[near, 0]
    assert np.median(cross) > 0  # turned clockwise in the image (x toward y) for a positive angle


def test_a_bad_depth_map_is_refused():
    r = renderer("digit")
    with pytest.raises(ConfigError, match="320 x 240"):
        r.render_heightmap(np.zeros((240, 320), np.float32), 0)
    bad = np.zeros((320, 240), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(ConfigError, match="finite"):
        r.render_heightmap(bad, 0)


def test_the_heightmap_path_is_deterministic_per_frame_index():
    r = renderer("gelslim")
    depth = pressed(r, Knurl(1.0, 0.1, 10.0), 0.2)
    a = r.render_heightmap(depth, 11, shear_px=(2.0, -1.0), texture_phase=3.3)
    assert np.array_equal(a, renderer("gelslim").render_heightmap(depth, 11, shear_px=(2.0, -1.0), texture_phase=3.3))
    assert not np.array_equal(a, r.render_heightmap(depth, 12, shear_px=(2.0, -1.0), texture_phase=3.3))
    assert not np.array_equal(a, r.render_heightmap(depth, 11, shear_px=(2.0, -1.0), texture_phase=4.3))
