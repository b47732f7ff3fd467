"""python bench/encoder.py --presets anytouch-small --threads 2

Thin wrapper of `anytouch bench encoder` (same arguments, same JSON) for people who look in bench/ first.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anytouch_policy.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "encoder", *sys.argv[1:]]))
