"""Progress files and background jobs: real detached subprocesses running a small module that reports progress."""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

from salad_core import jobs
from salad_core.progress import PROGRESS_ENV, Progress, read_progress

COUNTER = """
    import sys, time
    from salad_core.progress import Progress
    n = int(sys.argv[1])
    with Progress(n, "counting") as progress:
        for i in range(n):
            time.sleep(0.03)
            progress.update(message=f"item {i}")
    print("counted", n)
    if "--note" in sys.argv:
        from salad_core.jobs import note_run
        note_run("train-counted")
    if "--fail" in sys.argv:
        print("RuntimeError: the counter was told to fail", file=sys.stderr)
        sys.exit(3)
"""


@pytest.fixture
def job_env(tmp_path, monkeypatch):
    """Jobs under tmp_path/data/jobs; the module `salad_counter` importable by the jobs."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "salad_counter.py").write_text(textwrap.dedent(COUNTER))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    monkeypatch.setenv("SALAD_DATA", str(tmp_path / "data"))
    return tmp_path


def wait_until_ended(job_id: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while (status := jobs.job_status(job_id))["state"] == "running":
        assert time.monotonic() < deadline, f"job {job_id} still running after {timeout_s} s"
        time.sleep(0.05)
    return status


# -- Progress ---------------------------------------------------------------------------------------------------


def test_progress_file_tracks_stages(tmp_path):
    path = tmp_path / "p" / "progress.json"
    with Progress(4, "text lane", file=path, min_interval_s=60) as progress:
        assert read_progress(path)["done"] == 0  # a stage start is always written
        progress.update(message="capitals")
        assert read_progress(path)["done"] == 0  # throttled: the next write waits for the interval
        progress.update(3)
        state = read_progress(path)  # the stage's end is always written
        assert state["done"] == 4 and state["fraction"] == 1.0 and state["eta_s"] == 0.0
        assert state["message"] == "capitals" and state["stage"] == "text lane" and not state["closed"]
        progress.set_stage("speech lane", 10)
        progress.update(5)
    state = read_progress(path)
    assert state["stage"] == "speech lane" and state["done"] == 5 and state["fraction"] == 0.5
    assert state["eta_s"] > 0 and state["closed"]
    assert set(state) >= {"stage", "done", "total", "fraction", "eta_s", "message", "updated_at"}


def test_progress_eta_extrapolates_the_stage_rate(tmp_path):
    path = tmp_path / "progress.json"
    progress = Progress(10, "scoring", file=path, min_interval_s=0)
    time.sleep(0.2)
    progress.update(2)
    state = read_progress(path)
    assert state["elapsed_s"] >= 0.2
    assert state["eta_s"] == pytest.approx(state["elapsed_s"] / 2 * 8)  # 8 left at the rate of the first 2
    progress.close()


def test_progress_records_an_error_and_unknown_totals(tmp_path):
    path = tmp_path / "progress.json"
    with pytest.raises(KeyError):
        with Progress(None, "reading", file=path) as progress:
            progress.update(7)
            raise KeyError("capitals")
    state = read_progress(path)
    assert state["fraction"] is None and state["eta_s"] is None and state["done"] == 7
    assert state["message"] == "KeyError: 'capitals'" and state["closed"]
    with pytest.raises(ValueError, match="total must be >= 0"):
        Progress(-1, "bad", file=path)


def test_progress_writes_the_env_file_only_when_set(tmp_path, monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    with Progress(2, "quiet") as progress:
        progress.update(2)
    assert progress.file is None
    monkeypatch.setenv(PROGRESS_ENV, str(tmp_path / "env.json"))
    with Progress(2, "loud") as progress:
        progress.update(2)
    assert read_progress(tmp_path / "env.json")["done"] == 2
    assert read_progress(tmp_path / "absent.json") is None


# -- Jobs -------------------------------------------------------------------------------------------------------


def test_a_job_runs_detached_and_reports_done(job_env):
    job_id = jobs.start_job(["8"], "count", module="salad_counter")
    folder = job_env / "data" / "jobs" / job_id
    meta = json.loads((folder / "job.json").read_text())
    assert meta["args"] == ["8"] and meta["name"] == "count" and meta["pid"] > 0
    assert os.getsid(meta["pid"]) == meta["pid"]  # its own session: survives the dashboard's process
    status = wait_until_ended(job_id)
    assert status["state"] == "done" and status["exit_code"] == 0 and status["error"] is None
    assert status["progress"]["done"] == 8 and status["progress"]["fraction"] == 1.0
    assert status["progress"]["stage"] == "counting" and status["progress"]["closed"]
    assert jobs.job_log(job_id, "stdout") == "counted 8"


def test_a_failing_job_reports_its_stderr(job_env):
    status = wait_until_ended(jobs.start_job(["2", "--fail"], "count", module="salad_counter"))
    assert status["state"] == "failed" and status["exit_code"] == 3
    assert "RuntimeError: the counter was told to fail" in status["error"]


def test_a_missing_module_fails_with_the_python_error(job_env):
    status = wait_until_ended(jobs.start_job([], "ghost", module="salad_no_such_module"))
    assert status["state"] == "failed" and "No module named salad_no_such_module" in status["error"]


def test_stop_job_ends_the_whole_process_group(job_env):
    job_id = jobs.start_job(["1000"], "long", module="salad_counter")
    deadline = time.monotonic() + 20
    while not (jobs.job_status(job_id)["progress"] or {}).get("done"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = jobs.stop_job(job_id, timeout_s=5)
    assert status["state"] == "stopped" and 0 < status["progress"]["done"] < 1000
    assert jobs.job_status(job_id)["state"] == "stopped"


def test_start_once_guards_against_a_second_start(job_env):
    first = jobs.start_once(["1"], "first-eval", module="salad_counter")
    assert jobs.start_once(["1"], "first-eval", module="salad_counter") == first
    assert wait_until_ended(first)["state"] == "done"
    assert jobs.start_once(["1"], "first-eval", module="salad_counter") == first  # once, ever
    again = jobs.start_once(["1"], "first-eval", again=True, module="salad_counter")
    assert again != first
    assert [s["job_id"] for s in jobs.list_jobs("first-eval")] == [again, first]
    wait_until_ended(again)


def test_bad_job_requests_raise_clear_errors(job_env):
    with pytest.raises(jobs.JobError, match="not usable as a folder name"):
        jobs.start_job(["eval"], "../escape")
    with pytest.raises(jobs.JobError, match="list of strings"):
        jobs.start_job(["eval", "--limit", 25], "eval")
    with pytest.raises(jobs.JobError, match="No job 'nope-1'.*list_jobs"):
        jobs.job_status("nope-1")
    with pytest.raises(jobs.JobError, match="No job"):
        jobs.stop_job("../../etc")
    assert jobs.list_jobs() == []


def test_a_jobs_command_notes_the_run_it_created(job_env, monkeypatch):
    job_id = jobs.start_job(["2", "--note"], "count", module="salad_counter")
    assert wait_until_ended(job_id)["run_id"] == "train-counted"
    plain = jobs.start_job(["2"], "count", module="salad_counter")
    assert wait_until_ended(plain)["run_id"] is None
    monkeypatch.delenv(jobs.JOB_ENV, raising=False)
    jobs.note_run("train-outside")  # outside a job: nothing to note, nothing written
