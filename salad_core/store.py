"""The DuckDB results store: runs, models, tasks, items and their audio, option scores, lane outputs, metrics.

Everything the dashboard shows is a projection of the *paired item*: one question with its text, its audio and the
outputs of every lane on it (the lanes: salad_core/eval/vocabulary.py). Full schema and conventions: docs/store.md.

Tables (one `TableSpec` each in `TABLES`, the single source of the DDL):
    runs        one row per eval/train/select run: config as given, plan, prompt template, code version, package
                versions, seed, status, lineage (parent_run, final_eval), notes on what it left out
    models      the model a run used: LLM, encoder, adapter settings, checkpoint path
    tasks       task suites by (task, version)
    items       text-side facts of a question, keyed by item_id (unique across tasks and versions)
    item_audio  one spoken rendering of an item, keyed by audio_id (engine, voice, speed, file)
    predictions one row per (run, item, lane, option): log-probability and the lengths acc_norm divides by
    outputs     one row per (run, item, lane): chosen option (acc, acc_norm), correctness, cascade transcript + WER
    train_steps one row per (run, optimizer step): losses (kl, nll, ctc), learning rates, tokens, throughput
    metrics     aggregated values per (run, task or '__all__', metric, step); fractions, not points
    paired_items  VIEW: one row per run x item, lanes side by side

A run's life in the store is one context manager, `Store.run` (`Store.running` for a resumed run): 'running', then
'done', or 'failed' with its error. A bad row is refused with a StoreError naming it; callers leave out what they must
and note it in the run.

DuckDB admits one read-write process or many read-only ones. So every writer call opens the file, writes in one
short transaction and closes; every reader opens read-only per query; both retry with backoff while the other side
holds the lock (see `_connect`). Values only ever travel as parameters or as a registered DataFrame.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from salad_core.paths import default_store_path
from salad_core.provenance import code_version, new_run_id, package_versions, utc_now
from salad_core.schema import (
    HEADLINE_FILTER,
    RUN_KINDS,
    RUN_STATUSES,
    SCHEMA_VERSION,
    TABLES,
    StoreBusyError,
    StoreError,
    create_schema,
    memory_schema,
    rows_frame,
    schema_version,
    shadow_older_tables,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# Where the store is, and the keys of its items and audio


def store_path() -> Path:
    """The store file used when none is given: `$SALAD_STORE` if set, else `$SALAD_DATA/salad.duckdb`."""
    return Path(os.environ["SALAD_STORE"]) if os.environ.get("SALAD_STORE") else default_store_path()


def item_key(task: str, task_version: str, doc_id: str | int) -> str:
    """The recommended item_id: unique across tasks and versions, readable in tables."""
    return f"{task}@{task_version}/{doc_id}"


def audio_key(item_id: str, engine: str, voice: str, speed: float = 1.0, snr_db: float | None = None) -> str:
    """`capitals@1/3#flite:slt@1`, with `+noise10` after it for a rendering with white noise at 10 dB SNR."""
    noise = "" if snr_db is None or pd.isna(snr_db) else f"+noise{float(snr_db):g}"
    return f"{item_id}#{engine}:{voice}@{float(speed):g}{noise}"


# ---------------------------------------------------------------------------------------------------------------
# The store


class Store:
    """The results store at `path` (default: `store_path()`: `$SALAD_STORE`, else `$SALAD_DATA/salad.duckdb`)."""

    def __init__(self, path: str | Path | None = None, *, read_timeout_s: float = 5.0, write_timeout_s: float = 30.0):
        self.path = Path(path) if path is not None else store_path()
        if self.path.is_dir():
            raise StoreError(f"Store path {self.path} is a folder. "
                             f"Fix: name a file, e.g. {self.path / 'salad.duckdb'}.")
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------------------------------

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + (self.read_timeout_s if read_only else self.write_timeout_s)
        delay = 0.005
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except (duckdb.IOException, duckdb.ConnectionException) as err:
                if not _is_lock_error(err):
                    raise StoreError(f"Cannot open the store {self.path}: {err}. "
                                     "Fix: check the path and its permissions.") from err
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        f"The store {self.path} stayed locked by another process for "
                        f"{self.read_timeout_s if read_only else self.write_timeout_s:g} s ({err}). DuckDB admits one "
                        "writer or many readers. Fix: wait for the job writing to it, or stop the process named above."
                    ) from err
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                create_schema(con)
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: list | tuple = ()) -> pd.DataFrame:
        if not self.path.exists():
            return _empty_result(sql, params)
        with self._connect(read_only=True) as con:
            has_schema = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'").fetchall()[0][0]
            if not has_schema:
                return _empty_result(sql, params)
            if schema_version(con) < SCHEMA_VERSION:
                shadow_older_tables(con)
            try:
                return con.execute(sql, list(params)).df()
            except duckdb.CatalogException:  # a store of an older schema lacks a newer table until its next write
                return _empty_result(sql, params)

    # -- writers -------------------------------------------------------------------------------------------------

    def create_run(self, kind: str, config: dict, *, model: dict | None = None, prompt_template: str = "",
                   seed: int = 0, run_id: str | None = None, parent_run: str | None = None,
                   plan: dict | None = None) -> str:
        """Register a run (status 'running') and its model; returns the run id. Most callers want `run`, which also
        ends it.

        `config` is the run's config as given; `plan` what a training run derived from it (train.plan.TrainPlan).
        `parent_run` is the run this one comes from, given by the code that knows it (runs.Lineage): a Stage II
        run's round, a round's scoring model, an evaluation's training run. The first evaluation of a training run's
        model becomes that run's `final_eval`."""
        if kind not in RUN_KINDS:
            raise StoreError(f"Run kind {kind!r} is unknown. Fix: use one of {', '.join(RUN_KINDS)}.")
        if model is not None and not model.get("model_id"):
            raise StoreError("The model dict given to create_run has no 'model_id'. Fix: add model_id (e.g. its name).")
        chosen, run_id = run_id, run_id or new_run_id(kind)
        row = {"run_id": run_id, "kind": kind, "created_at": utc_now(), "status": "running",
               "model_id": model["model_id"] if model else None, "config": config,
               "prompt_template": prompt_template, "code_version": code_version(),
               "packages": package_versions(), "seed": seed, "parent_run": parent_run, "plan": plan}
        with self._transaction() as con:
            while con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
                if chosen:
                    raise StoreError(f"Run id {run_id!r} already exists. Fix: leave run_id unset to get a fresh one.")
                run_id = row["run_id"] = new_run_id(kind)  # two runs in one second drew the same 16 bits
            if model is not None:
                self._upsert(con, "models", [{"created_at": utc_now(), **model}])
            self._upsert(con, "runs", [row])
            if kind == "eval" and parent_run:
                con.execute("UPDATE runs SET final_eval = ? WHERE run_id = ? AND kind = 'train' AND final_eval IS NULL",
                            [run_id, parent_run])
        return run_id

    @contextmanager
    def run(self, kind: str, config: dict, **options) -> Iterator[str]:
        """`with store.run("eval", config, model=..., parent_run=...) as run_id:` creates the run (`create_run`
        takes the same arguments) and ends it: 'done' on a clean exit, 'failed' with the error on any exception,
        which goes on."""
        with self._lifecycle(self.create_run(kind, config, **options)) as run_id:
            yield run_id

    @contextmanager
    def running(self, run_id: str) -> Iterator[str]:
        """The lifecycle of a stored run, entered again by a resumed one: 'running' on entry, then as `run` ends."""
        self.finish_run(run_id, "running")
        with self._lifecycle(run_id):
            yield run_id

    @contextmanager
    def _lifecycle(self, run_id: str) -> Iterator[str]:
        """'done' on a clean exit, or 'failed' with `Type: message` on any exception, which goes on."""
        try:
            yield run_id
        except BaseException as err:
            try:
                self.finish_run(run_id, "failed", f"{type(err).__name__}: {err}")
            except StoreError as busy:  # the run's own error is the one to see
                log.warning("store: run %s could not be marked failed: %s", run_id, busy)
            raise
        self.finish_run(run_id, "done")

    def finish_run(self, run_id: str, status: str = "done", error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise StoreError(f"Run status {status!r} is unknown. Fix: use one of {', '.join(RUN_STATUSES)}.")
        with self._transaction() as con:
            self._require_run(con, run_id)
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                        [status, error, utc_now() if status != "running" else None, run_id])

    def add_note(self, run_id: str, note: str) -> None:
        """Append a note to the run, e.g. what it skipped and why (`salad runs show` prints them)."""
        with self._transaction() as con:
            self._require_run(con, run_id)
            stored = con.execute("SELECT notes FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]
            con.execute("UPDATE runs SET notes = ? WHERE run_id = ?",
                        [json.dumps([*(json.loads(stored) if stored else []), note]), run_id])

    def upsert_tasks(self, rows: list[dict]) -> int:
        return self._write("tasks", rows)

    def upsert_items(self, rows: list[dict]) -> int:
        return self._write("items", rows)

    def upsert_audio(self, rows: list[dict]) -> int:
        """Audio renderings; `audio_id` defaults to `audio_key(item_id, engine, voice, speed)`, speed to 1.0."""
        filled = [{**r, "speed": r.get("speed", 1.0)} for r in rows]
        filled = [{**r, "audio_id": r.get("audio_id") or _maybe_audio_key(r)} for r in filled]
        return self._write("item_audio", filled, known_items=True)

    def add_predictions(self, run_id: str, rows: list[dict]) -> int:
        return self._write("predictions", [{**r, "run_id": run_id} for r in rows], run_id=run_id, known_items=True)

    def add_outputs(self, run_id: str, rows: list[dict]) -> int:
        return self._write("outputs", [{**r, "run_id": run_id} for r in rows], run_id=run_id, known_items=True)

    def add_train_steps(self, run_id: str, rows: list[dict]) -> int:
        """Per-step training records (losses, learning rates, throughput) that the live monitor reads."""
        return self._write("train_steps", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def add_metrics(self, run_id: str, rows: list[dict]) -> int:
        """Metric values; a row with the same (task, metric, step) as a stored one replaces it."""
        return self._write("metrics", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def add_selection_clusters(self, run_id: str, rows: list[dict]) -> int:
        return self._write("selection_clusters", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def add_selection_domains(self, run_id: str, rows: list[dict]) -> int:
        return self._write("selection_domains", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def add_selection_texts(self, run_id: str, rows: list[dict]) -> int:
        return self._write("selection_texts", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def add_probe_scores(self, run_id: str, rows: list[dict]) -> int:
        return self._write("probe_scores", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def _write(self, table: str, rows: list[dict], *, run_id: str | None = None, known_items: bool = False) -> int:
        """Validate, then upsert in one transaction; returns the number of rows written."""
        frame = rows_frame(TABLES[table], rows)
        with self._transaction() as con:
            if run_id is not None:
                self._require_run(con, run_id)
            if known_items and len(frame):
                _require_items(con, table, frame)
            return self._upsert(con, table, frame)

    @staticmethod
    def _upsert(con: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame | list[dict]) -> int:
        spec = TABLES[table]
        frame = rows if isinstance(rows, pd.DataFrame) else rows_frame(spec, rows)
        if frame.empty:
            return 0
        con.register("incoming", frame)
        try:
            casts = ", ".join(f"CAST({c} AS {t})" for c, t in spec.columns.items())
            if not spec.primary_key:  # NULL-able key: replace by hand, NULL step equal to NULL step
                match = " AND ".join(f"t.{c} IS NOT DISTINCT FROM n.{c}" for c in spec.key)
                con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM incoming n WHERE {match})")
            verb = "INSERT OR REPLACE" if spec.primary_key else "INSERT"
            con.execute(f"{verb} INTO {table} ({', '.join(spec.columns)}) SELECT {casts} FROM incoming")
        finally:
            con.unregister("incoming")
        return len(frame)

    @staticmethod
    def _require_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
        if not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise StoreError(f"Run {run_id!r} is not in the store. Fix: call create_run first, use the id it returns.")

    # -- readers -------------------------------------------------------------------------------------------------

    def runs(self, kind: str | None = None) -> pd.DataFrame:
        """Runs, newest first, with the model's name joined in."""
        where, params = ("WHERE r.kind = ?", [kind]) if kind else ("", [])
        frame = self._read("SELECT r.*, m.name AS model_name, m.path AS model_path FROM runs r LEFT JOIN models m "
                           f"USING (model_id) {where} ORDER BY r.created_at DESC, r.run_id DESC", params)
        for col in ("config", "packages", "plan", "notes"):
            frame[col] = [json.loads(v) if isinstance(v, str) else v for v in frame[col]]
        return frame

    def metrics(self, run_id: str) -> pd.DataFrame:
        """The run's headline metrics: those of no voice condition and, in a voice sweep, of its reference voice."""
        return self._read(f"SELECT * FROM metrics WHERE run_id = ? AND {HEADLINE_FILTER} "
                          "ORDER BY task, metric, step NULLS LAST", [run_id, run_id])

    def condition_metrics(self, run_id: str) -> pd.DataFrame:
        """Metrics per voice condition of a sweep (`salad eval --voices`); empty for a single-voice run."""
        return self._read("SELECT * FROM metrics WHERE run_id = ? AND condition <> '' "
                          "ORDER BY condition, task, metric, step NULLS LAST", [run_id])

    def train_steps(self, run_id: str, since_step: int = -1) -> pd.DataFrame:
        """Training records of a run after `since_step`, in step order (a live view polls with the last step seen)."""
        return self._read("SELECT * FROM train_steps WHERE run_id = ? AND step > ? ORDER BY step", [run_id, since_step])

    def paired_items(self, run_id: str, task: str | None = None) -> pd.DataFrame:
        """One row per item of the run: text facts, audio and each lane's answer side by side; choices as lists."""
        where, params = "WHERE run_id = ?", [run_id]
        if task is not None:
            where, params = where + " AND task = ?", params + [task]
        frame = self._read(f"SELECT * FROM paired_items {where} ORDER BY task, doc_id", params)
        frame["choices"] = [json.loads(c) if isinstance(c, str) else c for c in frame["choices"]]
        return frame

    def option_scores(self, run_id: str, item_id: str) -> pd.DataFrame:
        """Every lane's log-probability per option of one item, with the option text and whether it is the answer."""
        frame = self._read(
            "SELECT p.lane, p.choice_idx, i.choices, p.choice_idx = i.answer AS is_answer, p.logprob, p.n_chars, "
            "p.n_tokens, p.is_greedy FROM predictions p JOIN items i USING (item_id) "
            f"WHERE p.run_id = ? AND p.item_id = ? AND {HEADLINE_FILTER} ORDER BY p.lane, p.choice_idx",
            [run_id, item_id, run_id])
        choices = [json.loads(c) for c in frame.pop("choices")]
        frame.insert(2, "choice", [c[i] if 0 <= i < len(c) else None for c, i in zip(choices, frame["choice_idx"])])
        return frame

    def audio(self, item_id: str | None = None) -> pd.DataFrame:
        where, params = ("WHERE item_id = ?", [item_id]) if item_id else ("", [])
        return self._read(f"SELECT * FROM item_audio {where} ORDER BY item_id, engine, voice, speed", params)

    def selection_clusters(self, run_id: str) -> pd.DataFrame:
        return self._read("SELECT * FROM selection_clusters WHERE run_id = ? ORDER BY cluster", [run_id])

    def selection_domains(self, run_id: str) -> pd.DataFrame:
        """The round's pool documents counted per cluster and domain."""
        return self._read("SELECT * FROM selection_domains WHERE run_id = ? ORDER BY cluster, domain", [run_id])

    def probe_scores(self, run_id: str) -> pd.DataFrame:
        """M per cluster of the round's probes under each model that scored them after the round."""
        return self._read("SELECT * FROM probe_scores WHERE run_id = ? ORDER BY model, cluster", [run_id])

    def selection_texts(self, run_id: str, role: str | None = None) -> pd.DataFrame:
        where, params = ("AND role = ?", [run_id, role]) if role else ("", [run_id])
        return self._read(f"SELECT * FROM selection_texts WHERE run_id = ? {where} ORDER BY role, text_key", params)

    def query(self, sql: str, params: list | tuple = ()) -> pd.DataFrame:
        """A read-only query for views not covered above; pass values as `?` parameters."""
        return self._read(sql, params)


def _is_lock_error(err: Exception) -> bool:
    text = str(err).lower()
    return "lock" in text or "different configuration" in text


def _maybe_audio_key(row: dict) -> str | None:
    parts = [row.get(k) for k in ("item_id", "engine", "voice")]
    return None if any(p is None for p in parts) else audio_key(*parts, row["speed"], row.get("snr_db"))


def _require_items(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    known = {r[0] for r in con.execute("SELECT item_id FROM items WHERE item_id IN (SELECT unnest(?))",
                                       [sorted(set(frame["item_id"]))]).fetchall()}
    unknown = sorted(set(frame["item_id"]) - known)
    if unknown:
        raise StoreError(f"Table '{table}' refused {int((~frame['item_id'].isin(known)).sum())} row(s) of item(s) not "
                         f"in the store: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; nothing of this "
                         "batch was written. Fix: upsert_items first, or leave those items out (and note it in the run).")


def _empty_result(sql: str, params: list | tuple) -> pd.DataFrame:
    """The query's result (columns, no rows) on an empty schema: a store that does not exist yet reads as empty."""
    return memory_schema().cursor().execute(sql, list(params)).df()
