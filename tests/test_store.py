"""The DuckDB results store: schema round trips, provenance, upsert semantics, bad input, and locking between
processes (a writer in a loop while another process reads in a loop)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest
from conftest import FIXTURE_F, fixture_items, fixture_run

from salad_core.eval.vocabulary import ALL_TASKS, LANES
from salad_core.paths import REPO_ROOT
from salad_core.provenance import code_version, new_run_id
from salad_core.store import Store, StoreBusyError, StoreError, audio_key, item_key, store_path


def test_paired_items_put_every_lane_side_by_side(fixture_store):
    run_id = fixture_run(fixture_store)
    paired = fixture_store.paired_items(run_id)
    assert len(paired) == 12 and set(paired["task"]) == {"capitals", "symbols"}
    row = paired.set_index("item_id").loc["capitals@1/2"]
    assert row["question"] == "The capital of Kenya is"
    assert row["choices"][row["answer"]] == "Nairobi"  # choices come back as a list
    assert row["base_text_pred"] == row["answer"] and row["text_correct"]
    assert row["speech_pred"] == (row["answer"] + 1) % 4 and not row["speech_correct"]
    assert row["cascade_transcript"] == "The capital of Kenya his" and row["cascade_wer"] == pytest.approx(0.2)
    assert row["audio_path"].endswith("capitals-2.wav") and row["tts_engine"] == "tone"
    assert row["audio_id"] == audio_key("capitals@1/2", "tone", "440hz", 1.0)
    assert paired["speech_correct"].sum() == 4 and paired["text_correct"].sum() == 10
    assert len(fixture_store.paired_items(run_id, task="symbols")) == 6


def test_option_scores_name_each_option(fixture_store):
    scores = fixture_store.option_scores(fixture_run(fixture_store), "symbols@1/0")
    assert len(scores) == 4 * len(LANES)
    speech = scores[scores["lane"] == "speech"].set_index("choice_idx")
    assert speech.loc[0, "choice"] == "Au" and bool(speech.loc[0, "is_answer"])
    assert speech["logprob"].idxmax() == 0 and bool(speech.loc[0, "is_greedy"])
    assert speech.loc[1, "n_chars"] == len(speech.loc[1, "choice"]) + 1


def test_metrics_and_run_provenance(fixture_store):
    runs = fixture_store.runs()
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "done" and run["finished_at"] >= run["created_at"]
    assert run["config"] == {"limit": 6, "voice": "tone:440hz@1"} and run["seed"] == 0
    assert run["model_name"] == "smol (untrained adapter, seed 0)" and run["model_path"] is None
    assert run["packages"]["duckdb"] == duckdb.__version__
    assert run["code_version"] == code_version()
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?|salad-\d+\.\d+\.\d+\S*", run["code_version"])
    metrics = fixture_store.metrics(run["run_id"]).set_index(["task", "metric"])
    assert metrics.loc[(ALL_TASKS, "speech_acc"), "value"] == pytest.approx(4 / 12)
    assert metrics.loc[("capitals", "gap"), "value"] == pytest.approx(0.5)
    assert metrics.loc[(ALL_TASKS, "F"), "value"] == pytest.approx(FIXTURE_F)
    assert fixture_store.runs(kind="train").empty


def test_run_ids_are_short_sortable_and_unique():
    ids = [new_run_id("eval") for _ in range(50)]
    assert all(re.fullmatch(r"eval-\d{8}-\d{6}-[0-9a-f]{4}", i) for i in ids)
    assert len(set(ids)) > 45  # 16 random bits within one second


def test_a_drawn_run_id_that_is_taken_is_drawn_again(tmp_path, monkeypatch):
    import salad_core.store as store_module

    drawn = iter(["train-20261202-102041-4609", "train-20261202-102041-4609", "train-20261202-102041-77aa"])
    monkeypatch.setattr(store_module, "new_run_id", lambda kind: next(drawn))
    store = Store(tmp_path / "s.duckdb")
    assert store.create_run("train", {}) == "train-20261202-102041-4609"
    assert store.create_run("train", {}) == "train-20261202-102041-77aa"
    with pytest.raises(StoreError, match="already exists"):  # an id the caller chose is never replaced
        store.create_run("train", {}, run_id="train-20261202-102041-77aa")


def test_upserts_replace_rather_than_duplicate(fixture_store):
    run_id = fixture_run(fixture_store)
    item = fixture_items()[0]
    fixture_store.upsert_items([{**item, "question": "What is the capital of France?"}])
    paired = fixture_store.paired_items(run_id)
    assert len(paired) == 12 and paired.iloc[0]["question"] == "What is the capital of France?"
    fixture_store.add_outputs(run_id, [{"item_id": item["item_id"], "lane": "speech", "pred": 1, "correct": False}])
    assert not fixture_store.paired_items(run_id).iloc[0]["speech_correct"]
    assert len(fixture_store.query("SELECT * FROM outputs WHERE run_id = ?", [run_id])) == 12 * len(LANES)


def test_metrics_replace_by_task_metric_and_step(fixture_store):
    run_id = fixture_store.create_run("train", {"steps": 3})
    fixture_store.add_metrics(run_id, [{"task": ALL_TASKS, "metric": "M", "value": v, "step": s}
                                       for s, v in ((1, 3.0), (2, 2.5))])
    fixture_store.add_metrics(run_id, [{"task": ALL_TASKS, "metric": "M", "value": 2.0, "step": 2},
                                       {"task": ALL_TASKS, "metric": "M", "value": 1.9}])
    fixture_store.add_metrics(run_id, [{"task": ALL_TASKS, "metric": "M", "value": 1.8}])
    metrics = fixture_store.metrics(run_id)
    assert metrics["value"].tolist() == [3.0, 2.0, 1.8]  # steps 1, 2, then the final (NULL step) value
    assert fixture_store.runs(kind="train").iloc[0]["status"] == "running"


def test_finish_run_records_failure(fixture_store):
    run_id = fixture_store.create_run("select", {"gamma": 5})
    fixture_store.finish_run(run_id, "failed", "ValueError: no clusters")
    run = fixture_store.runs(kind="select").iloc[0]
    assert run["status"] == "failed" and run["error"] == "ValueError: no clusters"
    assert run["finished_at"] is not None




def test_a_bad_row_refuses_its_batch_and_names_the_row(fixture_store):
    run_id = fixture_run(fixture_store)
    good = {"item_id": "capitals@1/1", "lane": "speech", "pred": 2, "correct": False}
    bad = {"item_id": "capitals@1/0", "lane": "speach", "pred": 0, "correct": True}
    with pytest.raises(StoreError, match=r"'outputs' refused row 1 \(run_id='eval-.*', item_id='capitals@1/0', "
                                         r"lane='speach', condition=''\): lane 'speach' is unknown. Fix: use one of"):
        fixture_store.add_outputs(run_id, [good, bad])
    with pytest.raises(StoreError, match="refused row 0 .* misses pred. Fix: fill run_id, item_id, lane, pred"):
        fixture_store.add_outputs(run_id, [{"item_id": "capitals@1/0", "lane": "speech", "correct": True}])
    with pytest.raises(StoreError, match=r"refused 1 row\(s\) of item\(s\) not in the store: nowhere@1/0.*"
                                         "Fix: upsert_items first"):
        fixture_store.add_outputs(run_id, [good, {**good, "item_id": "nowhere@1/0"}])
    paired = fixture_store.paired_items(run_id).set_index("item_id")
    assert paired.loc["capitals@1/1", "speech_pred"] != 2  # nothing of a refused batch was written


def test_a_run_ends_done_or_failed_with_its_error(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    with store.run("select", {"gamma": 5}) as run_id:
        assert store.runs().set_index("run_id").loc[run_id, "status"] == "running"
        store.add_note(run_id, "skipped cluster 3: no probe speech")
    with pytest.raises(ZeroDivisionError):
        with store.run("eval", {}) as failed:
            1 / 0
    runs = store.runs().set_index("run_id")
    assert runs.loc[run_id, "status"] == "done" and runs.loc[run_id, "notes"] == ["skipped cluster 3: no probe speech"]
    assert runs.loc[failed, "status"] == "failed" and runs.loc[failed, "error"] == "ZeroDivisionError: division by zero"
    with pytest.raises(KeyboardInterrupt):  # a resumed run re-enters the lifecycle under its own id
        with store.running(run_id):
            assert store.runs().set_index("run_id").loc[run_id, "status"] == "running"
            raise KeyboardInterrupt
    assert store.runs().set_index("run_id").loc[run_id, "status"] == "failed"


def test_an_invalid_row_fails_its_run_with_the_row_named(fixture_store):
    with pytest.raises(StoreError):
        with fixture_store.run("eval", {"limit": 1}) as run_id:
            fixture_store.add_outputs(run_id, [{"item_id": "capitals@1/0", "lane": "speach", "pred": 0,
                                                "correct": True}])
    run = fixture_store.runs().set_index("run_id").loc[run_id]
    assert run["status"] == "failed"
    assert run["error"].startswith("StoreError: Table 'outputs' refused row 0") and "item_id='capitals@1/0'" in run["error"]


def test_an_evaluation_names_its_training_run_and_the_first_is_its_final_evaluation(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    trained = store.create_run("train", {"preset": "nano"}, plan={"max_steps": 40})
    first = store.create_run("eval", {"model_path": "/anywhere/copied"}, parent_run=trained)
    store.create_run("eval", {"model_path": "/anywhere/copied"}, parent_run=trained)  # a later one
    store.create_run("eval", {"model_path": f"/data/runs/{trained}/final"})  # a path names no parent
    runs = store.runs().set_index("run_id")
    assert runs.loc[trained, "final_eval"] == first and runs.loc[trained, "plan"] == {"max_steps": 40}
    assert (runs["parent_run"] == trained).sum() == 2


def test_a_store_of_schema_6_gets_plans_and_evaluation_parents_from_what_it_held(tmp_path):
    """Before schema 7 a training run's config held the steps a budget gave, and an evaluation named its training
    run only by the model folder: the upgrade reads both once."""
    path = tmp_path / "old.duckdb"
    store = Store(path)
    trained = store.create_run("train", {"preset": "nano", "budget_hours": 0.1, "max_steps": 57, "stage": 1})
    evaluation = store.create_run("eval", {"model_path": f"/data/runs/{trained}/final/"})
    con = duckdb.connect(str(path))  # as salad wrote stores before schema 7
    for table, column in (("runs", "plan"), ("runs", "notes"), ("train_steps", "ctc_targets"),
                          ("train_steps", "n_ctc_targets")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.execute("UPDATE runs SET final_eval = NULL")
    con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    con.close()
    assert store.runs().set_index("run_id").loc[trained, "plan"] is None  # read-only: not upgraded yet
    store.add_note(evaluation, "upgraded")  # the next write upgrades
    runs = store.runs().set_index("run_id")
    assert runs.loc[trained, "plan"] == {"max_steps": 57, "synthetic_prob": None}
    assert runs.loc[evaluation, "parent_run"] == trained and runs.loc[evaluation, "notes"] == ["upgraded"]
    assert runs.loc[trained, "final_eval"] is None  # set by an evaluation made since, not guessed


def test_a_store_of_schema_7_reads_its_rounds_by_text_key_and_counts_their_domains(tmp_path):
    """Before schema 8 a round stored every member of the world's pool, by its index: read as text_key, and its
    domains per cluster counted from the members, read-only and after the upgrade alike."""
    path = tmp_path / "old.duckdb"
    store = Store(path)
    round_id = store.create_run("select", {"from_run": "train-x"})
    con = duckdb.connect(str(path))  # as salad wrote stores before schema 8
    con.execute("DROP TABLE selection_texts")
    con.execute("DROP TABLE selection_domains")
    con.execute("CREATE TABLE selection_texts (run_id VARCHAR NOT NULL, text_idx INTEGER NOT NULL, role VARCHAR "
                "NOT NULL, cluster INTEGER NOT NULL, domain VARCHAR, text VARCHAR, doc_id VARCHAR, seconds DOUBLE, "
                "x DOUBLE, y DOUBLE, PRIMARY KEY (run_id, text_idx, role))")
    rows = [(0, "member", 0, "capitals"), (1, "member", 0, "capitals"), (2, "member", 0, "animals"),
            (3, "member", 1, "animals"), (2, "selected", 0, "animals")]
    con.executemany("INSERT INTO selection_texts (run_id, text_idx, role, cluster, domain) VALUES (?, ?, ?, ?, ?)",
                    [(round_id, *r) for r in rows])
    con.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    con.close()
    expected = [(0, "animals", 1), (0, "capitals", 2), (1, "animals", 1)]
    for upgraded in (False, True):
        if upgraded:
            store.add_note(round_id, "upgraded")  # the next write upgrades
        assert store.selection_texts(round_id, "selected")["text_key"].tolist() == [2]
        domains = store.selection_domains(round_id)
        assert list(zip(domains["cluster"], domains["domain"], domains["size"])) == expected
    store.add_selection_texts(round_id, [{"text_key": 2**62 + 5, "role": "probe", "cluster": 1}])  # a 63-bit key
    assert store.selection_texts(round_id, "probe")["text_key"].tolist() == [2**62 + 5]


def test_bad_calls_raise_clear_errors(fixture_store, tmp_path):
    run_id = fixture_run(fixture_store)
    with pytest.raises(StoreError, match="no column.*colour.*Fix"):
        fixture_store.add_outputs(run_id, [{"item_id": "capitals@1/0", "lane": "text", "colour": "red"}])
    with pytest.raises(StoreError, match="'eval-nope' is not in the store.*create_run"):
        fixture_store.add_metrics("eval-nope", [{"task": ALL_TASKS, "metric": "gap", "value": 0.1}])
    with pytest.raises(StoreError, match="Run kind 'evaluate' is unknown"):
        fixture_store.create_run("evaluate", {})
    with pytest.raises(StoreError, match="status 'finished' is unknown"):
        fixture_store.finish_run(run_id, "finished")
    with pytest.raises(StoreError, match="already exists"):
        fixture_store.create_run("eval", {}, run_id=run_id)
    with pytest.raises(StoreError, match="list of dicts"):
        fixture_store.upsert_tasks({"task": "x", "version": "1"})
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path)


def test_a_missing_store_reads_as_empty_and_is_not_created(tmp_path):
    store = Store(tmp_path / "absent.duckdb")
    assert store.runs().empty and "model_name" in store.runs().columns
    paired = store.paired_items("eval-x")
    assert paired.empty and "speech_correct" in paired.columns
    assert store.runs().empty and not store.path.exists()


def test_store_path_honours_salad_store(monkeypatch, tmp_path):
    monkeypatch.setenv("SALAD_STORE", str(tmp_path / "elsewhere.duckdb"))
    assert Store().path == tmp_path / "elsewhere.duckdb" == store_path()
    monkeypatch.delenv("SALAD_STORE")
    monkeypatch.setenv("SALAD_DATA", str(tmp_path / "data"))
    assert Store().path == tmp_path / "data" / "salad.duckdb"


def test_keys_are_stable():
    assert item_key("capitals", "1", 3) == "capitals@1/3"
    assert audio_key("capitals@1/3", "kokoro", "af_heart", 1) == "capitals@1/3#kokoro:af_heart@1"


def _spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_reader_process_never_fails_while_a_writer_loops(fixture_store):
    run_id, writes = fixture_run(fixture_store), 20
    before = len(fixture_store.metrics(run_id))
    reader = _spawn(f"""
        import json, sys, time
        from salad_core.store import Store
        store, counts, errors = Store({str(fixture_store.path)!r}), [], []
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                counts.append(len(store.metrics({run_id!r})))
            except Exception as err:
                errors.append(repr(err))
            if counts and counts[-1] >= {before + writes}:
                break
            time.sleep(0.01)
        print(json.dumps({{"counts": counts, "errors": errors}}))
    """)
    assert reader.stdout.readline().strip() == "ready"
    for step in range(writes):
        row = {"task": "capitals", "metric": "loss", "value": 1 / (step + 1), "step": step}
        fixture_store.add_metrics(run_id, [row])
        time.sleep(0.05)  # paced like a training loop's writes, so the reader's 10-ms polls land between them
    out, err = reader.communicate(timeout=90)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == [], err
    counts = result["counts"]
    assert counts == sorted(counts) and counts[0] < counts[-1] == before + writes
    assert len(set(counts)) > 2  # the reader got in between writes, not only before and after


def test_a_held_lock_ends_in_a_clear_error(fixture_store):
    holder = _spawn(f"""
        import duckdb, time
        con = duckdb.connect({str(fixture_store.path)!r})
        print("locked", flush=True)
        time.sleep(5)
    """)
    try:
        assert holder.stdout.readline().strip() == "locked"
        store = Store(fixture_store.path, read_timeout_s=0.3)
        start = time.monotonic()
        with pytest.raises(StoreBusyError, match=r"stayed locked.*Fix: wait for the job"):
            store.runs()
        assert 0.3 <= time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait()
