"""Checking speech sources from the Training page: the check's tables and charts (pure, on a hand-made result of
`salad speech check --json`), the panel's arguments and form fields, and the page headless (AppTest): the sources and
the check button start the job, a finished check's result is read from its job and shown, the form trains on the
sources. Jobs are recorded (`started`) or written as a finished job's folder; nothing is computed here."""

from __future__ import annotations

import json

import pytest

from dashboard import source_charts, source_check
from salad_core import jobs
from salad_core.errors import InputError
from salad_core.train.config import TrainConfig
from tests.test_training_pages import TRAINING, cli_config, open_page, submit

pytestmark = pytest.mark.usefixtures("isolated_app")


def found(spec: str, **counts) -> dict:
    """One source of a check's result, as `check_speech` writes it."""
    base = {"spec": spec, "kind": "jsonl", "location": f"/data/{spec}", "weight": 1.0, "columns": None,
            "digest": "ab12", "digest_of": "manifest", "documents": 5, "utterances": 9, "hours": 0.5,
            "hours_dropped": 0.25, "dropped": {}, "drop_examples": [], "bad_rows": 0, "bad_row_examples": [],
            "documents_with_nothing_left": 0, "facts_stated": 0, "fact_examples": [], "documents_left_out": 0,
            "cut_at_limit": False}
    return {**base, **counts}


RESULT = {"world": "nano", "preset": "nano", "limit": 100, "not_checked": "the transcripts against the ASR",
          "sources": [found("a.jsonl", dropped={"missing audio file": 2, "documents stating an evaluation fact": 1},
                            drop_examples=["utterance a2: no audio file /data/missing.wav. Fix: correct the path."],
                            bad_rows=1, bad_row_examples=["speech source a.jsonl, line 7: the transcript is empty."],
                            documents_with_nothing_left=1, facts_stated=2, documents_left_out=1),
                      found("b.jsonl", hours=1.5, hours_dropped=0.0, dropped={"silent audio": 3})],
          "audit": [{"task": t, "source": s, "eval_facts": 10, "examples": [],
                     "leaked": 2 if (t, s) == ("nano-capitals", "a.jsonl") else 0}
                    for t in ("nano-capitals", "nano-animals") for s in ("a.jsonl", "b.jsonl")],
          "audit_table": "..."}
ARGS = ["speech", "check", "--speech", "a.jsonl", "--speech", "b.jsonl", "--preset", "mini", "--limit", "1000",
        "--json"]


# ---------------------------------------------------------------------------------------------------------------
# Tables and charts


def test_the_source_table_counts_each_source():
    table = source_charts.source_table(RESULT)
    assert table["source"].tolist() == ["a.jsonl", "b.jsonl"]
    assert table["utterances dropped"].tolist() == [3, 3] and table["rows not read"].tolist() == [1, 0]
    assert table["hours kept"].tolist() == [0.5, 1.5] and table["documents left out (leak audit)"].tolist() == [1, 0]
    assert source_charts.source_table({"sources": []}).empty


def test_the_hours_chart_stacks_kept_and_dropped_per_source():
    fig = source_charts.hours_bars(RESULT)
    assert [t.name for t in fig.data] == ["kept", "dropped"] and fig.layout.barmode == "stack"
    assert list(fig.data[0].x) == ["a.jsonl", "b.jsonl"]
    assert list(fig.data[0].y) == [0.5, 1.5] and list(fig.data[1].y) == [0.25, 0.0]
    assert fig.layout.yaxis.title.text == "audio (hours)" and fig.layout.xaxis.title.text == "source"


def test_the_drop_chart_counts_each_reason_per_source():
    fig = source_charts.drop_bars(RESULT)
    reasons = ["documents stating an evaluation fact", "missing audio file", source_charts.BAD_ROW, "silent audio"]
    assert [t.name for t in fig.data] == ["a.jsonl", "b.jsonl"]
    assert list(fig.data[0].x) == reasons == list(fig.data[1].x)
    assert list(fig.data[0].y) == [1, 2, 1, 0] and list(fig.data[1].y) == [0, 0, 0, 3]
    assert fig.layout.legend.title.text == "source" and "count" in fig.layout.yaxis.title.text


def test_the_problems_are_quoted_per_source():
    problems = source_charts.problem_table(RESULT)
    assert problems["problem"].tolist() == [source_charts.BAD_ROW, "utterance dropped"]
    assert problems["message"].iloc[1].startswith("utterance a2: no audio file") and set(problems["source"]) == {
        "a.jsonl"}


# ---------------------------------------------------------------------------------------------------------------
# The panel's arguments, and the form's fields


def test_the_sources_box_gives_the_checks_arguments_and_the_forms_fields():
    text, columns = "  a.jsonl\n\nhf:org/name:clean@train.100:0.5 \n", "text=sentence, doc=chapter"
    assert source_check.check_args(text, columns, "nano", 0) == [
        "speech", "check", "--speech", "a.jsonl", "--speech", "hf:org/name:clean@train.100:0.5", "--speech-columns",
        "text=sentence,doc=chapter", "--preset", "nano", "--json"]
    assert source_check.check_args(text, "", "mini", 50)[-4:] == ["mini", "--limit", "50", "--json"]
    values = source_check.form_values(text, columns)
    assert values == {"speech": ["a.jsonl", "hf:org/name:clean@train.100:0.5"],
                      "speech_columns": ["text=sentence", "doc=chapter"]}
    assert source_check.form_values("", " ") == {"speech": None, "speech_columns": None}
    with pytest.raises(InputError, match="No speech source named"):
        source_check.check_args("\n", "", "mini", 0)
    with pytest.raises(InputError, match="holds a comma"):
        source_check.form_values("a.jsonl,b.jsonl", "")


