# Sourced by book.sh and test.sh: create .venv (if missing) and install the pinned requirements
# and gptlib into it. Set INSIDE_GPT_VENV to use another virtual environment folder.
set -euo pipefail
VENV="${INSIDE_GPT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements.txt
python -m pip install --quiet --no-deps -e .
