"""Real GelSight Mini frames through our code: taxim's ball-press calibration set (a background and 24 presses,
640 x 480 BGR, with hand-labelled contacts; anytouch_policy/data/real_frames.py) streamed as MJPG into the GelSight
Mini backend, then the encoder's preprocessing, `anytouch embed`, and where the contact lands after our crop/resize.

Expectations are computed here without our code: the crop by array slicing, the colour order by reversing the
channel axis, resizes with Pillow's box filter, ImageNet constants written out.
"""

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from anytouch_policy.cli.main import main
from anytouch_policy.data.real_frames import load_ball_presses
from anytouch_policy.hardware.cameras.gelsight_mini import GelSightMiniConfig, GelSightMiniSource
from anytouch_policy.model import AnyTouchEncoder, save_encoder_bundle
from anytouch_policy.tactile import preprocess_window, static_window
from tests.hardware.cameras.mjpg_video import write_mjpg_frames

BORDER = 0.15  # GelSightMiniConfig.border_fraction, the gsrobotics default
OUT_W, OUT_H = 320, 240  # what the backend publishes (sensors.NATIVE_FORMATS)
#: Temporal noise of the real frames (grey levels rms at 640 x 480): the std of press minus background far from the
#: contact, over sqrt(2). A second background frame is the background with this much noise.
REAL_NOISE = 1.3


def expected_frame(bgr: np.ndarray, size: tuple[int, int] = (OUT_W, OUT_H)) -> np.ndarray:
    h, w = bgr.shape[:2]
    dy, dx = round(h * BORDER), round(w * BORDER)
    rgb = np.ascontiguousarray(bgr[dy:h - dy, dx:w - dx, ::-1])
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def label_in_output(x: float, y: float, r: float, shape: tuple[int, int]) -> tuple[float, float, float]:
    """A labelled contact (x, y, radius in source pixels) in the published frame's pixels."""
    h, w = shape
    dy, dx = round(h * BORDER), round(w * BORDER)
    sx, sy = OUT_W / (w - 2 * dx), OUT_H / (h - 2 * dy)
    return (x + 0.5 - dx) * sx - 0.5, (y + 0.5 - dy) * sy - 0.5, r * (sx + sy) / 2


@pytest.fixture(scope="module")
def real():
    return load_ball_presses("gelsight_mini")


@pytest.fixture(scope="module")
def published(real, tmp_path_factory):
    """What the backend hands out for: the background, the background with fresh camera noise, each press."""
    folder = tmp_path_factory.mktemp("real_mini")
    noisy = real.background + np.random.default_rng(0).normal(0.0, REAL_NOISE, real.background.shape)
    frames = [real.background, np.clip(np.rint(noisy), 0, 255).astype(np.uint8), *real.presses]
    out = []
    for i, frame in enumerate(frames):
        video = write_mjpg_frames(folder / f"frame{i}.avi", [frame] * 3)
        config = GelSightMiniConfig(device=str(video), allow_file=True, warmup_frames=0, replay_fps=100.0)
        with GelSightMiniSource(config) as source:
            got = source.read(timeout_s=2.0)
        assert got is not None, f"no frame from {video}"
        out.append(got.image)
    return out


def test_the_data_pack_holds_a_background_and_24_labelled_presses(real):
    assert real.background.shape == (480, 640, 3) and real.presses.shape == (24, 480, 640, 3)
    assert real.centres.shape == (24, 2) and real.radii.shape == (24,)
    h, w = real.shape
    assert ((real.centres > 0) & (real.centres < (w, h))).all() and (real.radii > 20).all()
    mean_rgb = real.background.reshape(-1, 3).mean(0)[::-1]
    assert mean_rgb[2] > mean_rgb[0] + 20  # teal gel: stored BGR, blue above red once reversed


def test_the_backend_hands_out_real_frames_cropped_resized_rgb(real, published):
    for raw, image in zip([real.background, *real.presses], published[:1] + published[2:], strict=True):
        assert image.shape == (OUT_H, OUT_W, 3) and image.dtype == np.uint8
        error = np.abs(image.astype(np.float32) - expected_frame(raw))
        # MJPG at OpenCV's writer quality: about 1.5 grey levels on average (a mirrored frame: 4-6, its 99th
        # percentile 45-63)
        assert error.mean() < 2.0 and np.percentile(error, 99) <= 6, (error.mean(), np.percentile(error, 99))
    means, expected = published[0].reshape(-1, 3).mean(0), expected_frame(real.background).reshape(-1, 3).mean(0)
    assert np.abs(means - expected).max() < 2.5
    assert expected[2] - expected[0] > 15  # so swapped red and blue could not pass the line above


