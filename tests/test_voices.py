"""Robustness to the voice: condition parsing, noise at a measured SNR, a two-condition sweep end to end on the nano
preset (checked against a single-voice run of the same items), older stores, the chart and the Gap page section."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import charts
from salad_core.audio import load_audio
from salad_core.eval import runner
from salad_core.eval.config import EvalConfig
from salad_core.eval.runner import run_eval
from salad_core.eval.vocabulary import ALL_TASKS, LANES
from salad_core.eval.voices import Condition, check_conditions, gap_table, parse_conditions, render, sweep_command
from salad_core.paths import REPO_ROOT
from salad_core.schema import SCHEMA_VERSION, TABLES, TableSpec, paired_items_view
from salad_core.store import Store
from salad_core.tasks import Item
from salad_core.tts import TTSError, VoiceSpec
from tests.conftest import fixture_run

FIXTURES = Path(__file__).parent / "fixtures" / "speech"
NOISY = "espeak:en-us@1.2+noise10"
SKY = Item("mine", "sky", "test", "What colour is a clear daytime sky?", ("blue", "green"), 0, "general")


# -- conditions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, voice, snr, key", [
    ("flite:slt", VoiceSpec("flite", "slt", 1.0), None, "flite:slt@1"),
    ("espeak:en-us+f3@1.2", VoiceSpec("espeak", "en-us+f3", 1.2), None, "espeak:en-us+f3@1.2"),
    (" flite:slt+noise10 ", VoiceSpec("flite", "slt", 1.0), 10.0, "flite:slt@1+noise10"),
    ("kokoro:af+bf@0.3@0.9+noise-2.5", VoiceSpec("kokoro", "af+bf@0.3", 0.9), -2.5, "kokoro:af+bf@0.3@0.9+noise-2.5"),
    ("recorded", None, None, "recorded"),
    ("recorded+noise5", None, 5.0, "recorded+noise5"),
])
def test_conditions_parse_and_print_back(text, voice, snr, key):
    condition = Condition.parse(text)
    assert (condition.voice, condition.snr_db, condition.key) == (voice, snr, key)
    assert Condition.parse(key) == condition


@pytest.mark.parametrize("text, message", [
    ("slt", "is not engine:voice[@speed][+noise<SNR dB>]"),
    ("recorded@1.2", "is not engine:voice"),
    ("flite:slt+noise", "'+noise' needs the SNR in dB"),
    ("flite:slt+noiseloud", "'+noise' needs the SNR in dB"),
    ("espeak:en-us@3", "speed 3.0 is outside [0.5, 2.0]"),
])
def test_malformed_conditions_are_named_with_the_fix(text, message):
    with pytest.raises(ValueError, match="Fix:") as err:
        Condition.parse(text)
    assert f"'{text}'" in str(err.value) and message in str(err.value)


def test_a_sweep_lists_each_condition_once():
    assert [c.key for c in parse_conditions(["flite:slt", "recorded"])] == ["flite:slt@1", "recorded"]
    with pytest.raises(ValueError, match="lists flite:slt@1 twice"):
        parse_conditions(["flite:slt", "flite:slt@1"])
    with pytest.raises(ValueError, match="--voice espeak:en-us@1 and --voices"):
        EvalConfig(voice="espeak:en-us@1", voices=["flite:slt"])
    config = EvalConfig(voices=["flite:slt+noise5", "flite:awb"])
    assert config.voices == ["flite:slt@1+noise5", "flite:awb@1"]
    assert config.voice == config.reference == "flite:slt@1+noise5"


def test_an_unknown_voice_fails_naming_it_and_the_voices_there_are():
    with pytest.raises(TTSError) as err:
        check_conditions([Condition.parse("flite:slt"), Condition.parse("flite:nobody+noise5")], [SKY])
    text = str(err.value)
    assert "'flite:nobody@1+noise5'" in text and "no voice 'nobody'" in text
    assert "slt" in text and "salad voices" in text
    with pytest.raises(ValueError, match="none of the 1 items has a recording"):
        check_conditions([Condition.parse("recorded")], [SKY])


def test_an_unknown_voice_stops_salad_eval_before_any_model_loads(tmp_path, capsys):
    from salad_core.cli import main

    db = tmp_path / "store.duckdb"
    assert main(["eval", "--tasks", "nano-animals", "--limit", "1", "--voices", "flite:slt,flite:nobody",
                 "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "flite:nobody@1" in err and "Voices: kal, kal16, awb, rms, slt" in err
    assert Store(db).runs().empty  # no run was started


# -- audio per condition ---------------------------------------------------------------------------------------


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noise_is_added_at_the_asked_snr(snr):
    clean, clean_info = render([SKY], Condition.parse("flite:slt"))[SKY.item_id]
    noisy, info = render([SKY], Condition.parse(f"flite:slt+noise{snr:g}"))[SKY.item_id]
    assert abs(measured_snr_db(clean, noisy) - snr) < 0.5
    assert info["snr_db"] == snr and "snr_db" not in clean_info and info["path"] != clean_info["path"]
    np.testing.assert_allclose(load_audio(info["path"]), noisy, atol=2e-4)  # the file the dashboard plays
    again, _ = render([SKY], Condition.parse(f"flite:slt+noise{snr:g}"))[SKY.item_id]
    np.testing.assert_array_equal(again, noisy)  # seeded per item: reruns hear the same noise


def test_recorded_plays_the_items_own_recordings_and_leaves_out_the_rest():
    robot = Item("mine", "robot", "test", "go forward ten meters", ("a command", "a poem"), 0, "general",
                 audio=str(FIXTURES / "goforward.wav"))
    heard = render([robot, SKY], Condition.parse("recorded"))
    assert list(heard) == [robot.item_id]
    audio, info = heard[robot.item_id]
    assert (info["engine"], info["voice"], info["path"]) == ("recording", "manifest", robot.audio)
    np.testing.assert_array_equal(audio, load_audio(robot.audio))
    spoken = render([robot, SKY], Condition.parse("flite:slt"))  # a TTS condition speaks recorded items too
    assert {i: v[1]["engine"] for i, v in spoken.items()} == {robot.item_id: "flite", SKY.item_id: "flite"}


def test_a_failed_synthesis_holds_its_error():
    blank = Item("mine", "blank", "test", "   ", ("a", "b"), 0, "general")
    heard = render([blank, SKY], Condition.parse("flite:slt"))
    assert isinstance(heard[blank.item_id], TTSError) and isinstance(heard[SKY.item_id], tuple)


# -- a sweep end to end ----------------------------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two conditions on 4 nano-animals items, one synthesis failing in the noisy one; and a single-voice run of
    the same items in the first condition's voice, for comparison."""
    store = Store(tmp_path_factory.mktemp("sweep") / "store.duckdb")
    common = dict(preset="nano", tasks=["nano-animals"], limit=4, probe_limit=1, asr="whisper-tiny.en")
    real_render, failed = runner.render, []

    def one_fails(items, condition):
        heard = real_render(items, condition)
        if condition.snr_db is not None:
            failed.append(items[0].item_id)
            heard[items[0].item_id] = TTSError("espeak: synthesis failed (injected by the test)")
        return heard

    records = Records()
    logging.getLogger("salad_core.eval.runner").addHandler(records)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(runner, "render", one_fails)
            result = run_eval(EvalConfig(**common, voices=["flite:slt", NOISY]), store)
    finally:
        logging.getLogger("salad_core.eval.runner").removeHandler(records)
    single = run_eval(EvalConfig(**common, voice="flite:slt@1"), store)
    return store, result, single, failed[0], records.messages


