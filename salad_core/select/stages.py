"""The finished stages of a selection round, on disk: each stage writes its output under `stages/<name>/` and then,
last, `stages/<name>.json` with what it found. A round run again (interrupted, or rerun with the same id) skips
every stage that has its record and redoes the first that has none from an empty folder, so a half-written output
is never read. Each record holds the stage's `seconds`.

Stages hand each other parquet shards of at most SHARD_ROWS rows, read one task per file (`read_shards`), so that
no task's memory grows with the pool."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

SHARD_ROWS = 50_000  # rows per parquet file that a stage writes for the next


class Stages:
    def __init__(self, root: Path):
        self.root = Path(root) / "stages"
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, name: str) -> Path:
        return self.root / name

    def record(self, name: str) -> dict | None:
        """What the stage found, if it finished."""
        path = self.root / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def run(self, name: str, stage: Callable[[Path], dict]) -> dict:
        """The stage's record: read back if it finished before, else `stage(folder)` run now into an empty folder."""
        done = self.record(name)
        if done is not None:
            return done
        folder = self.folder(name)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.monotonic()
        found = {**stage(folder), "seconds": round(time.monotonic() - started, 2)}
        tmp = self.root / f"{name}.json.tmp"
        tmp.write_text(json.dumps(found, indent=1))
        tmp.replace(self.root / f"{name}.json")
        return found

    def finished(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json"))


def read_shards(folder: Path, columns: list[str] | None = None):
    """A stage's parquet output as a Ray dataset, one read task per file."""
    import ray.data

    files = len(list(Path(folder).rglob("*.parquet")))
    return ray.data.read_parquet(str(folder), columns=columns, override_num_blocks=max(1, files))
