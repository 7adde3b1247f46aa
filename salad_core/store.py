"""The DuckDB results store: runs, models, tasks, items and their audio, option scores, lane outputs, metrics.

Everything the dashboard shows is a projection of the *paired item*: one question with its text, its audio and the
outputs of every lane on it (the lanes: salad_core/eval/vocabulary.py). Full schema and conventions: docs/store.md.

Tables (one `TableSpec` each in `TABLES`, the single source of the DDL):
    runs        one row per eval/train/select run: config, prompt template, code version, package versions, seed
    models      the model a run used: LLM, encoder, adapter settings, checkpoint path
    tasks       task suites by (task, version)
    items       text-side facts of a question, keyed by item_id (unique across tasks and versions)
    item_audio  one spoken rendering of an item, keyed by audio_id (engine, voice, speed, file)
    predictions one row per (run, item, lane, option): log-probability and the lengths acc_norm divides by
    outputs     one row per (run, item, lane): chosen option (acc, acc_norm), correctness, cascade transcript + WER
    train_steps one row per (run, optimizer step): losses (kl, nll, ctc), learning rates, tokens, throughput
    metrics     aggregated values per (run, task or '__all__', metric, step); fractions, not points
    paired_items  VIEW: one row per run x item, lanes side by side

DuckDB admits one read-write process or many read-only ones. So every writer call opens the file, writes in one
short transaction and closes; every reader opens read-only per query; both retry with backoff while the other side
holds the lock (see `_connect`). Values only ever travel as parameters or as a registered DataFrame.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import random
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd

from salad_core import __version__
from salad_core.eval.vocabulary import LANES, NO_CONDITION
from salad_core.paths import REPO_ROOT, default_store_path

log = logging.getLogger(__name__)

RUN_KINDS = ("eval", "train", "select")
RUN_STATUSES = ("running", "done", "failed")
SCHEMA_VERSION = 4  # 2 added train_steps, 3 the selection tables, 4 the voice condition of a sweep
COLUMN_DEFAULTS = {"condition": NO_CONDITION}  # filled in when a row leaves the column out; the DDL's DEFAULT too
PACKAGES_RECORDED = ("torch", "transformers", "accelerate", "peft", "faster-whisper", "ctranslate2", "numpy",
                     "duckdb", "kokoro-onnx", "piper-tts", "salad")


class StoreError(RuntimeError):
    """The results store refused an input or could not be read; the message names the input and the fix."""


class StoreBusyError(StoreError):
    """Another process held the store's lock for longer than the retry budget."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: dict[str, str]  # column -> DuckDB type, in table order
    key: tuple[str, ...]  # upsert key (the PRIMARY KEY unless a key column may be NULL)
    required: tuple[str, ...]  # NOT NULL: present in every written row
    primary_key: bool = True

    @property
    def json_columns(self) -> tuple[str, ...]:
        return tuple(c for c, t in self.columns.items() if t == "JSON")

    def ddl(self) -> str:
        cols = [f"{c} {t}{' NOT NULL' if c in self.required else ''}{_default_sql(c)}" for c, t in self.columns.items()]
        if self.primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(cols)})"


def _default_literal(column: str) -> str:
    return f"'{COLUMN_DEFAULTS[column]}'" if column in COLUMN_DEFAULTS else "NULL"


def _default_sql(column: str) -> str:
    return f" DEFAULT {_default_literal(column)}" if column in COLUMN_DEFAULTS else ""


def _table(name: str, columns: str, key: str, primary_key: bool = True) -> TableSpec:
    """`columns`: comma-separated 'name TYPE' pairs; a '!' after the type marks a required (NOT NULL) column."""
    pairs = [c.split() for c in columns.split(",")]
    return TableSpec(name, {n: t.rstrip("!") for n, t in pairs}, tuple(key.split()),
                     tuple(n for n, t in pairs if t.endswith("!")), primary_key)


