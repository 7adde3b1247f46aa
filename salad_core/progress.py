"""Progress reporting for long jobs: a tqdm bar on stderr plus, for the dashboard, a small JSON file.

When `SALAD_PROGRESS_FILE` is set (jobs.start_job sets it), `Progress` rewrites that file atomically (write a
temporary file, then rename) at most ~2 times a second, so a reader never sees half a file:

    {"stage": "speech lane", "done": 40, "total": 100, "fraction": 0.4, "eta_s": 61.2, "elapsed_s": 40.8,
     "message": "capitals", "updated_at": "2026-11-25T22:30:15Z", "closed": false}

`eta_s` extrapolates the current stage's rate; it is null until one unit is done or when the total is unknown.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

PROGRESS_ENV = "SALAD_PROGRESS_FILE"


def read_progress(path: str | Path) -> dict | None:
    """The last state written to a progress file, or None when there is none yet."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_atomic(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


class Progress:
    """`with Progress(total, "scoring") as p: ... p.update()`; `set_stage` starts a new stage with its own total."""

    def __init__(self, total: int | None, desc: str = "", *, min_interval_s: float = 0.5,
                 file: str | Path | None = None):
        target = file if file is not None else os.environ.get(PROGRESS_ENV)
        self.file = Path(target) if target else None
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
        self.min_interval_s = min_interval_s
        self._bar: tqdm | None = None
        self._last_write = 0.0
        self.closed = False
        self.set_stage(desc, total)

    def set_stage(self, desc: str, total: int | None) -> None:
        """Begin a new stage: the count restarts at 0 and the ETA at unknown."""
        if total is not None and total < 0:
            raise ValueError(f"Progress total must be >= 0 or None, got {total} for stage {desc!r}.")
        if self._bar is not None:
            self._bar.close()
        self.stage, self.total, self.done, self.message = desc, total, 0, None
        self._started = time.monotonic()
        # A bar redrawn many times a second into a log file (jobs send stderr to one) buries real errors.
        interval = 0.1 if sys.stderr.isatty() else 10.0
        self._bar = tqdm(total=total, desc=desc, file=sys.stderr, mininterval=interval, dynamic_ncols=True)
        self._write(force=True)

    def update(self, n: int = 1, message: str | None = None) -> None:
        self.done += n
        if message is not None:
            self.message = message
            self._bar.set_postfix_str(message, refresh=False)
        self._bar.update(n)
        self._write(force=self.total is not None and self.done >= self.total)

    def follow(self, state: dict) -> None:
        """Show another process's progress (its `read_progress` state): its stage, count and message."""
        if state.get("stage") != self.stage or state.get("total") != self.total:
            self.set_stage(state.get("stage") or self.stage, state.get("total"))
        self.update(max(0, int(state.get("done") or 0) - self.done), state.get("message"))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bar.close()
        self._write(force=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.message = f"{exc_type.__name__}: {exc}"
        self.close()

    def state(self) -> dict:
        elapsed = time.monotonic() - self._started
        fraction = min(self.done / self.total, 1.0) if self.total else None
        eta = elapsed / self.done * (self.total - self.done) if self.total and self.done else None
        return {"stage": self.stage, "done": self.done, "total": self.total, "fraction": fraction,
                "eta_s": None if eta is None else max(eta, 0.0), "elapsed_s": elapsed, "message": self.message,
                "updated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "closed": self.closed}

    def _write(self, force: bool = False) -> None:
        if self.file is None:
            return
        now = time.monotonic()
        if force or now - self._last_write >= self.min_interval_s:
            self._last_write = now
            _write_atomic(self.file, self.state())


class NoProgress:
    """Stands in for `Progress` where progress is not shown: the same calls, doing nothing."""

    def update(self, n: int = 1, message: str | None = None) -> None:
        pass

    def set_stage(self, desc: str, total: int | None) -> None:
        pass

    def follow(self, state: dict) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc) -> None:
        pass
