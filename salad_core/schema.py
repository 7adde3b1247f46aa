"""The store's schema: its tables (one `TableSpec` each in `TABLES`, the single source of the DDL), the paired-items
view, the upgrade of a store written by an older salad, and the validation of rows before they are written.

Tables and conventions: docs/store.md; `salad_core.store.Store` reads and writes them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import pandas as pd

from salad_core.errors import SaladError
from salad_core.eval.vocabulary import LANES, NO_CONDITION

log = logging.getLogger("salad_core.store")

RUN_KINDS = ("eval", "train", "select")
RUN_STATUSES = ("running", "done", "failed")
SCHEMA_VERSION = 9  # 2 added train_steps, 3 the selection tables, 4 the voice condition, 5 lineage columns,
# 6 generative scoring's answers, 7 a run's plan and notes, an evaluation's parent, the CTC warm-up's units,
# 8 selection texts keyed by their text's hash (text_key, was text_idx) and a round's domains per cluster,
# 9 a round's probes scored by other models (probe_scores)
RENAMED = {"selection_texts": {"text_idx": "text_key"}}  # table -> {old column: new} (read as the new one)
COLUMN_DEFAULTS = {"condition": NO_CONDITION}  # filled in when a row leaves the column out; the DDL's DEFAULT too


class StoreError(SaladError, RuntimeError):
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
                   "packages JSON, seed INTEGER, parent_run VARCHAR, final_eval VARCHAR, plan JSON, notes JSON", "run_id"),
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
                      "condition VARCHAR!, answer_text VARCHAR, parse_fail BOOLEAN", "run_id item_id lane condition"),
    _table("train_steps", "run_id VARCHAR!, step INTEGER!, tokens BIGINT, speech_s DOUBLE, loss DOUBLE!, kl DOUBLE, "
                          "nll DOUBLE, ctc DOUBLE, lr_adapter DOUBLE, lr_llm DOUBLE, grad_norm DOUBLE, "
                          "n_text_positions INTEGER, replay BOOLEAN, tokens_per_s DOUBLE, wall_s DOUBLE, ctc_targets BIGINT, "
                          "n_ctc_targets INTEGER", "run_id step"),
    _table("metrics", "run_id VARCHAR!, task VARCHAR!, metric VARCHAR!, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, "
                      "n INTEGER, step INTEGER, condition VARCHAR!", "run_id task metric step condition",
           primary_key=False),
    # Stage II selection rounds (runs of kind 'select'): one row per cluster, per cluster and domain of the pool's
    # documents, and per text on the cluster map (role 'member', with UMAP x/y), per probe and per selected text;
    # a text is named by its key (select/pool.py's hash of its text). Rounds before schema 8 stored every
    # member, keyed by its index in the world's pool.
    _table("selection_clusters", "run_id VARCHAR!, cluster INTEGER!, size INTEGER!, p_web DOUBLE!, m DOUBLE, "
                                 "m_distill DOUBLE, m_tokens INTEGER, cer DOUBLE, filtered BOOLEAN!, p_target DOUBLE!, "
                                 "n_probes INTEGER, n_selected INTEGER!, selected_s DOUBLE, domain VARCHAR",
           "run_id cluster"),
    _table("selection_domains", "run_id VARCHAR!, cluster INTEGER!, domain VARCHAR!, size BIGINT!",
           "run_id cluster domain"),
    _table("selection_texts", "run_id VARCHAR!, text_key BIGINT!, role VARCHAR!, cluster INTEGER!, domain VARCHAR, "
                              "text VARCHAR, doc_id VARCHAR, seconds DOUBLE, x DOUBLE, y DOUBLE",
           "run_id text_key role"),
    # M per cluster of a round's spoken probes under another model than the one that scored them in the round
    # (model: a training run's id for its final model, RUN/step-NNNNNN for one of its checkpoints)
    _table("probe_scores", "run_id VARCHAR!, model VARCHAR!, cluster INTEGER!, m DOUBLE, m_distill DOUBLE, "
                           "m_tokens INTEGER!", "run_id model cluster"),
)}

_LANE_COLUMNS = ("pred", "pred_norm", "correct", "correct_norm")
# A run's headline reads the rows of no condition and, in a voice sweep, those of its reference voice: the sweep's
# first condition, which the run's config names as `voice` (a single-voice run has no rows of that condition).
_REFERENCE = "json_extract_string(r.config, '$.voice')"
HEADLINE_FILTER = f"(condition = '' OR condition = (SELECT {_REFERENCE} FROM runs r WHERE r.run_id = ?))"


def paired_items_view() -> str:
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


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def _stored_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = ?", [table]).fetchall()}


def _renamed(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> dict[str, str]:
    """{old: new} of the stored table's columns that this version renamed."""
    have = _stored_columns(con, spec.name)
    return {old: new for old, new in RENAMED.get(spec.name, {}).items() if old in have}


def _missing_columns(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> list[str]:
    """Columns of `spec` that the stored table (written by an older salad) lacks, renamed ones aside; none if
    there is no such table."""
    have = _stored_columns(con, spec.name) | set(_renamed(con, spec).values())
    return [c for c in spec.columns if c not in have] if have else []


def _select_renamed(renames: dict[str, str], source: str) -> str:
    listed = ", ".join(f"{old} AS {new}" for old, new in renames.items())
    return f"SELECT * {f'RENAME ({listed}) ' if listed else ''}FROM {source}"


def _upgrade_table(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    """Rebuild an older table with this version's columns (defaults filled in, renamed ones read as their new
    name): its key may have grown, which an ALTER TABLE cannot do to a primary key."""
    renames = _renamed(con, spec)
    con.execute(f"ALTER TABLE {spec.name} RENAME TO {spec.name}_old")
    con.execute(spec.ddl())
    con.execute(f"INSERT INTO {spec.name} BY NAME {_select_renamed(renames, spec.name + '_old')}")
    con.execute(f"DROP TABLE {spec.name}_old")


def _domains_from_members(source: str) -> str:
    """Rounds stored before schema 8 held every member of the pool: their domains per cluster, counted."""
    return (f"SELECT run_id, cluster, coalesce(domain, '') AS domain, count(*) AS size FROM {source} "
            "WHERE role = 'member' GROUP BY ALL")


def _fill_lineage(con: duckdb.DuckDBPyConnection) -> None:
    """Runs of a store older than its lineage columns: the parent read from the config (a Stage II run's round, a
    round's scoring model) and a training run's final evaluation found as the earliest evaluation of its final
    model, as salad found them before it stored them."""
    con.execute("UPDATE runs SET parent_run = json_extract_string(config, '$.round_id') "
                "WHERE kind = 'train' AND json_extract_string(config, '$.stage') = '2'")
    con.execute("UPDATE runs SET parent_run = json_extract_string(config, '$.from_run') WHERE kind = 'select'")
    con.execute("UPDATE runs AS t SET final_eval = (SELECT e.run_id FROM runs e WHERE e.kind = 'eval' AND "
                "rtrim(json_extract_string(e.config, '$.model_path'), '/') LIKE '%' || t.run_id || '/final' "
                "ORDER BY e.created_at LIMIT 1) WHERE t.kind = 'train'")


def _fill_plans(con: duckdb.DuckDBPyConnection) -> None:
    """Runs of a store older than plans: a training run's config then held what it derived (the steps a budget gave,
    the synthetic share used), and an evaluation named the training run it scored only by its model's folder
    (.../<run id>/final): read once, here, as salad found them before it stored them."""
    con.execute("UPDATE runs SET plan = json_object('max_steps', json_extract(config, '$.max_steps'), "
                "'synthetic_prob', json_extract(config, '$.synthetic_prob')) WHERE kind = 'train'")
    con.execute("UPDATE runs AS e SET parent_run = (SELECT t.run_id FROM runs t WHERE t.kind = 'train' AND "
                "rtrim(json_extract_string(e.config, '$.model_path'), '/') LIKE '%/' || t.run_id || '/final' LIMIT 1) "
                "WHERE e.kind = 'eval' AND e.parent_run IS NULL")


def shadow_older_tables(con: duckdb.DuckDBPyConnection) -> None:
    """An older store opened read-only cannot be upgraded: temporary views give its tables the columns added since,
    with their defaults (and renamed ones their new name), so this version's queries (and the stored paired_items
    view) run on it unchanged."""
    database = con.execute("SELECT current_database()").fetchone()[0]
    for spec in TABLES.values():
        missing, renames = _missing_columns(con, spec), _renamed(con, spec)
        if missing or renames:
            added = "".join(f", CAST({_default_literal(c)} AS {spec.columns[c]}) AS {c}" for c in missing)
            select = _select_renamed(renames, f'"{database}".main.{spec.name}').replace(" FROM ", f"{added} FROM ", 1)
            con.execute(f"CREATE TEMP VIEW {spec.name} AS {select}")
    if not _stored_columns(con, "selection_domains") and _stored_columns(con, "selection_texts"):
        members = f'"{database}".main.selection_texts'
        con.execute(f"CREATE TEMP VIEW selection_domains AS {_domains_from_members(members)}")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    found = schema_version(con)
    if found > SCHEMA_VERSION:
        raise StoreError(f"The store was written by a newer salad (schema {found} > {SCHEMA_VERSION}). "
                         "Fix: upgrade salad, or point SALAD_STORE at another file.")
    if found == SCHEMA_VERSION:
        return
    missing = _missing_columns(con, TABLES["runs"])
    had_domains = bool(_stored_columns(con, "selection_domains"))
    for spec in TABLES.values():
        if _missing_columns(con, spec) or _renamed(con, spec):
            _upgrade_table(con, spec)
        else:
            con.execute(spec.ddl())
    if "parent_run" in missing:
        _fill_lineage(con)
    if "plan" in missing:
        _fill_plans(con)
    if not had_domains:
        con.execute(f"INSERT OR IGNORE INTO selection_domains {_domains_from_members('selection_texts')}")
    con.execute(paired_items_view())
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])



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
        return f"it misses {', '.join(missing)}. Fix: fill {', '.join(spec.required)} in every {spec.name} row"
    if "lane" in spec.columns and row["lane"] not in LANES:
        return f"lane {row['lane']!r} is unknown. Fix: use one of {', '.join(LANES)}"
    return None


def rows_frame(spec: TableSpec, rows: list[dict]) -> pd.DataFrame:
    """Validated rows as a DataFrame with every column of the table; a bad row refuses the whole batch (StoreError
    naming the row and the fix): the caller decides what to leave out, and says so in its run."""
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
            key = ", ".join(f"{k}={row.get(k)!r}" for k in spec.key)
            raise StoreError(f"Table '{spec.name}' refused row {i} ({key}): {problem}. Nothing of this batch was "
                             "written.")
        good.append({c: _to_json(row.get(c)) if c in spec.json_columns else row.get(c) for c in spec.columns})
    frame = pd.DataFrame(good, columns=list(spec.columns), dtype=object)
    if len(frame) > frame.drop_duplicates(subset=list(spec.key)).shape[0]:
        log.warning("store: %s batch repeats keys; the last row of each key wins", spec.name)
        frame = frame.drop_duplicates(subset=list(spec.key), keep="last")
    return frame



@lru_cache(maxsize=1)
def memory_schema() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    create_schema(con)
    return con
