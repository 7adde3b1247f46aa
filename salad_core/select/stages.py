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

import pyarrow as pa
import pyarrow.parquet as pq

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


def shard_rows(folder: Path) -> int:
    """Rows in a stage's parquet output, from the files' footers."""
    return sum(pq.read_metadata(p).num_rows for p in Path(folder).rglob("*.parquet"))


def shard_files(folder: Path) -> list[str]:
    """A stage's parquet files, in a fixed order."""
    files = sorted(str(p) for p in Path(folder).rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no parquet files under {folder}")
    return files


def read_shard(batch: pa.Table, columns: list[str] | None, schema: pa.Schema) -> pa.Table:
    """Ray map_batches function: the parquet file named in the batch's one row, as one block."""
    (path,) = batch["file"].to_pylist()
    return pq.read_table(path, columns=columns).cast(schema)


def read_shards(folder: Path, columns: list[str] | None = None):
    """A stage's parquet output as a Ray dataset: one task per file, each file one block (at most SHARD_ROWS rows),
    so that no task's memory depends on the size of the pool. (Ray's own parquet reader groups files into tasks by
    their size, and over a 2-million-document pool its workers kept more memory the more files they had read.)"""
    import ray.data

    files = shard_files(folder)
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    return ray.data.from_items([{"file": f} for f in files], override_num_blocks=len(files)).map_batches(
        read_shard, batch_size=1, batch_format="pyarrow", fn_kwargs={"columns": columns, "schema": schema})
