"""Opening a page imports no torch and no transformers: the demo loads its models only when asked to answer, and
every other page reads results. All pages open, one after the other, in one fresh process on a store that fills
them (tests/dashboard_store.py); after each, the modules loaded so far are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from salad_core.paths import REPO_ROOT
from tests.dashboard_store import PAGES, build_full_store

SCRIPT = textwrap.dedent("""
    import json, sys
    from streamlit.testing.v1 import AppTest
    seen = {}
    for page in json.loads(sys.argv[1]):
        at = AppTest.from_file(sys.argv[2], default_timeout=120)
        at.run()
        at.switch_page(page).run()
        seen[page] = {"exception": [str(e.value)[:300] for e in at.exception],
                      "heavy": sorted(m for m in ("torch", "transformers") if m in sys.modules)}
    print(json.dumps(seen))
""")


def test_no_page_imports_torch_when_it_opens(tmp_path):
    store = build_full_store(tmp_path)
    env = {**os.environ, "SALAD_DATA": str(tmp_path / "data"), "SALAD_STORE": str(store.path),
           "SALAD_NO_AUTOSTART": "1"}
    pages = [page for page, _, _ in PAGES]
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(pages), str(REPO_ROOT / "dashboard" / "app.py")],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {page: result["heavy"] for page, result in seen.items()} == {page: [] for page in pages}
    assert all(not result["exception"] for result in seen.values()), seen
