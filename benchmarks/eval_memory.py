"""Peak memory and wall time of a `smol` evaluation, run as the CLI runs it.

    python benchmarks/eval_memory.py [--tasks capitals,arithmetic] [--limit 20] [--json]

Runs `salad eval --json` in a child process on a throw-away store and reports the child's peak resident memory
(ru_maxrss), wall time, items evaluated and items/s over all four lanes (TTS from the cache where present).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="capitals,arithmetic")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "salad_core.cli", "eval", "--json", "--tasks", args.tasks,
               "--limit", str(args.limit), "--db", str(Path(tmp) / "bench.duckdb")]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"salad eval failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    items = sum(t["n"] for t in result["tasks"].values())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    figures = {"tasks": args.tasks, "items": items, "wall_s": wall, "items_per_s": items / wall, "peak_rss_mb": peak_mb}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"smol eval: {items} items ({args.tasks}), all lanes + F/M probes: {wall:.1f} s wall, "
              f"{items / wall:.2f} items/s, peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