def test_preprocessing_of_a_real_frame_is_a_plain_resize_and_imagenet_normalisation(published):
    frame = published[2]
    window = preprocess_window(static_window(frame), 224)
    assert window.shape == (3, 3, 224, 224) and window.dtype == np.float32
    assert all(np.array_equal(window[0], window[k]) for k in (1, 2))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.asarray(Image.fromarray(frame).resize((224, 224), Image.Resampling.BOX)) / 255.0 - mean) / std
    error = np.abs(window[0].transpose(1, 2, 0) - expected)
    # OpenCV's area resize and Pillow's box filter agree to 0.2 grey levels on average, 3 at the press's sharpest
    # edge (0.05 here); swapped channels would be 0.4 off on average
    assert error.mean() < 0.01 and np.percentile(error, 99.9) < 0.06, (error.mean(), np.percentile(error, 99.9))


def test_anytouch_embed_tells_a_real_press_from_the_real_background(published, tmp_path, capsys):
    torch.manual_seed(0)
    bundle = tmp_path / "bundle"
    save_encoder_bundle(bundle, AnyTouchEncoder.from_preset("anytouch-tiny"), trained_slots=(3, 9))
    embeddings = []
    for i, image in enumerate(published):
        path = tmp_path / f"frame{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert main(["embed", "--model", str(bundle), "--sensor", "gelsight_mini", "--device", "cpu", str(path)]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["source_sizes"] == [[OUT_H, OUT_W]] and result["slot"] == 3
        embeddings.append(result["embedding"])
    embeddings = np.array(embeddings)
    assert np.isfinite(embeddings).all() and embeddings.shape == (26, 32)
    between_backgrounds = np.linalg.norm(embeddings[1] - embeddings[0])
    press_to_background = np.linalg.norm(embeddings[2:] - embeddings[0], axis=1)
    assert between_backgrounds > 0  # the camera noise reached the encoder
    assert press_to_background.min() > 1.5 * between_backgrounds, (press_to_background.min(), between_backgrounds)


def test_each_press_lies_where_its_label_says_after_crop_and_resize(real, published):
    """Locate each press in (frame - background) after the backend: the disc of the label's radius that holds the
    most difference energy. The labels are hand-drawn circles and a press's shading is lopsided (its lit side is
    brighter), so single presses miss their label by up to about half a radius; a crop or resize error would move
    all of them (a one-sided crop by some 68 px, a mirror by 30) and change their size."""
    background = published[0].astype(np.float32)
    ys, xs = np.mgrid[0:OUT_H, 0:OUT_W]
    offsets, radii, sizes = [], [], []
    for image, (x, y), r in zip(published[2:], real.centres, real.radii, strict=True):
        ex, ey, er = label_in_output(x, y, r, real.shape)
        energy = cv2.GaussianBlur(((image.astype(np.float32) - background) ** 2).sum(2), (0, 0), 1.5)
        k = int(np.ceil(er))
        disc = (np.hypot(*np.mgrid[-k:k + 1, -k:k + 1]) <= er).astype(np.float32)
        score = cv2.filter2D(energy, -1, disc, borderType=cv2.BORDER_CONSTANT)
        fy, fx = np.unravel_index(int(score.argmax()), score.shape)
        offsets.append((fx - ex, fy - ey))
        radii.append(er)
        weight = np.sqrt(energy) * (np.hypot(xs - fx, ys - fy) < 3 * er)
        weight = np.clip(weight - np.median(weight[weight > 0]), 0, None)
        sizes.append(np.sqrt((weight * ((xs - fx) ** 2 + (ys - fy) ** 2)).sum() / weight.sum()) / er)
    offsets, radii = np.array(offsets), np.array(radii)
    distance = np.hypot(offsets[:, 0], offsets[:, 1])
    assert np.abs(offsets.mean(0)).max() < 3.0, offsets.mean(0)  # no shift of the frame
    assert np.median(distance) < 8.0 and (distance < 0.6 * radii).all(), distance.round(1)
    assert 0.85 < np.mean(sizes) < 1.3, np.mean(sizes)  # the response is the label's size: the scale is right
