"""anytouch embed --model models/anytouch-large --sensor gelsight_mini frame0.png frame1.png frame2.png

Embed one tactile image (a static clip: the image repeated 3 times) or a 3-frame window (oldest first) with an
encoder bundle and print JSON {"embedding": [...], "dim": D, "sensor": ..., "token_mode": ..., "frames": n, ...}.
Frames of any size are resized to the model input (no crop); --universal uses the universal sensor token.
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.model.runtime import Precision
from anytouch_policy.sensors import SensorType


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frames", nargs="+", metavar="FRAME", help="1 image (static) or 3 images (window), RGB files")
    parser.add_argument("--model", required=True, help="encoder bundle folder (config.json + model.safetensors)")
    parser.add_argument("--sensor", required=True, help=f"sensor name: {', '.join(s.label for s in SensorType)}")
    parser.add_argument("--universal", action="store_true", help="use the universal sensor token (slot 9)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--precision", default=Precision.FLOAT32.value, choices=[p.value for p in Precision],
                        help="compute dtype (float16 needs cuda)")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.model.runtime import embed_image_files

    result = embed_image_files(args.model, args.frames, sensor=args.sensor, universal=args.universal,
                               device=args.device, precision=args.precision)
    print(json.dumps(result))
    return 0
