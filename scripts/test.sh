#!/usr/bin/env bash
# The README's test command: set everything up, then run every test (engine, plugins, bridge, example).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m pytest -q "$@"
