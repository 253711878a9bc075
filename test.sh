#!/usr/bin/env bash
# Install everything into .venv, build the book with warnings as errors, then run every test:
# gptlib's unit/property/equivalence tests, strict nbval over every chapter, and the browser
# check of every built page (it needs Debian's `chromium`; outside CI it skips without one).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/install.sh
python scripts/build_book.py --clean
python -m pytest tests/ --nbval chapters/ "$@"
