# Shared by scripts/run and scripts/test: create or refresh .venv from pyproject.toml.
# Usage: source scripts/lib.sh; ensure_venv [extra ...]

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KAFKA_DOJO_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

ensure_venv() {
  local extras="$*"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV with $($PYTHON_BIN --version)"
    "$PYTHON_BIN" -m venv "$VENV"
  fi
  local wanted
  wanted="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16) ${extras:-base}"
  local stamp="$VENV/.kafka-dojo-deps"
  if [ -f "$stamp" ] && grep -qxF "$wanted" "$stamp"; then
    return 0
  fi
  echo "==> installing dependencies from pyproject.toml (${extras:-base})"
  local reqs
  reqs="$(mktemp)"
  # shellcheck disable=SC2086
  "$VENV/bin/python" "$ROOT/scripts/requirements.py" $extras >"$reqs"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  rm -f "$reqs"
  echo "$wanted" >>"$stamp"
}
