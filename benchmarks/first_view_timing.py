"""The dashboard's first evaluation, timed side by side: the `smol` preset with its shipped adapter, then with an
untrained one (`--adapter none`, what a fresh clone evaluated before the adapter shipped). Each is the exact command
the first launch runs (dashboard/first_launch.py), in a child process, into its own temporary store.

    python benchmarks/first_view_timing.py            # about ten minutes on 2 cores
    python benchmarks/first_view_timing.py --limit 5  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboard.first_launch import DEFAULT_LIMIT, PROBE_LIMIT  # noqa: E402
from salad_core.eval.config import EvalConfig  # noqa: E402
from salad_core.jobs import cli_command  # noqa: E402

LANES = ("text_acc_base", "speech_acc", "noaudio_acc", "cascade_acc")


def timed_eval(adapter: str, limit: int, folder: Path) -> tuple[float, dict]:
    args = ["eval", *EvalConfig(limit=limit, probe_limit=PROBE_LIMIT, adapter=adapter).to_argv(), "--json"]
    started = time.perf_counter()
    done = subprocess.run(cli_command(args, str(folder / f"{adapter}.duckdb")), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"salad {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="items per task (the first launch's: 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {adapter: timed_eval(adapter, args.limit, Path(tmp)) for adapter in ("shipped", "none")}
    for adapter, (seconds, summary) in results.items():
        means = {k: statistics.mean(t[k] for t in summary["tasks"].values()) for k in LANES}
        print(f"--adapter {adapter:<8} {seconds:6.0f} s   " + "  ".join(f"{k} {v:.3f}" for k, v in means.items())
              + "   (mean over tasks)")
    print(f"shipped / untrained time: {results['shipped'][0] / results['none'][0]:.2f}")


if __name__ == "__main__":
    main()
