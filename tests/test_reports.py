"""The result reports of benchmarks/ on a store the real commands made (tests/pipeline.py): they run, and print the
tables and figures the docs quote, computed from that store's runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_the_paired_evaluation_report_reads_both_runs_item_by_item(pipeline):
    from salad_core import compare

    a, b = (compare.final_eval_run(pipeline.store, run) for run in (pipeline.alpha1, pipeline.alpha0))
    out = report(pipeline, "paired_eval.py", "--a", a, "--b", b)
    speech_a, speech_b = (compare.eval_correctness(pipeline.store, run)["correct"] for run in (a, b))
    pooled = next(line for line in out.splitlines() if line.startswith("all tasks")).split()
    assert int(pooled[2]) == len(speech_a) == len(speech_b)  # the same items, every task of the nano world
    assert (float(pooled[3]), float(pooled[4])) == (round(speech_a.mean(), 3), round(speech_b.mean(), 3))
    assert float(pooled[5]) == pytest.approx(round((speech_a - speech_b.reindex(speech_a.index)).mean(), 3), abs=1e-9)
    assert "A's text forgetting (base_text - text), pooled" in out


def test_paired_differences_are_per_item_per_task_and_pooled(fixture_store):
    import pandas as pd

    from benchmarks.paired_eval import correctness, forgetting, paired_by_task
    from tests.conftest import fixture_run

    run = fixture_run(fixture_store)
    speech, base = correctness(fixture_store, run, "speech"), correctness(fixture_store, run, "base_text")
    assert len(speech) == 12 and speech.mean() == 4 / 12  # 2 of 6 right per task
    rows = paired_by_task(base, speech)
    assert rows["capitals"][:3] == (6, 5 / 6, 2 / 6) and rows["all tasks"][3].value == 0.5
    assert rows["all tasks"][3].ci_low <= 0.5 <= rows["all tasks"][3].ci_high
    assert forgetting(fixture_store, run).value == 0.0  # the fixture's adapted model reads text as the original does
    half = speech.iloc[:6]  # items of one run only: pooled over the items both runs scored
    assert paired_by_task(half, speech)["all tasks"][0] == 6
    with pytest.raises(ValueError, match="share no items"):
        paired_by_task(speech.iloc[:6], pd.Series(dtype=float, index=speech.index[6:]))


def test_paired_steps_bins_the_steps_both_runs_logged_and_tells_whether_their_batches_were_the_same():
    import pandas as pd

    from benchmarks.paired_steps import paired_steps, same_batches

    a = pd.DataFrame({"step": range(1, 7), "ctc": [6.0, 4.0, 3.0, 3.0, 2.0, 2.0], "speech_s": [10, 20, 30, 40, 50, 60]})
    b = pd.DataFrame({"step": range(2, 6), "ctc": [5.0, 5.0, 1.0, 1.0], "speech_s": [20, 30, 40, 50]})
    table = paired_steps(a, b, "ctc", bin_steps=3)  # steps 2-3 and 4-5: the ones both logged
    assert table[["first", "last"]].values.tolist() == [[2, 3], [4, 5]]
    assert table["a"].tolist() == [3.5, 2.5] and table["b"].tolist() == [5.0, 1.0]
    assert table["a_minus_b"].tolist() == [-1.5, 1.5]
    assert paired_steps(a, b, "ctc", bin_steps=3, until=3)["last"].tolist() == [3]
    assert same_batches(a, b) and not same_batches(a, b.assign(speech_s=b["speech_s"] + 1))
    with pytest.raises(ValueError, match="share no logged step"):
        paired_steps(a, b.assign(step=b["step"] + 100), "ctc", bin_steps=3)


def test_paired_steps_per_batch_sums_a_column_logged_per_text_position():
    import pandas as pd

    from benchmarks.paired_steps import per_batch

    steps = pd.DataFrame({"step": [1, 2], "ctc": [3.0, 12.0], "n_text_positions": [80, 20], "kl": [0.0, 1.0]})
    summed = per_batch(steps, "ctc")
    assert summed["ctc"].tolist() == [240.0, 240.0] and summed["kl"].tolist() == [0.0, 1.0]


def test_the_smol_report_names_an_evaluation_its_store_does_not_hold(tmp_path):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "smol_report.py"), "--db",
                           str(tmp_path / "empty.duckdb"), "--eval", "eval-nowhere"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "holds no final metrics of evaluation 'eval-nowhere'" in done.stderr
