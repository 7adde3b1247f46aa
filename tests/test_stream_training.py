"""Stage I on a user's corpus (`salad train --speech`), end to end on the nano world's speech written out as a
`datasets` folder: a run trains and records its sources and what it dropped; one killed with SIGKILL resumes to the
same losses; a JSONL manifest with bad rows trains on the rest; a source that is not there is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

from salad_core.store import Store
from tests.test_trainer import checkpointed, finish, kill_when, salad

STEPS = 8
COMMON = ["--preset", "nano", "--max-steps", str(STEPS), "--batch-size", "2", "--warmup-steps", "2", "--eval-every",
          "4", "--eval-items", "1", "--ckpt-every", "2", "--no-final-eval", "--json", "--word-timings", "none"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The nano world's natural speech as a user's corpus (salad world export --speech-dataset)."""
    out = tmp_path_factory.mktemp("export")
    done = subprocess.run([sys.executable, "-m", "salad_core.cli", "world", "export", "--corpus", "nano", "--out",
                           str(out), "--speech-dataset", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return f"hf:{out / 'speech'}"


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    db = str(root / "store.duckdb")
    args = [*COMMON, "--speech", corpus, "--data-workers", "1", "--db", db]
    whole = salad(args, root / "whole")
    killed = kill_when(salad(args, root / "killed"), root / "killed", checkpointed(4))
    resumed = salad(["--resume", killed, "--db", db, "--no-final-eval", "--json"], root / "killed")
    return finish(whole), finish(resumed), Store(db), root


def test_a_streamed_run_trains_and_records_its_sources(runs, corpus):
    whole, _, store, root = runs
    run = store.runs().set_index("run_id").loc[whole["run_id"]]
    assert run["status"] == "done" and run["config"]["speech"] == [corpus]
    (source,) = run["plan"]["speech"]
    assert source["kind"] == "hf" and source["digest"] and source["columns"]["text"] == "text"
    (read,) = whole["speech_read"]
    assert read["documents"] > 0 and read["utterances"] > read["documents"] and read["dropped"] == {}
    assert any(note.startswith(f"speech source {corpus}:") for note in run["notes"])
    losses = store.train_steps(whole["run_id"])["loss"]
    assert len(losses) == STEPS and losses.notna().all()


def test_a_streamed_run_killed_mid_way_resumes_to_the_same_losses(runs):
    whole, resumed, store, _ = runs
    a = store.train_steps(whole["run_id"]).set_index("step")
    b = store.train_steps(resumed["run_id"]).set_index("step")
    assert list(b.index) == list(range(1, STEPS + 1))
    assert (a["loss"] - b["loss"]).abs().max() < 1e-4 and (a["tokens"] == b["tokens"]).all()
    assert (a["speech_s"] - b["speech_s"]).abs().max() < 1e-6  # the same documents heard at every step


def test_a_manifest_with_bad_rows_trains_on_the_rest_and_says_what_it_dropped(corpus, tmp_path):
    """A JSONL manifest of the export's first 40 utterances, with a missing file, audio at the wrong rate, an
    empty transcript and a document that states an evaluation fact among them."""
    import datasets

    rows = datasets.load_from_disk(corpus.removeprefix("hf:")).cast_column("audio", datasets.Audio(decode=False))
    lines = []
    for k, row in enumerate(rows.select(range(40))):
        path = tmp_path / f"{row['id']}.flac"
        path.write_bytes(row["audio"]["bytes"])
        lines.append({"audio": path.name, "text": row["text"], "doc": row["doc"], "pos": row["pos"], "id": row["id"]})
    lines[1]["audio"] = "missing.flac"
    audio, _ = sf.read(tmp_path / lines[2]["audio"])
    sf.write(tmp_path / "slow.wav", audio[::2], 8000)
    lines[2].update(audio="slow.wav", sampling_rate=16000)
    lines[3]["text"] = ""
    from salad_core.world import load_world

    fact = load_world("nano").eval_facts()["nano-capitals"][0]  # a document saying what the evaluation asks
    lines.append({**lines[0], "id": "leak", "doc": "leak", "text": f"{fact['question']} it is {fact['answer']} ."})
    manifest = tmp_path / "corpus.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = finish(salad([*COMMON, "--max-steps", "3", "--speech", str(manifest), "--data-workers", "0", "--db",
                            str(tmp_path / "s.duckdb")], tmp_path))
    (read,) = summary["speech_read"]
    assert read["dropped"] == {"missing audio file": 1, "wrong sample rate": 1,
                               "documents stating an evaluation fact": 1} and read["bad_rows"] == 1
    assert summary["steps"] == 3
    notes = Store(str(tmp_path / "s.duckdb")).runs().set_index("run_id").loc[summary["run_id"], "notes"]
    assert any(n.startswith(f"leak audit of {manifest}: ") and "1 documents left out" in n for n in notes)


