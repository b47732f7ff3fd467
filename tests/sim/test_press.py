"""A ball pressed into a simulated gel (sim/press.py): the indentation's geometry, a rest frame that is the rest
image, and the shipped GelSight Mini shading a press the way the real one does (taxim's real presses)."""

import numpy as np
import pytest

from anytouch_policy.data.real_frames import load_ball_presses
from anytouch_policy.hardware.cameras.gelsight_mini import crop_and_resize
from anytouch_policy.sim.appearance import background, marker_alpha
from anytouch_policy.sim.press import ball_indentation, render_indentation
from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params

H, W = 240, 320


def mini_params():
    return sample_sensor_params(SensorSpec("gelsight_mini"), episode_seed=0, index=0, randomize=False)


def test_a_ball_indents_a_cap_of_its_contact_radius():
    dent = ball_indentation(H, W, centre_xy=(150.0, 110.0), contact_radius_px=20.0, ball_radius_px=30.0)
    assert dent.shape == (H, W) and dent.dtype == np.float32
    ys, xs = np.mgrid[0:H, 0:W]
    r = np.hypot(xs - 150.0, ys - 110.0)
    assert np.unravel_index(dent.argmax(), dent.shape) == (110, 150)
    cap = 30.0 - np.sqrt(30.0**2 - 20.0**2)  # the ball's depth below the gel's surface
    assert 0.7 * cap < dent.max() <= cap
    assert dent[r > 40].max() < 0.01 * cap  # nothing far outside the contact
    assert dent[(r > 15) & (r < 25)].mean() < 0.5 * dent[r < 5].mean()  # the rim is shallow
    with pytest.raises(ValueError, match="cannot make a contact"):
        ball_indentation(H, W, centre_xy=(150.0, 110.0), contact_radius_px=31.0, ball_radius_px=30.0)


def test_no_indentation_renders_the_rest_image_with_the_models_noise():
    params = mini_params()
    frame = render_indentation(params, np.zeros((H, W), np.float32), rng=np.random.default_rng(0))
    rest = background(params.model.optics, H, W, params.unit.led_gain)
    alpha = marker_alpha(params.model.markers, H, W, unit_seed=params.unit_seed)
    if alpha is not None:
        rest *= (1.0 - params.model.markers.darkness * alpha)[..., None]
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    residual = frame.astype(np.float64) - rest
    assert abs(residual.mean() + 0.5) < 0.1  # frames are truncated to integers, as the renderer's
    assert residual.std() == pytest.approx(np.hypot(params.unit.noise_sigma, np.sqrt(1 / 12)), rel=0.1)


def sector_colours(difference, centre, radius):
    """Mean RGB difference in the upper, lower, left and right quarter of a contact (0.3 to 1 radius)."""
    ys, xs = np.mgrid[0:difference.shape[0], 0:difference.shape[1]]
    dx, dy = xs - centre[0], ys - centre[1]
    ring = (np.hypot(dx, dy) > 0.3 * radius) & (np.hypot(dx, dy) < radius)
    quarters = {"up": dy < -abs(dx), "down": dy > abs(dx), "left": dx < -abs(dy), "right": dx > abs(dy)}
    return {k: difference[ring & q].mean(0) for k, q in quarters.items()}


def test_the_simulated_mini_shades_a_press_like_the_real_one():
    """Red light from the top, green from the right, blue from below in the real presses; the model too."""
    real = load_ball_presses()
    params = mini_params()
    bg = crop_and_resize(real.background, 0.0, W, H).astype(np.float32)
    rest = render_indentation(params, np.zeros((H, W), np.float32), rng=np.random.default_rng(0)).astype(np.float32)
    for i in (0, 9, 19):
        centre, radius = real.centres[i] / 2, real.radii[i] / 2  # 640 x 480 -> 320 x 240
        dent = ball_indentation(H, W, centre_xy=tuple(centre), contact_radius_px=radius, ball_radius_px=31.5)
        sim = render_indentation(params, dent, rng=np.random.default_rng(0)).astype(np.float32) - rest
        for diff in (crop_and_resize(real.presses[i], 0.0, W, H) - bg, sim):
            colours = sector_colours(diff, centre, radius)
            assert colours["up"][0] > colours["down"][0] + 20  # red
            assert colours["right"][1] > colours["left"][1] + 20  # green
            assert colours["down"][2] > colours["up"][2] + 20  # blue
