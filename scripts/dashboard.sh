#!/usr/bin/env bash
# Set up (if needed) and start the dashboard on http://localhost:8501 (localhost only unless SALAD_ADDRESS is set).
# On a fresh store the app starts the default evaluation in the background and shows its progress.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamlit run dashboard/app.py --server.address "${SALAD_ADDRESS:-localhost}" \
  --server.port "${SALAD_PORT:-8501}" --server.headless true --browser.gatherUsageStats false "$@"
