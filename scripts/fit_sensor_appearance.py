"""Fit a simulated sensor's optics and camera noise to real frames: how the numbers of the GelSight Mini model
(anytouch_policy/sim/sensor_models/gelsight_mini.yaml) were found. Deterministic (one thread, fixed start).

    .venv/bin/python scripts/fit_sensor_appearance.py [--model gelsight_mini] [--real gelsight_mini] [--leds 4]

Real frames: a ball-press calibration set (anytouch_policy/data/real_frames.py; taxim's GelSight Mini by default),
as `anytouch bench appearance` reads them. Three steps:
1. Press shading, linear least squares: every real press minus the background, within 2 contact radii, against the
   tilt of the gel's surface normal along x and y and the pressed depth, for a ball of the bench's radius pressed to
   the labelled contact (sim/press.py). Gives the colour of a unit tilt along x and y (2 x 3) and `press_tint`.
2. The rest image: the formula of sim/appearance.background (ambient tint, `--leds` LEDs with position, colour and
   reach, vignetting) written in torch and fitted with Adam to the real background (least squares over its pixels,
   160 x 120), together with `slope_gain` and the LEDs' directions so that the model's slope colours
   (slope_gain x sum over LEDs of direction x unit colour) match step 1's (weight LAMBDA), with a small penalty on
   slope_gain (GAIN_PENALTY) so that LEDs do not cancel each other's shading.
3. Noise: `camera.noise_sigma` = the real frames' temporal noise (the bench's estimate).
Prints the fitted fields as YAML (paste them over the model file's) and the residuals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from anytouch_policy.bench.appearance import BALL_MM, REAL_MM_PER_PX, real_noise  # noqa: E402
from anytouch_policy.data.real_frames import load_ball_presses  # noqa: E402
from anytouch_policy.hardware.cameras.gelsight_mini import crop_and_resize  # noqa: E402
from anytouch_policy.sim.appearance import LED_PEAK, background, led_directions  # noqa: E402
from anytouch_policy.sim.press import ball_indentation  # noqa: E402
from anytouch_policy.sim.sensor_model import Led, load_sensor_model  # noqa: E402

#: Weight of the slope-colour match against the rest image's mean squared error (a ball's rim tilts by ~0.3).
LAMBDA = 0.1
#: Weight of slope_gain^2: each LED adds slope_gain x its unit colour, so LEDs whose shading cancels would need a
#: large gain, and a unit's LED gain draw (variation.unit.led_gain) would then swing the shading by as much.
GAIN_PENALTY = 1e-4
FIT_SIZE = (160, 120)  # width, height of the rest-image fit (the formula is resolution-free)
STEPS = 4000
#: LEDs stay between MIN_OFFSET and MAX_OFFSET (fractions of width and height) from the frame's centre, on its rim or
#: beyond as in a real sensor (an LED at the centre would shade no slope in any direction).
MIN_OFFSET, MAX_OFFSET = 0.15, 1.5
#: Where the LEDs start, in the order they are used: directions from the centre (deg, y down), 0.7 out.
START_DEG = [-90.0, 0.0, 90.0, 180.0, -135.0, -45.0, 45.0, 135.0]


def press_shading(real, width: int, height: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Step 1: (colour per unit tilt along x, y: 2 x 3; press tint: 3; R^2 of the fit) from the real presses."""
    scale = width / real.shape[1]
    bg = crop_and_resize(real.background, 0.0, width, height).astype(np.float64)
    ys, xs = np.mgrid[0:height, 0:width]
    rows, targets = [], []
    for image, (cx, cy), r in zip(real.presses, real.centres * scale, real.radii * scale, strict=True):
        dent = ball_indentation(height, width, centre_xy=(cx, cy), contact_radius_px=r,
                                ball_radius_px=BALL_MM / REAL_MM_PER_PX * scale).astype(np.float64)
        gy, gx = np.gradient(dent)
        norm = np.sqrt(1.0 + gx * gx + gy * gy)
        near = np.hypot(xs - cx, ys - cy) < 2 * r
        rows.append(np.c_[(gx / norm)[near], (gy / norm)[near], (dent / dent.max())[near]])
        targets.append((crop_and_resize(image, 0.0, width, height) - bg)[near])
    x, y = np.concatenate(rows), np.concatenate(targets)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    r2 = 1.0 - float(((y - x @ coef) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
    return coef[:2], coef[2], r2


def fit_rest_image(real_bg: np.ndarray, slope_target: np.ndarray, leds: int) -> dict:
    """Step 2: ambient, LEDs, vignette and slope_gain (bounded through sigmoids to the model file's ranges)."""
    torch.manual_seed(0)
    h, w = real_bg.shape[:2]
    target = torch.tensor(real_bg, dtype=torch.float32)
    slope = torch.tensor(slope_target, dtype=torch.float32)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    diag = float(np.hypot(h, w))
    r2 = ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2

    def logit(v: torch.Tensor) -> torch.Tensor:
        return torch.log(v / (1 - v)).clone().requires_grad_()

    params = {
        "angle": torch.tensor(np.radians(START_DEG[:leds]), dtype=torch.float32, requires_grad=True),
        "offset": logit(torch.full((leds,), (0.7 - MIN_OFFSET) / (MAX_OFFSET - MIN_OFFSET))),
        "rgb": logit(torch.full((leds, 3), 30.0 / 255)),  # [0, 255]
        "reach": logit(torch.full((leds,), 0.1)),  # (0, 5]
        "ambient": logit(torch.full((3,), 80.0 / 255)),
        "vignette": logit(torch.tensor(0.3)),  # [0, 0.99]
        "log_slope_gain": torch.tensor(5.0, requires_grad=True),
    }

    def decode() -> dict[str, torch.Tensor]:
        s = {k: torch.sigmoid(v) for k, v in params.items() if k not in ("log_slope_gain", "angle")}
        offset = MIN_OFFSET + (MAX_OFFSET - MIN_OFFSET) * s["offset"]
        pos = 0.5 + offset[:, None] * torch.stack([torch.cos(params["angle"]), torch.sin(params["angle"])], 1)
        return {"pos": pos, "rgb": 255 * s["rgb"], "reach": 5 * s["reach"], "ambient": 255 * s["ambient"],
                "vignette": 0.99 * s["vignette"], "slope_gain": torch.exp(params["log_slope_gain"])}

    def render(q: dict[str, torch.Tensor]) -> torch.Tensor:
        image = q["ambient"].expand(h, w, 3)
        for k in range(leds):
            d = torch.hypot(xs - q["pos"][k, 0] * w, ys - q["pos"][k, 1] * h) / (q["reach"][k] * diag)
            image = image + q["rgb"][k] * LED_PEAK / (1 + d * d)[..., None]
        return image * (1 - q["vignette"] * r2 / 2)[..., None]

    def slope_colours(q: dict[str, torch.Tensor]) -> torch.Tensor:
        dirs = torch.stack([0.5 - q["pos"][:, 0], (0.5 - q["pos"][:, 1]) * h / w], 1)
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        return q["slope_gain"] * dirs.T @ (q["rgb"] / q["rgb"].norm(dim=1, keepdim=True))

    opt = torch.optim.Adam(params.values(), lr=0.03)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, STEPS)
    for _ in range(STEPS):
        q = decode()
        loss = (((render(q) - target) ** 2).mean() + LAMBDA * ((slope_colours(q) - slope) ** 2).mean()
                + GAIN_PENALTY * q["slope_gain"] ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        q = decode()
        return {k: v.numpy().astype(np.float64) for k, v in q.items()} | {
            "slope_colours": slope_colours(q).numpy(), "rest": render(q).numpy()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gelsight_mini", help="the model whose frame size is fitted")
    parser.add_argument("--real", default="gelsight_mini", help="taxim set name or dataPack.npz")
    parser.add_argument("--leds", type=int, default=4, choices=range(1, 9), help="LEDs to fit (1-8)")
    parser.add_argument("--preview", default=None, metavar="PNG", help="write the fitted rest image beside the real")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, real = load_sensor_model(args.model), load_ball_presses(args.real)
    fmt = model.format
    tilt_rgb, tint, r2 = press_shading(real, fmt.width, fmt.height)
    fit = fit_rest_image(crop_and_resize(real.background, 0.0, *FIT_SIZE).astype(np.float32), tilt_rgb, args.leds)
    scale = fmt.width / real.shape[1]
    published = [crop_and_resize(im, 0.0, fmt.width, fmt.height).astype(np.float32) for im in real.presses]
    real_bg = crop_and_resize(real.background, 0.0, fmt.width, fmt.height).astype(np.float32)
    noise = real_noise([im - real_bg for im in published], real.centres * scale, real.radii * scale)

    leds = [Led(x=round(float(x), 3), y=round(float(y), 3), rgb=tuple(round(float(c), 1) for c in rgb),
                reach=round(float(reach), 3)) for (x, y), rgb, reach in zip(fit["pos"], fit["rgb"], fit["reach"],
                                                                          strict=True)]
    optics = model.optics.model_copy(update={
        "ambient": tuple(round(float(c), 1) for c in fit["ambient"]), "leds": tuple(leds),
        "vignette": round(float(fit["vignette"]), 3), "slope_gain": round(float(fit["slope_gain"]), 1),
        "press_tint": tuple(round(float(c), 1) for c in tint)})
    rest = background(optics, fmt.height, fmt.width, (1.0,) * len(leds))
    dirs = led_directions(optics, fmt.height, fmt.width)
    hues = np.array([led.rgb for led in leds]) / np.linalg.norm([led.rgb for led in leds], axis=1, keepdims=True)
    gains = np.random.default_rng(0).uniform(*model.variation.unit.led_gain, (200, len(leds), 1))
    spread = np.std([optics.slope_gain * dirs.T @ (g * hues) for g in gains], axis=0)
    if args.preview:
        pair = np.hstack([np.clip(rest, 0, 255), real_bg]).astype(np.uint8)
        cv2.imwrite(args.preview, cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    def rounded(values: np.ndarray) -> list:
        return np.round(np.asarray(values, np.float64), 1).tolist()

    print(f"# press shading fit ({len(real.presses)} presses, ball {BALL_MM} mm): R^2 {r2:.3f}; colour per unit "
          f"tilt along x, y: real {rounded(tilt_rgb)}, model {rounded(fit['slope_colours'])}")
    print(f"# rest image: mean |sim - real| {np.abs(rest - real_bg).mean():.2f} grey levels; mean RGB sim "
          f"{rounded(rest.reshape(-1, 3).mean(0))}, real {rounded(real_bg.reshape(-1, 3).mean(0))}")
    print(f"# slope colours over 200 units' LED gains {model.variation.unit.led_gain}: std up to "
          f"{spread.max():.1f} grey levels per unit tilt (of up to {np.abs(tilt_rgb).max():.1f})")
    print("camera:")
    print(f"  noise_sigma: {noise:.2f}")
    print("optics:")
    print(f"  ambient: {list(optics.ambient)}")
    print("  leds:")
    for led in leds:
        print(f"    - {{x: {led.x}, y: {led.y}, rgb: {list(led.rgb)}, reach: {led.reach}}}")
    print(f"  vignette: {optics.vignette}")
    print(f"  slope_gain: {optics.slope_gain}")
    print(f"  press_tint: {list(optics.press_tint)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