def test_one_result_set_per_condition_and_the_text_lanes_once(sweep):
    store, result, _, _, _ = sweep
    counts = store.query("SELECT lane, condition, count(*) AS n FROM outputs WHERE run_id = ? GROUP BY ALL",
                         [result["run_id"]]).set_index(["lane", "condition"])["n"].to_dict()
    assert counts == {("base_text", ""): 4, ("text", ""): 4, ("speech", "flite:slt@1"): 4,
                      ("cascade", "flite:slt@1"): 4, ("noaudio", "flite:slt@1"): 4, ("speech", NOISY): 3,
                      ("cascade", NOISY): 3, ("noaudio", NOISY): 3}  # silence as long as each condition's clip
    options = store.query("SELECT condition, count(*) AS n FROM predictions WHERE run_id = ? AND lane = 'speech' "
                          "GROUP BY ALL", [result["run_id"]]).set_index("condition")["n"].to_dict()
    k = len(store.paired_items(result["run_id"])["choices"][0])  # options per item
    assert options == {"flite:slt@1": 4 * k, NOISY: 3 * k}
    assert [c["condition"] for c in result["conditions"]] == ["flite:slt@1", NOISY]
    assert [c["tasks"]["nano-animals"]["n"] for c in result["conditions"]] == [4, 3]