TABLES = {t.name: t for t in (
    _table("runs", "run_id VARCHAR!, kind VARCHAR!, created_at TIMESTAMP!, finished_at TIMESTAMP, status VARCHAR!, "
                   "error VARCHAR, model_id VARCHAR, config JSON, prompt_template VARCHAR, code_version VARCHAR, "
                   "packages JSON, seed INTEGER", "run_id"),
    _table("models", "model_id VARCHAR!, name VARCHAR, llm VARCHAR, encoder VARCHAR, adapter JSON, path VARCHAR, "
                     "params JSON, created_at TIMESTAMP", "model_id"),
    _table("tasks", "task VARCHAR!, version VARCHAR!, domain VARCHAR, description VARCHAR, source VARCHAR",
           "task version"),
    _table("items", "item_id VARCHAR!, task VARCHAR!, task_version VARCHAR!, doc_id VARCHAR!, split VARCHAR, "
                    "question VARCHAR!, choices JSON!, answer INTEGER!, domain VARCHAR", "item_id"),
    _table("item_audio", "audio_id VARCHAR!, item_id VARCHAR!, engine VARCHAR!, voice VARCHAR!, speed DOUBLE!, "
                         "path VARCHAR!, text VARCHAR, duration_s DOUBLE, sample_rate INTEGER, snr_db DOUBLE",
           "audio_id"),
    _table("predictions", "run_id VARCHAR!, item_id VARCHAR!, lane VARCHAR!, choice_idx INTEGER!, logprob DOUBLE!, "
                          "n_chars INTEGER, n_tokens INTEGER, is_greedy BOOLEAN, condition VARCHAR!",
           "run_id item_id lane choice_idx condition"),
    _table("outputs", "run_id VARCHAR!, item_id VARCHAR!, lane VARCHAR!, audio_id VARCHAR, pred INTEGER!, "
                      "pred_norm INTEGER, correct BOOLEAN!, correct_norm BOOLEAN, transcript VARCHAR, wer DOUBLE, "
                      "condition VARCHAR!", "run_id item_id lane condition"),
    _table("train_steps", "run_id VARCHAR!, step INTEGER!, tokens BIGINT, speech_s DOUBLE, loss DOUBLE!, kl DOUBLE, "
                          "nll DOUBLE, ctc DOUBLE, lr_adapter DOUBLE, lr_llm DOUBLE, grad_norm DOUBLE, "
                          "n_text_positions INTEGER, replay BOOLEAN, tokens_per_s DOUBLE, wall_s DOUBLE", "run_id step"),
    _table("metrics", "run_id VARCHAR!, task VARCHAR!, metric VARCHAR!, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, "
                      "n INTEGER, step INTEGER, condition VARCHAR!", "run_id task metric step condition",
           primary_key=False),
    # Stage II selection rounds (runs of kind 'select'): one row per cluster, and per text of the corpus
    # (role 'member': its cluster and, for the texts drawn on the map, UMAP x/y), per probe and per selected text.
    _table("selection_clusters", "run_id VARCHAR!, cluster INTEGER!, size INTEGER!, p_web DOUBLE!, m DOUBLE, "
                                 "m_distill DOUBLE, m_tokens INTEGER, cer DOUBLE, filtered BOOLEAN!, p_target DOUBLE!, "
                                 "n_probes INTEGER, n_selected INTEGER!, selected_s DOUBLE, domain VARCHAR",
           "run_id cluster"),
    _table("selection_texts", "run_id VARCHAR!, text_idx INTEGER!, role VARCHAR!, cluster INTEGER!, domain VARCHAR, "
                              "text VARCHAR, doc_id VARCHAR, seconds DOUBLE, x DOUBLE, y DOUBLE",
           "run_id text_idx role"),
)}

_LANE_COLUMNS = ("pred", "pred_norm", "correct", "correct_norm")
# A run's headline reads the rows of no condition and, in a voice sweep, those of its reference voice: the sweep's
# first condition, which the run's config names as `voice` (a single-voice run has no rows of that condition).
_REFERENCE = "json_extract_string(r.config, '$.voice')"
_HEADLINE = f"(condition = '' OR condition = (SELECT {_REFERENCE} FROM runs r WHERE r.run_id = ?))"


