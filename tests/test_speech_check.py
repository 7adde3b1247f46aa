"""`salad speech check`: a corpus's statistics as training would read it, on a JSONL manifest of tones made here
with a problem of each kind (a missing file, a wrong rate, silence, undecodable bytes, an empty transcript) and a
document stating an eval fact of the nano world; the library's counts, the command's --json and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from dashboard import source_charts
from salad_core.progress import Progress, read_progress
from salad_core.speech_data.sources import SpeechSource
from salad_core.train.speech_check import check_lines, check_speech
from salad_core.world import preset_world

RATE = 16000
KEPT_S = 1.0 + 0.5 + 2.0 + 1.0  # a0, a1, b0, c1
DROPPED_S = 0.75 + 1.5  # a2's stated duration (its file is missing), the leaking document's audio


def tone(path, seconds: float, rate: int = RATE, peak: float = 0.3) -> str:
    t = np.arange(int(round(seconds * rate))) / rate
    sf.write(path, peak * np.sin(2 * np.pi * 330 * t), rate)
    return path.name


@pytest.fixture(scope="module")
def world():
    return preset_world("nano", lm=False, progress=False)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, world):
    """Five documents of nine readable utterances and one unreadable row (see the module's docstring)."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    fact = world.eval_facts()["nano-capitals"][0]
    rows = [("a0", "a", tone(folder / "a0.wav", 1.0), "the river runs past the old mill"),
            ("a1", "a", tone(folder / "a1.wav", 0.5), "and turns the wheel all day"),
            ("a2", "a", "missing.wav", "no one heard this part"),
            ("b0", "b", tone(folder / "b0.wav", 2.0), "a long walk through the quiet hills"),
            ("b1", "b", tone(folder / "slow.wav", 1.0, rate=8000), "sung at the wrong rate"),
            ("b2", "b", tone(folder / "quiet.wav", 0.5, peak=0.0), "said too softly to hear"),
            ("c0", "c", tone(folder / "c0.wav", 1.0), ""),
            ("c1", "c", tone(folder / "c1.wav", 1.0), "the last bus leaves at nine"),
            ("leak", "leak", tone(folder / "leak.wav", 1.5), f"{fact['question']} it is {fact['answer']} ."),
            ("d0", "d", "broken.wav", "this file does not decode")]
    lines = [{"id": i, "doc": doc, "pos": k, "audio": audio, "text": text}
             for k, (i, doc, audio, text) in enumerate(rows)]
    lines[2]["duration"] = 0.75
    lines[4]["sampling_rate"] = RATE  # the file is at 8 kHz
    path = folder / "corpus.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_every_count_of_a_corpus_as_training_reads_it(world, manifest, tmp_path):
    with Progress(None, "check", file=tmp_path / "progress.json") as progress:
        result = check_speech([SpeechSource.parse(str(manifest))], world, progress=progress)
    (found,) = result["sources"]
    assert found["kind"] == "jsonl" and found["location"] == str(manifest) and found["digest"]
    assert found["documents"] == 5 and found["utterances"] == 9 and not found["cut_at_limit"]
    assert found["dropped"] == {"documents stating an evaluation fact": 1, "missing audio file": 1,
                                "silent audio": 1, "undecodable audio": 1, "wrong sample rate": 1}
    assert found["hours"] * 3600 == pytest.approx(KEPT_S)
    assert found["hours_dropped"] * 3600 == pytest.approx(DROPPED_S)
    assert found["bad_rows"] == 1 and found["bad_row_examples"] == [
        f"speech source {manifest}, line 7: the transcript is empty. Fix: give the row its transcript, or drop the row"]
    assert found["documents_with_nothing_left"] == 2  # the leaking document, and d (its one file does not decode)
    fact = world.eval_facts()["nano-capitals"][0]  # the sentence states it (and its converse: Dhaka's country)
    assert found["documents_left_out"] == 1 and fact["key"] in found["fact_examples"]
    assert found["facts_stated"] == sum(r["leaked"] for r in result["audit"]) >= 1 and result["world"] == "nano"
    assert any("utterance a2: no audio file" in e for e in found["drop_examples"])
    assert read_progress(tmp_path / "progress.json")["done"] == 9
    shown = source_charts.source_table(result)  # the Training page's table of it
    assert shown["utterances dropped"].tolist() == [5] and shown["rows not read"].tolist() == [1]
    text = "\n".join(check_lines(result))
    assert f"speech source {manifest} (jsonl" in text and "1 documents left out of training" in text
    assert "read the first" not in text and "not checked: the transcripts against the ASR" in text


def test_a_limit_reads_the_first_utterances_only(world, manifest):
    (found,) = check_speech([SpeechSource.parse(str(manifest))], world, limit=4)["sources"]
    assert found["utterances"] == 4 and found["documents"] == 2 and found["cut_at_limit"]  # a0-a2, b0
    assert found["dropped"] == {"missing audio file": 1} and found["bad_rows"] == 0
    assert found["hours"] * 3600 == pytest.approx(3.5) and found["facts_stated"] == 0


def salad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "salad_core.cli", *args], capture_output=True, text=True,
                          env=os.environ.copy())


def test_the_command_prints_the_same_check_as_json(world, manifest):
    done = salad("speech", "check", "--speech", str(manifest), "--preset", "nano", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    expected = check_speech([SpeechSource.parse(str(manifest))], world)
    assert result["sources"] == json.loads(json.dumps(expected["sources"]))
    assert result["preset"] == "nano" and result["limit"] is None and result["audit"] == expected["audit"]
    assert "checking" in done.stderr  # its progress bar


def test_the_command_says_it_read_only_the_limit(manifest):
    done = salad("speech", "check", "--speech", f"{manifest}:2", "--preset", "nano", "--limit", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read the first 4 utterances of each source only (--limit)" in done.stdout
    assert "4 utterances (cut at the limit)" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--speech", "nowhere.jsonl"], "there is no file or folder"),
    (["--speech", "{manifest}", "--limit", "0"], "--limit 0: read at least one utterance"),
    (["--speech", "{manifest}", "--speech-columns", "text"], "is not FIELD=COLUMN"),
])
def test_a_mistake_is_one_line_and_exit_code_2(manifest, args, message):
    done = salad("speech", "check", "--preset", "nano", *[a.format(manifest=manifest) for a in args])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr
