"""Background jobs that the dashboard starts and watches: `python -m salad_core.cli <args>` in its own session.

Heavy work never runs inside a Streamlit script run. A job is a detached supervisor process
(`python -m salad_core.jobs <job folder>`) that runs the command, waits for it and records its exit code, so the
outcome survives the dashboard restarting. Each job owns `data/jobs/<job_id>/`:

    job.json       {"job_id", "name", "args", "module", "pid", "started_at"}   (pid: the supervisor, a session leader)
    stdout.log     the command's stdout (a `--json` command's one JSON object: `job_output`); stderr.log its stderr
    progress.json  written by `salad_core.progress.Progress` inside the command (`SALAD_PROGRESS_FILE` points here)
    exit.json      {"exit_code", "finished_at"}, written by the supervisor when the command ends
    stopped        present when `stop_job` ended the job

States: running, done (exit code 0), failed (non-zero exit, or the process vanished without an exit code),
stopped. POSIX only (sessions, process groups, flock).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from salad_core.errors import SaladError
from salad_core.paths import REPO_ROOT, data_dir
from salad_core.progress import PROGRESS_ENV, read_progress

DEFAULT_MODULE = "salad_core.cli"
JOB_ENV = "SALAD_JOB_FOLDER"  # set in a job's command: the folder where it notes the run it created
RUN_FILE = "run_id"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHILDREN: dict[str, subprocess.Popen] = {}  # supervisors this process started: polled so they never linger as zombies


class JobError(SaladError, RuntimeError):
    """A job could not be started, found or stopped; the message names the job and the fix."""


def cli_command(args: list[str], db: str | None = None) -> list[str]:
    """`salad <args> [--db DB]` as a child process runs it (this interpreter, the package's CLI module)."""
    return [sys.executable, "-m", DEFAULT_MODULE, *args] + (["--db", db] if db else [])


def cpu_ddp_command(args: list[str], processes: int) -> tuple[list[str], dict[str, str]]:
    """`salad <args>` on `processes` CPU processes, and the environment variables it needs: the plain command for one,
    else `accelerate launch` (DDP over gloo, one thread each; `accelerate launch --cpu` would start a single one)."""
    if processes == 1:
        return cli_command(args), {}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", DEFAULT_MODULE]
    return [*launch, *args], {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}


def jobs_dir() -> Path:
    path = data_dir() / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _now() -> str:
    """UTC, to the microsecond: jobs started within one second still sort in start order."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _folder(job_id: str) -> Path:
    folder = jobs_dir() / job_id
    if not _NAME.match(job_id) or not (folder / "job.json").is_file():
        raise JobError(f"No job {job_id!r} under {jobs_dir()}. Fix: pick an id from list_jobs().")
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Start


def start_job(args: list[str], name: str, *, module: str = DEFAULT_MODULE, env: dict[str, str] | None = None) -> str:
    """Start `python -m <module> *args` detached; returns the job id (`<name>-<UTC time>-<hex>`).

    `env` adds variables to the job's environment (it inherits this process's, e.g. SALAD_DATA and SALAD_STORE).
    """
    if not _NAME.match(name):
        raise JobError(f"Job name {name!r} is not usable as a folder name. Fix: use letters, digits, '-', '_' or '.'.")
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        raise JobError(f"Job args must be a list of strings, got {args!r}. Fix: e.g. ['eval', '--limit', '25'].")
    job_id = f"{name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    folder = jobs_dir() / job_id
    folder.mkdir()
    meta = {"job_id": job_id, "name": name, "args": list(args), "module": module, "env": env or {},
            "pid": None, "started_at": _now()}
    _write_json(folder / "job.json", meta)
    with open(folder / "supervisor.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "salad_core.jobs", str(folder)], cwd=REPO_ROOT,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    _CHILDREN[job_id] = proc
    _write_json(folder / "job.json", {**meta, "pid": proc.pid})
    return job_id


@contextmanager
def _name_lock(name: str):
    with open(jobs_dir() / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        yield


def start_once(args: list[str], name: str, *, again: bool = False, module: str = DEFAULT_MODULE,
               env: dict[str, str] | None = None) -> str:
    """Start a job named `name` unless one exists; returns the id of the job that now stands for it.

    With again=False any earlier job of that name counts (so a first-launch job starts once, ever); with again=True
    only a running one does (a manual restart after a failure). Safe against two sessions racing.
    """
    with _name_lock(name):
        earlier = list_jobs(name)
        if earlier and (earlier[0]["state"] == "running" or not again):
            return earlier[0]["job_id"]
        return start_job(args, name, module=module, env=env)


# ---------------------------------------------------------------------------------------------------------------
# Watch and stop


def _alive(job_id: str, pid: int | None) -> bool:
    if pid is None:  # between folder creation and Popen returning
        return True
    child = _CHILDREN.get(job_id)
    if child is not None:
        return child.poll() is None
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        return state not in ("Z", "X") and job_id.encode() in cmdline  # guards against a reused pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def note_run(run_id: str) -> None:
    """Inside a job's command: record the run it created (`job_status(...)["run_id"]`); nothing outside a job."""
    folder = os.environ.get(JOB_ENV)
    if folder and Path(folder).is_dir():
        (Path(folder) / RUN_FILE).write_text(run_id)


