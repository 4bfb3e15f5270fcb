#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with torch, the engine, its plugins, the
# downstream bridge and (unless --no-openmmlab) the OpenMMLab stack. Safe to re-run: every step
# is idempotent and pip reuses its wheel cache.
#
#   bash scripts/setup.sh                 # everything
#   bash scripts/setup.sh --no-openmmlab  # skip mmengine/mmcv/mmdet/mmseg (no C++ build)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NAS_VENV:-$repo/.venv}"
with_openmmlab=1
for arg in "$@"; do
  case "$arg" in
    --no-openmmlab) with_openmmlab=0 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --no-openmmlab)" >&2; exit 2 ;;
  esac
done

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || { echo "setup.sh: $python not found (Python 3.11 is required)" >&2; exit 2; }

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)

# setuptools < 81 still ships pkg_resources, which mmcv's setup.py and mmengine import.
"${pip[@]}" "setuptools==80.9.0" wheel
# torch + torchvision: a matching pair that imports together (see README, "Installation").
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1"

if [ "$with_openmmlab" = 1 ]; then
  bash "$repo/scripts/install_openmmlab.sh" "$venv"
fi

echo "[setup] installing the engine, plugins and bridge (editable)"
editables=(-e "$repo[test]")
for plugin in "$repo"/plugins/*/ "$repo"/examples/*/; do
  [ -f "$plugin/pyproject.toml" ] && editables+=(-e "$plugin")
done
if [ "$with_openmmlab" = 1 ] && [ -f "$repo/downstream/pyproject.toml" ]; then
  editables+=(-e "$repo/downstream")
fi
"${pip[@]}" "${editables[@]}"
echo "[setup] done: $venv"