def test_a_config_with_sources_round_trips_through_the_command_line():
    config = TrainConfig.for_preset("mini", **source_check.form_values("a.jsonl\nhf:org/name:0.5", "text=t,doc=d"))
    argv = config.to_argv()
    assert argv[argv.index("--speech") + 1] == "a.jsonl,hf:org/name:0.5"
    assert cli_config(["train", *argv]) == config


# ---------------------------------------------------------------------------------------------------------------
# The page


def finished_check(args: list[str], result: dict) -> str:
    """A check job's folder as the supervisor leaves it when the command printed `result` and exited 0."""
    job_id = f"{source_check.JOB_NAME}-20260101-000000-ab12"
    folder = jobs.jobs_dir() / job_id
    folder.mkdir()
    meta = {"job_id": job_id, "name": source_check.JOB_NAME, "args": args, "module": jobs.DEFAULT_MODULE,
            "env": {}, "pid": None, "started_at": "2026-01-01T00:00:00.000000Z"}
    (folder / "job.json").write_text(json.dumps(meta))
    (folder / "stdout.log").write_text(json.dumps(result) + "\n")
    (folder / "exit.json").write_text(json.dumps({"exit_code": 0, "finished_at": "2026-01-01T00:01:00.000000Z"}))
    return job_id


def test_a_finished_jobs_json_is_its_output():
    job_id = finished_check(ARGS, RESULT)
    assert jobs.job_output(job_id) == RESULT
    (jobs.jobs_dir() / job_id / "exit.json").unlink()  # as while it runs (pid None: being started)
    assert jobs.job_status(job_id)["state"] == "running" and jobs.job_output(job_id) is None


def test_the_check_button_starts_the_check_of_the_sources_named(tmp_path, started):
    at = open_page(TRAINING, tmp_path / "store.duckdb")
    at.selectbox(key="train_preset").select("nano").run()
    at.text_area(key=source_check.SOURCES_KEY).input("a.jsonl\nhf:org/name:0.5").run()
    at.text_input(key=source_check.COLUMNS_KEY).input("text=sentence").run()
    at.button(key="train_check").click().run()
    assert not at.exception
    assert started == [(["speech", "check", "--speech", "a.jsonl", "--speech", "hf:org/name:0.5", "--speech-columns",
                         "text=sentence", "--preset", "nano", "--limit", "1000", "--json"], "speech-check")]


def test_checking_no_source_says_what_to_write(tmp_path, started):
    at = open_page(TRAINING, tmp_path / "store.duckdb")
    at.button(key="train_check").click().run()
    assert not started and "No speech source named" in at.error[0].value


def test_a_finished_check_shows_its_table_and_charts(tmp_path):
    finished_check(ARGS, RESULT)
    at = open_page(TRAINING, tmp_path / "store.duckdb")
    assert not at.exception
    table = next(f.value for f in at.dataframe if "hours kept" in f.value.columns)
    assert table["source"].tolist() == ["a.jsonl", "b.jsonl"] and table["utterances dropped"].tolist() == [3, 3]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [c["layout"]["title"]["text"] for c in charts]
    assert titles == ["Audio each source gives training", "Left out, and why"]
    assert "only the first 100 utterances of each source were read" in " ".join(m.value for m in at.markdown)
    audit = next(f.value for f in at.dataframe if "task" in f.value.columns and "a.jsonl" in f.value.columns)
    assert audit.set_index("task").loc["nano-capitals", "a.jsonl"] == 2
    assert any("have changed since" in c.value for c in at.caption)  # the box is empty: not what was checked
    at.text_area(key=source_check.SOURCES_KEY).input("a.jsonl\nb.jsonl").run()
    assert not any("have changed since" in c.value for c in at.caption)


def test_the_form_trains_on_the_sources_named(tmp_path, started):
    at = open_page(TRAINING, tmp_path / "store.duckdb")
    at.text_area(key=source_check.SOURCES_KEY).input("a.jsonl\nhf:org/name:0.5").run()
    at.text_input(key=source_check.COLUMNS_KEY).input("text=sentence,doc=chapter").run()
    at = submit(at)
    assert not at.exception
    args, name = started[0]
    assert name == "train" and cli_config(args) == TrainConfig.for_preset(
        "mini", speech=["a.jsonl", "hf:org/name:0.5"], speech_columns=["text=sentence", "doc=chapter"])


def test_a_running_check_shows_its_progress(tmp_path):
    job_id = finished_check(ARGS, RESULT)
    folder = jobs.jobs_dir() / job_id
    (folder / "exit.json").unlink()  # still running
    (folder / "progress.json").write_text(json.dumps({"stage": "checking a.jsonl", "done": 40, "total": 1000,
                                                      "fraction": 0.04, "eta_s": 30.0, "message": "7 documents"}))
    at = open_page(TRAINING, tmp_path / "store.duckdb")
    assert not at.exception and not at.get("plotly_chart")
    assert at.get("progress")[0].proto.text.startswith("checking a.jsonl: 40 / 1000 (4 %)")
    assert at.button(key=f"train_check_stop_{job_id}")


def test_a_failed_check_shows_its_error(tmp_path):
    job_id = finished_check(ARGS, RESULT)
    folder = jobs.jobs_dir() / job_id
    (folder / "exit.json").write_text(json.dumps({"exit_code": 2, "finished_at": "2026-01-01T00:01:00Z"}))
    (folder / "stderr.log").write_text("salad speech: error: --speech 'a.jsonl': there is no file or folder a.jsonl\n")
    at = open_page(TRAINING, tmp_path / "store.duckdb")
    assert not at.exception
    assert "there is no file or folder a.jsonl" in at.error[0].value and not at.get("plotly_chart")
