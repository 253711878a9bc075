#!/usr/bin/env bash
# Install everything into .venv and build the HTML book (offline-ready) into _build/html.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/install.sh
python scripts/build_book.py
# JupyterLab renders a notebook's saved widgets as controls only if the notebook is trusted
# (signed with this user's key; the files do not change). A notebook regenerated later must be
# trusted again.
jupyter trust chapters/[0-9]*.ipynb > /dev/null \
  || echo "book.sh: could not trust the notebooks; run: jupyter trust chapters/*.ipynb" >&2
