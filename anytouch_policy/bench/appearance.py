"""How close a simulated sensor looks to a real one: `anytouch bench appearance` (JSON on stdout).

    anytouch bench appearance --model gelsight_mini --real gelsight_mini
    anytouch bench appearance --model rig/my_mini.yaml --real path/to/dataPack.npz

Real frames: a calibration set of ball presses (anytouch_policy/data/real_frames.py; taxim's GelSight Mini set by
default), taken as published frames: they show the lit gel out to their edges, so they are already past the
capture's border crop and are only resized (area) to the model's frames and turned RGB. Sim frames: the model's
unit 0 with no per-episode nuisances, as the rig renders it by default.

- At rest (the sim with nothing grasped vs the real background): per-channel mean and std; the Bhattacharyya
  distance of per-channel 32-bin histograms (0 = the same colours, 1 = none in common; mean over R, G, B); the radial
  profile, mean RGB per ring of radius (r = 1 at the corners, 16 rings), and its L1 distance (grey levels, mean over
  rings and channels); the mean absolute pixel difference; the temporal noise (real: press minus background far from
  the contact; sim: two rest frames; std / sqrt(2), grey levels).
- Presses (each real press vs the sim's render of a ball, `ball_mm` in radius, pressed to the labelled contact
  circle; sim/press.py): energy of the difference image (mean squared RGB difference within 2 contact radii of the
  centre, grey levels^2) and the radius of the response (rms distance of the difference from the centre, in
  labelled contact radii); means over the presses and the sim/real energy ratio.
"""

from __future__ import annotations

import argparse
from typing import Any

import cv2
import numpy as np

from anytouch_policy.cli.args import POSITIVE
from anytouch_policy.errors import ConfigError