def test_the_sweep_matches_a_single_voice_run(sweep):
    _, result, single, _, _ = sweep
    sweep_task, single_task = result["tasks"]["nano-animals"], single["tasks"]["nano-animals"]
    for key in ("text_acc_base", "text_acc", "forgetting", "speech_acc", "cascade_acc", "gap", "misalignment",
                "noaudio_acc", "audio_gain"):
        assert sweep_task[key] == pytest.approx(single_task[key]), key
    assert sweep_task["ci"] == single_task["ci"]  # same items, same seed: the same bootstrap
    reference = result["conditions"][0]["tasks"]["nano-animals"]
    assert reference["gap"] == pytest.approx(single_task["gap"]) and reference["ci"]["gap"] == single_task["ci"]["gap"]
    assert result["M"] == pytest.approx(single["M"]) and single["conditions"] == []


def test_each_conditions_gap_pairs_its_own_items(sweep):
    store, result, _, _, _ = sweep
    outputs = store.query("SELECT item_id, lane, condition, correct_norm FROM outputs WHERE run_id = ?",
                          [result["run_id"]])
    base = outputs[outputs["lane"] == "base_text"].set_index("item_id")["correct_norm"]
    for entry in result["conditions"]:
        speech = outputs[(outputs["lane"] == "speech") & (outputs["condition"] == entry["condition"])]
        expected = base.loc[speech["item_id"]].mean() - speech["correct_norm"].mean()
        row = entry["tasks"]["nano-animals"]
        assert row["gap"] == pytest.approx(expected) and row["ci"]["gap"][0] <= row["gap"] <= row["ci"]["gap"][1]


def test_the_failed_item_is_skipped_in_its_condition_only(sweep):
    store, result, _, failed, messages = sweep
    assert any(failed in m and NOISY in m and "injected" in m for m in messages)
    heard = store.query("SELECT condition FROM outputs WHERE run_id = ? AND item_id LIKE ? AND lane = 'speech'",
                        [result["run_id"], "%" + failed.split(":", 1)[1]])
    assert list(heard["condition"]) == ["flite:slt@1"]
    notes = store.runs().set_index("run_id").loc[result["run_id"], "notes"]  # the run says what it left out
    assert len(notes) == 1 and failed in notes[0] and NOISY in notes[0] and "injected" in notes[0]


def test_noisy_renderings_are_stored_apart(sweep):
    store, result, _, _, _ = sweep
    used = store.query("SELECT a.* FROM outputs o JOIN item_audio a USING (audio_id) WHERE o.run_id = ? "
                       "AND o.lane = 'speech' AND o.condition = ?", [result["run_id"], NOISY])
    assert len(used) == 3 and (used["snr_db"] == 10).all() and used["audio_id"].str.endswith("@1.2+noise10").all()
    assert all(Path(p).is_file() and "noisy" in p for p in used["path"])


