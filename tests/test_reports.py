"""The result reports of benchmarks/ on a store the real commands made (tests/pipeline.py): they run, and print the
tables and figures the docs quote, computed from that store's runs."""

from __future__ import annotations

import subprocess
import sys

from salad_core.paths import REPO_ROOT


def report(pipeline, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / script), "--db", str(pipeline.store.path),
                           *args], env=pipeline.env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_stage1_report_compares_the_arms_per_domain(pipeline):
    out = report(pipeline, "stage1_report.py", "--arms", "0,1")
    assert f"α = 0: {pipeline.alpha0}; α = 1: {pipeline.alpha1}" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| domain | in speech | speech α=0 | speech α=1 |")
    assert {line.split(" | ")[0][2:] for line in table[1:]} >= {"capitals", "arithmetic", "all"}
    assert "Speech accuracy, α = 1 minus α = 0" in out and "speech_acc ~ ln M  corpus" in out


def test_the_stage2_report_shows_the_round_and_its_arm(pipeline):
    out = report(pipeline, "stage2_report.py", "--from", pipeline.alpha1)
    assert f"| {pipeline.round_id} | {pipeline.alpha1} |" in out
    assert "## Speech accuracy per arm" in out and "| Stage I | 1 |" in out
