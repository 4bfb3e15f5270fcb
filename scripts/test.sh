#!/usr/bin/env bash
# The README's test command: set everything up, then run every test (engine, plugins, bridge, example).
# One pytest worker per core (pytest-xdist), each file on one worker (its module fixtures built
# once); every test pins torch to one thread (conftest.py), so the workers fill the cores
# without oversubscribing them. Arguments are passed on (`-n 0`: one process).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m pytest -q -n auto --dist loadfile "$@"