def job_log(job_id: str, stream: str = "stderr", lines: int = 30) -> str:
    """The last `lines` lines of a job's stdout or stderr log."""
    if stream not in ("stdout", "stderr"):
        raise JobError(f"Job log stream {stream!r} is unknown. Fix: use 'stdout' or 'stderr'.")
    return _tail(_folder(job_id) / f"{stream}.log", lines)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    rows = [r for r in re.split(r"[\r\n]+", text) if r.strip()]  # tqdm redraws with \r
    return "\n".join(rows[-lines:])


def job_output(job_id: str) -> object | None:
    """What a finished job printed with `--json`: its stdout, parsed (one JSON object, as `salad --json` prints);
    None while it runs, when it failed, or when its stdout is not JSON."""
    if job_status(job_id)["state"] != "done":
        return None
    try:
        return json.loads((_folder(job_id) / "stdout.log").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def job_status(job_id: str) -> dict:
    """{job_id, name, args, pid, started_at, state, exit_code, finished_at, progress, error, run_id} (run_id: the run
    the job's command created, once it has noted it)."""
    folder = _folder(job_id)
    meta = _read_json(folder / "job.json") or {}
    ended = _read_json(folder / "exit.json")
    stopped = (folder / "stopped").exists()
    status = {**{k: meta.get(k) for k in ("job_id", "name", "args", "pid", "started_at")},
              "exit_code": ended and ended["exit_code"], "finished_at": ended and ended["finished_at"],
              "progress": read_progress(folder / "progress.json"), "error": None,
              "run_id": (folder / RUN_FILE).read_text().strip() if (folder / RUN_FILE).is_file() else None}
    if ended is None and _alive(job_id, meta.get("pid")):
        status["state"] = "running"
    elif stopped:
        status["state"] = "stopped"
    elif ended is not None and ended["exit_code"] == 0:
        status["state"] = "done"
    else:
        status["state"] = "failed"
        why = _tail(folder / "stderr.log") or _tail(folder / "supervisor.log")
        status["error"] = why or "the job ended without an exit code or any error output (killed?)"
    return status


def list_jobs(name: str | None = None) -> list[dict]:
    """Status of every job (or every job of one name), newest first."""
    found = []
    for folder in jobs_dir().iterdir():
        meta = _read_json(folder / "job.json") if folder.is_dir() else None
        if meta and (name is None or meta.get("name") == name):
            found.append(job_status(folder.name))
    return sorted(found, key=lambda s: (s["started_at"] or "", s["job_id"]), reverse=True)


def stop_job(job_id: str, timeout_s: float = 5.0) -> dict:
    """SIGTERM the job's process group, SIGKILL it after `timeout_s`; returns the final status."""
    folder = _folder(job_id)
    meta = _read_json(folder / "job.json") or {}
    pid = meta.get("pid")
    if pid is None or not _alive(job_id, pid):
        return job_status(job_id)
    (folder / "stopped").write_text(_now())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)  # the supervisor leads its own session, so its group is the whole job
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(job_id, pid):
            time.sleep(0.05)
        if not _alive(job_id, pid):
            break
    return job_status(job_id)


# ---------------------------------------------------------------------------------------------------------------
# The supervisor (runs detached, in the job's own session)


def _supervise(folder: Path) -> int:
    meta = _read_json(folder / "job.json")
    if meta is None:
        print(f"job.json missing or unreadable in {folder}", file=sys.stderr)
        return 2
    env = {**os.environ, **meta.get("env", {}), PROGRESS_ENV: str(folder / "progress.json"), JOB_ENV: str(folder)}
    # stop_job signals the whole group, so the command gets SIGTERM too; stay alive to record how it ended.
    # (A Python-level handler is not inherited across exec: the command keeps the default action.)
    signal.signal(signal.SIGTERM, lambda *_: None)
    with open(folder / "stdout.log", "wb") as out, open(folder / "stderr.log", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", meta["module"], *meta["args"]], cwd=REPO_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        code = proc.wait()
    _write_json(folder / "exit.json", {"exit_code": code, "finished_at": _now()})
    return 0


if __name__ == "__main__":
    sys.exit(_supervise(Path(sys.argv[1])))
