#!/usr/bin/env bash
# Install everything into .venv and build the HTML book (offline-ready) into _build/html.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/install.sh
python scripts/build_book.py