#: Radius of the calibration ball: taxim's calibration presses "a small sphere (~4mm)".
BALL_MM = 2.0
#: The real Mini frames' scale at 640 x 480: gsrobotics gives 0.0634 mm/pixel at 320 x 240.
REAL_MM_PER_PX = 0.0317
HIST_BINS = 32
RINGS = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="gelsight_mini", help="sensor model: shipped name or file (default "
                                                                 "%(default)s)")
    parser.add_argument("--real", default="gelsight_mini",
                        help="real frames: a taxim set (gelsight_mini, gelsight) or a dataPack.npz (default "
                             "%(default)s)")
    parser.add_argument("--ball-mm", type=POSITIVE, default=BALL_MM, help="ball radius, mm (default %(default)s)")
    parser.add_argument("--mm-per-px", type=POSITIVE, default=REAL_MM_PER_PX,
                        help="scale of the real frames, mm per pixel (default %(default)s)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from anytouch_policy.data.real_frames import load_ball_presses
    from anytouch_policy.sim.sensor_model import load_sensor_model

    return appearance_gap(load_sensor_model(args.model), load_ball_presses(args.real), ball_mm=args.ball_mm,
                          mm_per_px=args.mm_per_px)


def colour_stats(rgb: np.ndarray) -> dict[str, list[float]]:
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    return {"mean": _round(pixels.mean(0)), "std": _round(pixels.std(0))}


def histogram_distance(a: np.ndarray, b: np.ndarray, *, bins: int = HIST_BINS) -> float:
    """Bhattacharyya distance of per-channel histograms, mean over the channels."""
    def hist(image: np.ndarray, c: int) -> np.ndarray:
        return cv2.normalize(cv2.calcHist([image], [c], None, [bins], [0, 256]), None, norm_type=cv2.NORM_L1)

    return float(np.mean([cv2.compareHist(hist(a, c), hist(b, c), cv2.HISTCMP_BHATTACHARYYA) for c in range(3)]))


def radial_profile(rgb: np.ndarray, *, rings: int = RINGS) -> np.ndarray:
    """Mean RGB per ring of radius about the centre (r = 1 at the corners, as the models' vignette): rings x 3."""
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    r = np.hypot((xs + 0.5 - w / 2) / (w / 2), (ys + 0.5 - h / 2) / (h / 2)) / np.sqrt(2.0)
    ring = np.minimum((r * rings).astype(int), rings - 1).ravel()
    counts = np.bincount(ring, minlength=rings)
    return np.stack([np.bincount(ring, rgb[..., c].ravel().astype(np.float64), rings) / counts for c in range(3)], 1)


def press_response(difference: np.ndarray, centre: tuple[float, float], radius: float) -> tuple[float, float]:
    """(energy, response radius / `radius`) of a press's difference image (H x W x 3 float) about its centre."""
    h, w = difference.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    dist = np.hypot(xs - centre[0], ys - centre[1])
    squared = (difference.astype(np.float64) ** 2).sum(2)
    energy = float(squared[dist < 2 * radius].mean())
    weight = np.sqrt(squared) * (dist < 3 * radius)
    weight = np.clip(weight - np.median(weight[dist < 3 * radius]), 0.0, None)
    spread = float(np.sqrt((weight * dist**2).sum() / max(weight.sum(), 1e-9)))
    return energy, spread / radius


def appearance_gap(model, real, *, ball_mm: float = BALL_MM, mm_per_px: float = REAL_MM_PER_PX) -> dict[str, Any]:
    """Every figure of the module docstring for a SensorModel against BallPresses."""
    from anytouch_policy.hardware.cameras.gelsight_mini import crop_and_resize
    from anytouch_policy.sim.press import ball_indentation, render_indentation
    from anytouch_policy.sim.renderer import TactileRenderer
    from anytouch_policy.sim.sensor_params import SensorSpec, sample_sensor_params
    from anytouch_policy.sim.state import RigState

    fmt = model.format
    scale_x, scale_y = fmt.width / real.shape[1], fmt.height / real.shape[0]
    if abs(scale_x / scale_y - 1) > 0.02:
        raise ConfigError(f"model {model.name} publishes {fmt.width} x {fmt.height}, real frames are "
                          f"{real.shape[1]} x {real.shape[0]}: a different aspect, no comparison")
    scale = (scale_x + scale_y) / 2

    def published(bgr: np.ndarray) -> np.ndarray:
        return crop_and_resize(bgr, 0.0, fmt.width, fmt.height)

    params = sample_sensor_params(SensorSpec(model), episode_seed=0, index=0, randomize=False)
    renderer = TactileRenderer(params)
    rest_state = RigState.from_dict({name: 0.0 for name in RigState.field_names()})
    rest = [renderer.render(rest_state, k) for k in range(2)]
    real_bg = published(real.background)
    real_presses = [published(im).astype(np.float32) - real_bg.astype(np.float32) for im in real.presses]
    centres, radii = real.centres * scale, real.radii * scale

    sim_profile, real_profile = radial_profile(rest[0]), radial_profile(real_bg)
    at_rest = {
        "sim": colour_stats(rest[0]), "real": colour_stats(real_bg),
        "histogram_bhattacharyya": round(histogram_distance(rest[0], real_bg), 4),
        "radial_profile_l1": round(float(np.abs(sim_profile - real_profile).mean()), 2),
        "radial_profile_sim": [_round(p, 1) for p in sim_profile],
        "radial_profile_real": [_round(p, 1) for p in real_profile],
        "pixel_l1": round(float(np.abs(rest[0].astype(np.float32) - real_bg).mean()), 2),
        "noise_sim": round(float(np.std(rest[1].astype(np.float32) - rest[0]) / np.sqrt(2)), 3),
        "noise_real": round(real_noise(real_presses, centres, radii), 3),
    }

    ball_px = ball_mm / mm_per_px * scale
    sim_energy, sim_radius, real_energy, real_radius = [], [], [], []
    for diff, (cx, cy), r in zip(real_presses, centres, radii, strict=True):
        e, s = press_response(diff, (cx, cy), r)
        real_energy.append(e)
        real_radius.append(s)
        try:
            dent = ball_indentation(fmt.height, fmt.width, centre_xy=(cx, cy), contact_radius_px=r,
                                    ball_radius_px=ball_px)
        except ValueError as exc:
            raise ConfigError(f"{exc}: give a larger --ball-mm or --mm-per-px") from None
        # the same noise draw in both frames, so they differ by the press alone
        frames = [render_indentation(params, indent, rng=np.random.default_rng(0)).astype(np.float32)
                  for indent in (np.zeros_like(dent), dent)]
        e, s = press_response(frames[1] - frames[0], (cx, cy), r)
        sim_energy.append(e)
        sim_radius.append(s)
    presses = {
        "count": len(real_presses), "ball_radius_px": round(ball_px, 1),
        "contact_radius_px": [round(float(radii.min()), 1), round(float(radii.max()), 1)],
        "energy_sim": round(float(np.mean(sim_energy)), 1), "energy_real": round(float(np.mean(real_energy)), 1),
        "energy_ratio": round(float(np.mean(sim_energy) / np.mean(real_energy)), 3),
        "radius_sim": round(float(np.mean(sim_radius)), 3), "radius_real": round(float(np.mean(real_radius)), 3),
    }
    return {"model": model.name, "real": str(real.source), "frame": [fmt.height, fmt.width],
            "at_rest": at_rest, "presses": presses}


def real_noise(differences: list[np.ndarray], centres: np.ndarray, radii: np.ndarray) -> float:
    """Temporal noise of the real frames: std of press minus background over 4 contact radii from the contact."""
    values = []
    for diff, (cx, cy), r in zip(differences, centres, radii, strict=True):
        h, w = diff.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        values.append(float(diff[np.hypot(xs - cx, ys - cy) > 4 * r].std()) / np.sqrt(2))
    return float(np.median(values))


def _round(values: np.ndarray, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in values]
