#!/usr/bin/env bash
# Install everything salad needs into ./.venv (Debian, Python 3.11, root, package registries only).
# Safe to rerun: each step is skipped when what it installs is already there and unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEBIAN_PACKAGES="flite espeak-ng bsdgames wordnet-base chromium"

missing=""
for pkg in $DEBIAN_PACKAGES; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
if [ -n "$missing" ]; then
  echo "[setup] apt-get install$missing" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.salad-installed
want=$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] pip install (first time: several minutes, torch is large)" >&2
  # --no-cache-dir: a cached copy of every wheel would double the disk this needs.
  PIP=(.venv/bin/pip install -q --disable-pip-version-check --no-cache-dir)
  "${PIP[@]}" -r requirements.txt
  "${PIP[@]}" --no-deps -r requirements-nodeps.txt
  "${PIP[@]}" --no-deps -e .
  # salad no longer uses torchaudio; a venv made before may hold one built for an older torch.
  .venv/bin/pip uninstall -y -q torchaudio 2>/dev/null || true
  echo "$want" > "$stamp"
fi