def test_the_headline_is_the_reference_voice(sweep):
    store, result, _, _, _ = sweep
    metrics = store.metrics(result["run_id"])
    assert not metrics.duplicated(["task", "metric"]).any()
    speech = metrics.set_index(["task", "metric"]).loc[("nano-animals", "speech_acc")]
    assert speech["condition"] == "flite:slt@1"
    assert speech["value"] == pytest.approx(result["tasks"]["nano-animals"]["speech_acc"])
    paired = store.paired_items(result["run_id"])
    assert len(paired) == 4 and (paired["tts_engine"] == "flite").all() and paired["speech_correct"].notna().all()
    table = gap_table(store.condition_metrics(result["run_id"]), [NOISY, "flite:slt@1"])
    assert list(table["condition"]) == [NOISY, NOISY, "flite:slt@1", "flite:slt@1"]
    assert list(table["task"]) == ["nano-animals", ALL_TASKS] * 2


def test_the_text_report_lists_the_conditions(sweep):
    from salad_core.console import format_eval

    text = format_eval(sweep[1])
    assert "voice condition" in text and NOISY in text and "flite:slt@1" in text


# -- older stores ----------------------------------------------------------------------------------------------


def schema3(spec: TableSpec) -> TableSpec:
    """The table as schema 3 had it: without the columns that versions 4 (the voice condition) and 5 (lineage) added."""
    added = {"condition", "snr_db", "parent_run", "final_eval"}
    return TableSpec(spec.name, {c: t for c, t in spec.columns.items() if c not in added},
                     tuple(k for k in spec.key if k not in added), tuple(c for c in spec.required if c not in added),
                     spec.primary_key)


def test_a_schema_3_store_reads_as_before_and_upgrades_at_its_next_write(fixture_store, tmp_path):
    old = tmp_path / "old.duckdb"
    run_id = fixture_run(fixture_store)
    with duckdb.connect(str(old)) as con:
        con.execute(f"ATTACH '{fixture_store.path}' AS src (READ_ONLY)")
        con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        for spec in TABLES.values():
            v3 = schema3(spec)
            con.execute(v3.ddl())
            con.execute(f"INSERT INTO {spec.name} SELECT {', '.join(v3.columns)} FROM src.{spec.name}")
        con.execute(re.sub(r" JOIN runs r USING \(run_id\) WHERE .*\n", "\n", paired_items_view()))  # schema 3's
    store = Store(old)
    before = fixture_store.metrics(run_id)
    pd.testing.assert_frame_equal(store.metrics(run_id), before)  # read-only: no condition column stored yet
    assert len(store.paired_items(run_id)) == 12 and len(store.option_scores(run_id, "capitals@1/0")) == 4 * len(LANES)
    store.add_metrics(run_id, [{"task": "capitals", "metric": "speech_acc", "value": 0.5, "condition": NOISY}])
    with duckdb.connect(str(old), read_only=True) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        assert con.execute("SELECT count(*) FROM outputs WHERE condition = ''").fetchone()[0] == 12 * len(LANES)
    pd.testing.assert_frame_equal(store.metrics(run_id), before)
    assert list(store.condition_metrics(run_id)["condition"]) == [NOISY]


# -- the chart and the page ------------------------------------------------------------------------------------


def condition_rows(run_id: str | None = None) -> list[dict]:
    rows = []
    for condition, gap in (("flite:slt@1", 0.10), (NOISY, 0.30)):
        for task, shift in (("capitals", 0.0), (ALL_TASKS, 0.05)):
            for metric, value in (("gap", gap + shift), ("speech_acc", 0.6 - gap - shift)):
                rows.append({"run_id": run_id, "task": task, "metric": metric, "value": value, "ci_low": value - 0.1,
                             "ci_high": value + 0.2, "n": 6, "step": None, "condition": condition})
    return rows