def _paired_items_view() -> str:
    per_lane = [f"any_value(o.{col}) FILTER (WHERE o.lane = '{lane}') AS {lane}_{col}"
                for lane in LANES for col in _LANE_COLUMNS]
    return f"""
CREATE OR REPLACE VIEW paired_items AS
WITH per_item AS (
    SELECT o.run_id, o.item_id,
           coalesce(any_value(o.audio_id) FILTER (WHERE o.lane = 'speech'),
                    any_value(o.audio_id) FILTER (WHERE o.lane = 'cascade')) AS audio_id,
           {', '.join(per_lane)},
           any_value(o.transcript) FILTER (WHERE o.lane = 'cascade') AS cascade_transcript,
           any_value(o.wer) FILTER (WHERE o.lane = 'cascade') AS cascade_wer
    FROM outputs o JOIN runs r USING (run_id) WHERE o.condition = '' OR o.condition = {_REFERENCE}
    GROUP BY o.run_id, o.item_id)
SELECT p.run_id, i.item_id, i.task, i.task_version, i.doc_id, i.split, i.domain, i.question, i.choices, i.answer,
       p.audio_id, a.path AS audio_path, a.engine AS tts_engine, a.voice AS tts_voice, a.speed AS tts_speed,
       a.duration_s AS audio_duration_s, p.* EXCLUDE (run_id, item_id, audio_id)
FROM per_item p JOIN items i USING (item_id) LEFT JOIN item_audio a ON a.audio_id = p.audio_id"""


def _schema_version(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def _missing_columns(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> list[str]:
    """Columns of `spec` that the stored table (written by an older salad) lacks; none if there is no such table."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = ?", [spec.name]).fetchall()}
    return [c for c in spec.columns if c not in have] if have else []


def _upgrade_table(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    """Rebuild an older table with this version's columns (defaults filled in): its key may have grown, which an
    ALTER TABLE cannot do to a primary key."""
    con.execute(f"ALTER TABLE {spec.name} RENAME TO {spec.name}_old")
    con.execute(spec.ddl())
    con.execute(f"INSERT INTO {spec.name} BY NAME SELECT * FROM {spec.name}_old")
    con.execute(f"DROP TABLE {spec.name}_old")


def _shadow_older_tables(con: duckdb.DuckDBPyConnection) -> None:
    """An older store opened read-only cannot be upgraded: temporary views give its tables the columns added since,
    with their defaults, so this version's queries (and the stored paired_items view) run on it unchanged."""
    database = con.execute("SELECT current_database()").fetchone()[0]
    for spec in TABLES.values():
        missing = _missing_columns(con, spec)
        if missing:
            added = ", ".join(f"CAST({_default_literal(c)} AS {spec.columns[c]}) AS {c}" for c in missing)
            con.execute(f'CREATE TEMP VIEW {spec.name} AS SELECT *, {added} FROM "{database}".main.{spec.name}')


def _create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    found = _schema_version(con)
    if found > SCHEMA_VERSION:
        raise StoreError(f"The store was written by a newer salad (schema {found} > {SCHEMA_VERSION}). "
                         "Fix: upgrade salad, or point SALAD_STORE at another file.")
    if found == SCHEMA_VERSION:
        return
    for spec in TABLES.values():
        if _missing_columns(con, spec):
            _upgrade_table(con, spec)
        else:
            con.execute(spec.ddl())
    con.execute(_paired_items_view())
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


# ---------------------------------------------------------------------------------------------------------------
# Provenance and identifiers


def store_path() -> Path:
    """The store file used when none is given: `$SALAD_STORE` if set, else `$SALAD_DATA/salad.duckdb`."""
    return Path(os.environ["SALAD_STORE"]) if os.environ.get("SALAD_STORE") else default_store_path()


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_run_id(kind: str) -> str:
    """Short, sortable, unique: `eval-20261125-223015-ab12` (UTC time, then 16 random bits)."""
    return f"{kind}-{utc_now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def item_key(task: str, task_version: str, doc_id: str | int) -> str:
    """The recommended item_id: unique across tasks and versions, readable in tables."""
    return f"{task}@{task_version}/{doc_id}"


def audio_key(item_id: str, engine: str, voice: str, speed: float = 1.0, snr_db: float | None = None) -> str:
    """`capitals@1/3#flite:slt@1`, with `+noise10` after it for a rendering with white noise at 10 dB SNR."""
    noise = "" if snr_db is None or pd.isna(snr_db) else f"+noise{float(snr_db):g}"
    return f"{item_id}#{engine}:{voice}@{float(speed):g}{noise}"


@lru_cache(maxsize=1)
def code_version() -> str:
    """Git SHA of the checkout (+ '-dirty' with uncommitted changes), else the package version."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO_ROOT), *args],
                              capture_output=True, text=True, timeout=10)
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        return sha + ("-dirty" if git("status", "--porcelain") else "")
    except (OSError, subprocess.SubprocessError):
        return f"salad-{__version__}"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES_RECORDED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# ---------------------------------------------------------------------------------------------------------------
# Row validation


def _to_json(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=isinstance(value, dict))


def _row_problem(spec: TableSpec, row: dict) -> str | None:
    """What is wrong with a row and how to fix it, or None."""
    missing = [c for c in spec.required if row.get(c) is None]
    if missing:
        return f"missing {', '.join(missing)}; every {spec.name} row needs {', '.join(spec.required)}"
    if "lane" in spec.columns and row["lane"] not in LANES:
        return f"lane {row['lane']!r} is unknown; use one of {', '.join(LANES)}"
    return None


def _frame(spec: TableSpec, rows: list[dict]) -> pd.DataFrame:
    """Validated rows as a DataFrame with every column of the table; bad rows are logged and left out."""
    if isinstance(rows, dict) or not all(isinstance(r, dict) for r in rows):
        raise StoreError(f"Rows for table '{spec.name}' must be a list of dicts. Fix: wrap a single row as [row].")
    unknown = sorted({k for r in rows for k in r} - set(spec.columns))
    if unknown:
        raise StoreError(f"Table '{spec.name}' has no column(s) {', '.join(unknown)}. "
                         f"Fix: use only {', '.join(spec.columns)} (see docs/store.md).")
    good = []
    for i, row in enumerate(rows):
        row = {**{c: v for c, v in COLUMN_DEFAULTS.items() if c in spec.columns},
               **{c: v for c, v in row.items() if v is not None}}
        problem = _row_problem(spec, row)
        if problem:
            log.warning("store: skipped %s row %d %s: %s", spec.name, i, {k: row.get(k) for k in spec.key}, problem)
        else:
            good.append({c: _to_json(row.get(c)) if c in spec.json_columns else row.get(c) for c in spec.columns})
    frame = pd.DataFrame(good, columns=list(spec.columns), dtype=object)
    if len(frame) > frame.drop_duplicates(subset=list(spec.key)).shape[0]:
        log.warning("store: %s batch repeats keys; the last row of each key wins", spec.name)
        frame = frame.drop_duplicates(subset=list(spec.key), keep="last")
    return frame


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
                _create_schema(con)
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
            if _schema_version(con) < SCHEMA_VERSION:
                _shadow_older_tables(con)
            try:
                return con.execute(sql, list(params)).df()
            except duckdb.CatalogException:  # a store of an older schema lacks a newer table until its next write
                return _empty_result(sql, params)

    # -- writers -------------------------------------------------------------------------------------------------

    def create_run(self, kind: str, config: dict, *, model: dict | None = None, prompt_template: str = "",
                   seed: int = 0, run_id: str | None = None) -> str:
        """Register a run (status 'running') and its model; returns the run id."""
        if kind not in RUN_KINDS:
            raise StoreError(f"Run kind {kind!r} is unknown. Fix: use one of {', '.join(RUN_KINDS)}.")
        if model is not None and not model.get("model_id"):
            raise StoreError("The model dict given to create_run has no 'model_id'. Fix: add model_id (e.g. its name).")
        run_id = run_id or new_run_id(kind)
        row = {"run_id": run_id, "kind": kind, "created_at": utc_now(), "status": "running",
               "model_id": model["model_id"] if model else None, "config": config,
               "prompt_template": prompt_template, "code_version": code_version(),
               "packages": package_versions(), "seed": seed}
        with self._transaction() as con:
            if con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
                raise StoreError(f"Run id {run_id!r} already exists. Fix: leave run_id unset to get a fresh one.")
            if model is not None:
                self._upsert(con, "models", [{"created_at": utc_now(), **model}])
            self._upsert(con, "runs", [row])
        return run_id

    def finish_run(self, run_id: str, status: str = "done", error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise StoreError(f"Run status {status!r} is unknown. Fix: use one of {', '.join(RUN_STATUSES)}.")
        with self._transaction() as con:
            self._require_run(con, run_id)
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                        [status, error, utc_now() if status != "running" else None, run_id])

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

    def add_selection_texts(self, run_id: str, rows: list[dict]) -> int:
        return self._write("selection_texts", [{**r, "run_id": run_id} for r in rows], run_id=run_id)

    def _write(self, table: str, rows: list[dict], *, run_id: str | None = None, known_items: bool = False) -> int:
        """Validate, then upsert in one transaction; returns the number of rows written."""
        frame = _frame(TABLES[table], rows)
        with self._transaction() as con:
            if run_id is not None:
                self._require_run(con, run_id)
            if known_items and len(frame):
                frame = _drop_unknown_items(con, table, frame)
            return self._upsert(con, table, frame)

    @staticmethod
    def _upsert(con: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame | list[dict]) -> int:
        spec = TABLES[table]
        frame = rows if isinstance(rows, pd.DataFrame) else _frame(spec, rows)
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
        for col in ("config", "packages"):
            frame[col] = [json.loads(v) if isinstance(v, str) else v for v in frame[col]]
        return frame

    def latest_run(self, kind: str = "eval", status: str | None = "done") -> str | None:
        runs = self.runs(kind)
        if status is not None:
            runs = runs[runs["status"] == status]
        return None if runs.empty else str(runs["run_id"].iloc[0])

    def metrics(self, run_id: str) -> pd.DataFrame:
        """The run's headline metrics: those of no voice condition and, in a voice sweep, of its reference voice."""
        return self._read(f"SELECT * FROM metrics WHERE run_id = ? AND {_HEADLINE} "
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
            f"WHERE p.run_id = ? AND p.item_id = ? AND {_HEADLINE} ORDER BY p.lane, p.choice_idx",
            [run_id, item_id, run_id])
        choices = [json.loads(c) for c in frame.pop("choices")]
        frame.insert(2, "choice", [c[i] if 0 <= i < len(c) else None for c, i in zip(choices, frame["choice_idx"])])
        return frame

    def audio(self, item_id: str | None = None) -> pd.DataFrame:
        where, params = ("WHERE item_id = ?", [item_id]) if item_id else ("", [])
        return self._read(f"SELECT * FROM item_audio {where} ORDER BY item_id, engine, voice, speed", params)

    def selection_clusters(self, run_id: str) -> pd.DataFrame:
        return self._read("SELECT * FROM selection_clusters WHERE run_id = ? ORDER BY cluster", [run_id])

    def selection_texts(self, run_id: str, role: str | None = None) -> pd.DataFrame:
        where, params = ("AND role = ?", [run_id, role]) if role else ("", [run_id])
        return self._read(f"SELECT * FROM selection_texts WHERE run_id = ? {where} ORDER BY role, text_idx", params)

    def done_items(self, run_id: str, lane: str) -> set[str]:
        """Items that already have an output in this lane: a resumed run skips them."""
        frame = self._read("SELECT item_id FROM outputs WHERE run_id = ? AND lane = ?", [run_id, lane])
        return set(frame["item_id"])

    def query(self, sql: str, params: list | tuple = ()) -> pd.DataFrame:
        """A read-only query for views not covered above; pass values as `?` parameters."""
        return self._read(sql, params)


def _is_lock_error(err: Exception) -> bool:
    text = str(err).lower()
    return "lock" in text or "different configuration" in text


def _maybe_audio_key(row: dict) -> str | None:
    parts = [row.get(k) for k in ("item_id", "engine", "voice")]
    return None if any(p is None for p in parts) else audio_key(*parts, row["speed"], row.get("snr_db"))


def _drop_unknown_items(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    known = {r[0] for r in con.execute("SELECT item_id FROM items WHERE item_id IN (SELECT unnest(?))",
                                       [sorted(set(frame["item_id"]))]).fetchall()}
    unknown = sorted(set(frame["item_id"]) - known)
    if unknown:
        log.warning("store: skipped %d %s row(s) for item(s) not in the store: %s. Fix: upsert_items first.",
                    int((~frame["item_id"].isin(known)).sum()), table, ", ".join(unknown[:5]))
    return frame[frame["item_id"].isin(known)]


@lru_cache(maxsize=1)
def _memory_schema() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    _create_schema(con)
    return con


def _empty_result(sql: str, params: list | tuple) -> pd.DataFrame:
    """The query's result (columns, no rows) on an empty schema: a store that does not exist yet reads as empty."""
    return _memory_schema().cursor().execute(sql, list(params)).df()
