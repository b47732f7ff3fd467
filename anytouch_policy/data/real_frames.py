"""Real visuo-tactile frames: the ball-press calibration sets that the `taxim` package ships (MIT, PyPI, a test
dependency), so that images of a real GelSight Mini pass through our camera backend, preprocessing and encoder, and
the simulated Mini can be measured against them (`anytouch bench appearance`).

    presses = load_ball_presses()                         # taxim/calib/gelsight_mini/dataPack.npz
    presses = load_ball_presses("gelsight")               # the GelSight (2017) set
    presses = load_ball_presses("path/to/dataPack.npz")   # any file of the same layout

A data pack is read with `np.load(..., allow_pickle=False)`: plain arrays only; taxim's `shadowTable.npz` (pickled
objects) is never opened. Keys of the GelSight Mini pack, as shipped in taxim 1.4.1:

| key | shape, dtype | meaning |
|---|---|---|
| `f0` | (480, 640, 3) uint8 | the gel at rest, BGR (as OpenCV captures) |
| `imgs` | (24, 480, 640, 3) uint8 | 24 presses of a ball (about 4 mm across) at different places, BGR |
| `touch_center` | (24, 2) uint16 | hand-labelled centre of each contact, (x, y) pixels |
| `touch_radius` | (24,) uint16 | hand-labelled contact radius, pixels (34-57) |
| `img_size` | (3,) int32 | [480, 640, 3] |

The GelSight pack has 48 presses, float64 centres, int64 radii and `names` (frame file names). The Mini's frames show
the lit gel out to their edges, with no unlit rim and no markers: they are frames after the capture's border crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anytouch_policy.errors import ConfigError

#: Calibration sets shipped by taxim, by sensor model name.
TAXIM_SETS = ("gelsight_mini", "gelsight")
_KEYS = ("f0", "imgs", "touch_center", "touch_radius")


@dataclass(frozen=True)
class BallPresses:
    """A background frame and N ball presses of one sensor, with the labelled contact of each press."""

    background: np.ndarray  # H x W x 3 uint8, BGR
    presses: np.ndarray  # N x H x W x 3 uint8, BGR
    centres: np.ndarray  # N x 2 float64, (x, y) pixels
    radii: np.ndarray  # N float64, pixels
    source: Path

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return self.background.shape[0], self.background.shape[1]


def taxim_data_pack(sensor: str = "gelsight_mini") -> Path:
    """Path of the calibration data pack taxim ships for `sensor` (gelsight_mini or gelsight)."""
    if sensor not in TAXIM_SETS:
        raise ConfigError(f"taxim ships calibration frames of {', '.join(TAXIM_SETS)}, not {sensor!r}")
    try:
        from taxim.calibration import CALIB_ROOT
    except ImportError:
        raise ConfigError("real calibration frames need the taxim package (a test dependency: pip install "
                          "taxim==1.4.1, see requirements.txt), or give the path of a dataPack.npz") from None
    return Path(CALIB_ROOT) / sensor / "dataPack.npz"


def load_ball_presses(ref: str | Path = "gelsight_mini") -> BallPresses:
    """A taxim calibration set by sensor name, or a dataPack.npz by path; every array checked against the others."""
    path = Path(ref) if isinstance(ref, Path) or str(ref).endswith(".npz") else taxim_data_pack(str(ref))
    try:
        with np.load(path, allow_pickle=False) as pack:
            files = list(pack.files)
            arrays = {k: pack[k] for k in _KEYS if k in files}
    except FileNotFoundError:
        raise ConfigError(f"data pack {path} not found") from None
    except (OSError, ValueError) as exc:  # not an npz, or an object array that would need unpickling
        raise ConfigError(f"{path}: not a plain-array data pack ({exc})") from None
    missing = [k for k in _KEYS if k not in arrays]
    if missing:
        raise ConfigError(f"{path}: no {', '.join(missing)} in the data pack (keys: {', '.join(files)})")
    background, presses = arrays["f0"], arrays["imgs"]
    centres = arrays["touch_center"].astype(np.float64)
    radii = arrays["touch_radius"].astype(np.float64)
    if background.dtype != np.uint8 or background.ndim != 3 or background.shape[2] != 3:
        raise ConfigError(f"{path}: f0 must be H x W x 3 uint8, got {background.shape} {background.dtype}")
    if presses.dtype != np.uint8 or presses.shape[1:] != background.shape:
        raise ConfigError(f"{path}: imgs must be N x {' x '.join(map(str, background.shape))} uint8, got "
                          f"{presses.shape} {presses.dtype}")
    n = len(presses)
    if centres.shape != (n, 2) or radii.shape != (n,):
        raise ConfigError(f"{path}: {n} presses but touch_center {centres.shape} and touch_radius {radii.shape}")
    return BallPresses(background=background, presses=presses, centres=centres, radii=radii, source=path)
