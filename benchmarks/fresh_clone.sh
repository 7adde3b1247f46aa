#!/usr/bin/env bash
# Minutes from a fresh clone to the first dashboard view with real results.
#   bash benchmarks/fresh_clone.sh [workdir]
# Clones this repository into an empty folder, runs the README's dashboard command there with a fresh data folder,
# and polls the store until the first evaluation run is done (the app starts it on first launch). Prints the time
# of each phase. Package downloads come from pip's cache where it has them, as they would on a user's second try.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
port=${SALAD_PORT:-8599}
git clone -q "$src" "$work/salad"
cd "$work/salad"
start=$(date +%s)
SALAD_PORT=$port bash scripts/dashboard.sh >"$work/dashboard.log" 2>&1 &
app=$!
trap 'kill $app 2>/dev/null; pkill -f "streamlit run dashboard/app.py --server.address localhost --server.port $port" || true' EXIT
until curl -sf "http://localhost:$port/_stcore/health" >/dev/null 2>&1; do sleep 2; done
served=$(date +%s)
echo "set-up + dashboard serving: $(( (served - start) / 60 )) min $(( (served - start) % 60 )) s"
# A browser visit runs the app script, which starts the first evaluation job.
.venv/bin/python - <<PY
from streamlit.testing.v1 import AppTest
AppTest.from_file("dashboard/app.py", default_timeout=60).run()
PY
until .venv/bin/python -c "
import sys
from salad_core.store import Store
sys.exit(0 if Store().latest_run('eval') else 1)" 2>/dev/null; do sleep 5; done
ready=$(date +%s)
echo "first results in the store: $(( (ready - start) / 60 )) min $(( (ready - start) % 60 )) s after the clone"