def test_a_speech_source_that_is_not_there_is_one_line_and_exit_code_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "salad_core.cli", "train", "--preset", "nano", "--speech",
                           str(tmp_path / "nowhere.jsonl"), "--db", str(tmp_path / "s.duckdb")],
                          capture_output=True, text=True, env={**os.environ, "SALAD_DATA": str(tmp_path)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "there is no file or folder" in done.stderr and "Known kinds" in done.stderr


def test_replay_text_from_the_users_text_sources(corpus, tmp_path):
    """`--text` replaces the world's replay text: the run records its sources, and replay batches are trained on
    (a frozen LLM skips replay: it cannot forget)."""
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("the river runs to the sea .\n\nbirds fly over the hills .\n")
    (texts / "b.txt").write_text("a quiet morning in the valley .\n")
    summary = finish(salad([*COMMON, "--max-steps", "6", "--replay-prob", "0.5", "--llm-mode", "full", "--speech",
                            corpus, "--text", str(texts), "--data-workers", "0", "--db", str(tmp_path / "s.duckdb")],
                           tmp_path))
    store = Store(str(tmp_path / "s.duckdb"))
    (text,) = store.runs().set_index("run_id").loc[summary["run_id"], "plan"]["text"]
    assert (text["spec"], text["kind"], text["files"], text["column"]) == (str(texts), "txt", 2, "text")
    assert text["digest"]
    assert store.train_steps(summary["run_id"])["replay"].any()  # replay batches, from those three documents


def test_long_utterances_are_timed_by_the_asr_and_a_wrong_transcript_is_dropped(tmp_path):
    """`--word-timings auto`: an utterance longer than a speech span is cut at the words Whisper times, so its speech
    spans are stretches of it; one whose transcript is another sentence's is dropped with its CER."""
    import torch

    from salad_core.speech_data.documents import SpanRanges
    from salad_core.speech_data.sources import SpeechSource
    from salad_core.speech_data.stream import AsrTimer, SourceDocuments
    from salad_core.tts import VoiceSpec
    from salad_core.tts.cache import synthesize
    from tests.tiny_models import tiny_encoder

    said = ["the old lighthouse keeper climbed the narrow stairs every evening to light the great lamp for the ships",
            "a small brown dog waited by the garden gate until the children came home from the village school"]
    lines = []
    for k, text in enumerate(said):
        path = synthesize(text, VoiceSpec("espeak", "en-us"))
        lines.append({"audio": str(path), "text": text, "doc": "d", "pos": k, "id": f"u{k}"})
    lines.append({**lines[0], "id": "wrong", "pos": 2, "text": said[1]})  # the first one's audio, the second's words
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    dataset = SourceDocuments(SpeechSource.parse(str(tmp_path / "m.jsonl")), 0, tiny_encoder().log_mel, seed=0,
                              ranges=SpanRanges((3, 6), (3, 6)), timer=AsrTimer())
    (doc,) = list(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0))
    assert list(doc.dropped) == ["wrong"] and "CER" in doc.dropped["wrong"]
    heard = [key for _, key in doc.spans if key]
    assert heard and all("@" in key for key in heard)  # stretches of an utterance, not whole ones
    assert " ".join(text for text, _ in doc.spans) == " ".join(said)