def test_gap_table_and_chart():
    table = gap_table(pd.DataFrame(condition_rows()), [NOISY, "flite:slt@1"])
    assert list(table.columns) == ["condition", "task", "n", "gap", "gap_ci_low", "gap_ci_high", "speech_acc",
                                   "speech_acc_ci_low", "speech_acc_ci_high"]
    assert list(table["condition"]) == [NOISY, NOISY, "flite:slt@1", "flite:slt@1"]
    fig = charts.gap_by_condition_figure(table)
    assert [t.name for t in fig.data] == ["capitals", charts.ALL_LABEL]
    capitals = fig.data[0]
    assert list(capitals.x) == [NOISY, "flite:slt@1"] and list(capitals.y) == pytest.approx([30.0, 10.0])
    assert list(capitals.error_y.array) == pytest.approx([20.0, 20.0])
    assert list(capitals.error_y.arrayminus) == pytest.approx([10.0, 10.0])
    assert list(fig.data[1].y) == pytest.approx([35.0, 15.0])
    assert fig.layout.yaxis.title.text == "gap, points (accuracy × 100)"
    assert fig.layout.xaxis.title.text == "voice condition" and fig.layout.legend.title.text == "task"
    assert gap_table(pd.DataFrame(condition_rows()).iloc[:0]).empty


def test_sweep_command_repeats_the_run():
    command = sweep_command({"preset": "nano", "tasks": ["nano-animals"], "limit": 4, "manifest": "my items.jsonl",
                             "lanes": ["base_text", "speech"]}, "/data/s.duckdb")
    assert command == ("salad eval --preset nano --limit 4 --manifest 'my items.jsonl' --tasks nano-animals "
                       "--lanes base_text,speech "
                       "--voices flite:slt,flite:awb,espeak:en-us@1.2,flite:slt+noise10,recorded --db /data/s.duckdb")


def gap_page(store: Store) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=30)
    at.session_state["store_path"] = str(store.path)
    return at.run()


def test_page_says_how_to_sweep_a_single_voice_run(isolated_app, fixture_store):
    at = gap_page(fixture_store)
    assert not at.exception
    assert "Robustness to the voice" in [s.value for s in at.subheader]
    command = at.code[0].value
    assert command.startswith("salad eval --preset smol --limit 6 --voices flite:slt,")
    assert command.endswith(f"--db {fixture_store.path}")
    assert not {"gap_conditions_csv", "gap_conditions_table_csv"} & {d.key for d in at.get("download_button")}


def test_page_draws_the_gap_per_condition(isolated_app, fixture_store):
    run_id = fixture_run(fixture_store)
    fixture_store.add_metrics(run_id, condition_rows())
    at = gap_page(fixture_store)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3 and not at.code
    shown = next(d.value for d in at.dataframe if "condition" in d.value)
    assert list(shown["condition"]) == ["espeak:en-us@1.2+noise10"] * 2 + ["flite:slt@1"] * 2
    assert {"gap_conditions_csv", "gap_conditions_table_csv"} <= {d.key for d in at.get("download_button")}
    assert {m.label: m.value for m in at.metric}["gap"] == "+50.0 pts"  # the headline is unchanged


def test_salad_eval_json_carries_the_conditions(tmp_path):
    import json
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "salad_core.cli", "eval", "--json", "--preset", "nano", "--tasks", "nano-animals",
           "--limit", "2", "--probe-limit", "0", "--lanes", "base_text,text,speech",
           "--voices", "flite:slt,flite:slt+noise5", "--db", str(tmp_path / "store.duckdb")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # exactly one object on stdout
    assert result["voice"] == "flite:slt@1"
    assert [c["condition"] for c in result["conditions"]] == ["flite:slt@1", "flite:slt@1+noise5"]
    for entry in result["conditions"]:
        row = entry["tasks"]["nano-animals"]
        assert row["n"] == 2 and row["gap"] == pytest.approx(result["tasks"]["nano-animals"]["text_acc_base"]
                                                              - row["speech_acc"])
        assert row["ci"]["gap"][0] <= row["gap"] <= row["ci"]["gap"][1] and row["cascade_acc"] is None
