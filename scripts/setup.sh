#!/usr/bin/env bash
# Create .venv at the repository root and install the pinned dependencies plus this package (editable).
# Re-running is quick: nothing is reinstalled unless requirements.txt or setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "setup: $PY not found. The ROS 2 Kilted wheels need CPython 3.11 (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

stamp=.venv/.anytouch-setup
want=$(cat requirements.txt setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
echo "setup: installing pinned dependencies into .venv (first run: a few minutes, about 6 GB with torch's CUDA runtime)"
"${pip[@]}" install -q -r requirements.txt
# digit-interface pulls GUI opencv-python beside the headless build: install it without its dependencies.
"${pip[@]}" install -q --no-deps digit-interface==0.2.1
"${pip[@]}" install -q --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "setup: .venv ready"
