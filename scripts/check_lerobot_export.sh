#!/usr/bin/env bash
# Load an `anytouch export lerobot` dataset with the real `lerobot` package (docs/export.md, "Checking with LeRobot").
#
#   scripts/check_lerobot_export.sh [DATASET_DIR]
#
# lerobot needs Python >= 3.12 and pins its own torch, so it gets a virtual environment of its own OUTSIDE this
# repository (first run: downloads lerobot and a CUDA torch, several GB). Without DATASET_DIR, three short expert
# episodes are recorded in the simulator with the project's .venv and exported to a temporary folder first.
# Nothing touches the Hugging Face Hub: HF_HUB_OFFLINE=1.
#
# Environment: LEROBOT_VENV (default ~/.cache/anytouch/lerobot-0.6.1), PYTHON312 (default python3.12).
set -euo pipefail
cd "$(dirname "$0")/.."

LEROBOT_VERSION=0.6.1
VENV=${LEROBOT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/anytouch/lerobot-$LEROBOT_VERSION}
PY=${PYTHON312:-python3.12}

case "$(realpath -m "$VENV")/" in
  "$(pwd)"/*) echo "check: LEROBOT_VENV must be outside the repository, got $VENV" >&2; exit 1 ;;
esac

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import lerobot" 2>/dev/null; then
  command -v "$PY" >/dev/null 2>&1 || { echo "check: $PY not found (lerobot needs Python >= 3.12; set PYTHON312)" >&2; exit 1; }
  echo "check: creating $VENV with lerobot[dataset]==$LEROBOT_VERSION (downloads torch; several GB)"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "lerobot[dataset]==$LEROBOT_VERSION"
fi
"$VENV/bin/python" -c "import lerobot, sys; print(f'check: lerobot {lerobot.__version__} on Python {sys.version.split()[0]}')"

work=$(mktemp -d)  # the sim bags and dataset when none is given, and datasets' arrow copy of the parquet files
trap 'rm -rf "$work"' EXIT
DATASET=${1:-}
if [ -z "$DATASET" ]; then
  echo "check: recording 3 short sim episodes and exporting them to $work/dataset"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, not an installed copy
  .venv/bin/python - "$work/bags" <<'EOF'
import sys
from anytouch_policy.demo.record import record_expert_episodes
from anytouch_policy.sim.params import RigConfig
from anytouch_policy.sim.sensor_params import SensorSpec
record_expert_episodes(sys.argv[1], episodes=3, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                       config=RigConfig(max_ticks=25), seed=0)
EOF
  .venv/bin/python -m anytouch_policy.cli.main export lerobot --bags "$work/bags" --out "$work/dataset" --no-progress
  DATASET=$work/dataset
fi

HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_DATASETS_CACHE="$work/hf-cache" "$VENV/bin/python" scripts/lerobot_load_check.py "$DATASET"
