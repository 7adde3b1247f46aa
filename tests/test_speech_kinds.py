"""Every kind of speech source trains Stage I on human and synthetic speech (issue 34): a salad JSONL manifest, a
`datasets` folder (save_to_disk), a Lhotse cut manifest with word alignments and a Lhotse Shar folder, each made here
from the same corpus: one chapter of a LibriVox recording read by a person (tests/fixtures/librivox: five utterances
of 8-22 words) and three documents spoken by espeak-ng voices. `salad train --preset nano --speech SOURCE` trains a
few steps on each, reads every document and utterance, and records the source's kind in its plan.

Two of the LibriVox utterances are longer than a speech span (5-15 words). Where the source carries their words'
timings (the JSONL manifest and the cut manifest, from PocketSphinx's alignment; Lhotse keeps them in the chapter's
time) a speech span is cut inside them at those; where it does not (the datasets folder; a Shar folder, whose writer
re-bases the audio but not the alignment), Whisper times them (`--word-timings auto`, the default), and without a
timer (`--word-timings none`) each is heard or read whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from salad_core.store import Store
from tests.test_trainer import finish, salad

LIBRIVOX = Path(__file__).parent / "fixtures" / "librivox"
CHAPTER = "sense_and_sensibility_01"
STEPS = 3
TRAIN = ["--preset", "nano", "--max-steps", str(STEPS), "--batch-size", "2", "--warmup-steps", "1", "--eval-every",
         "100", "--eval-items", "1", "--ckpt-every", "100", "--no-final-eval", "--json"]
TTS_DOCUMENTS = {  # document -> (espeak-ng voice, its utterances in order)
    "walk": ("espeak:en-us", ["we walked along the river before breakfast",
                              "the water was calm and the birds were singing",
                              "after an hour we turned back toward the town"]),
    "bread": ("espeak:en-gb", ["mix the flour with warm water and a little salt",
                               "leave the dough to rise for two hours in a warm place",
                               "bake it until the crust is golden brown",
                               "let the loaf cool before you cut it"]),
    "storm": ("espeak:en-gb-scotland", ["dark clouds gathered over the hills in the afternoon",
                                        "soon the rain began to fall on the roofs",
                                        "by evening the storm had passed"]),
}
KINDS = ("jsonl", "hf", "lhotse", "shar")


@dataclass(frozen=True)
class Row:
    id: str
    doc: str
    pos: int
    text: str
    path: Path
    words: tuple[tuple[str, float, float], ...] | None = None


def librivox_rows() -> list[Row]:
    """The fixture's five utterances of one chapter, with PocketSphinx's word timings."""
    lines = [json.loads(line) for line in (LIBRIVOX / "librivox.jsonl").read_text().splitlines()]
    return [Row(r["id"], r["doc"], r["pos"], r["text"], LIBRIVOX / r["audio"], tuple(map(tuple, r["words"])))
            for r in lines]


def tts_rows(folder: Path) -> list[Row]:
    """The espeak-ng documents, one FLAC file per utterance (synthesized once, then from the TTS cache)."""
    from salad_core.clips import ClipRequest, render

    requests = [ClipRequest(f"{doc}-{pos}", text, voice, 1.0, "train")
                for doc, (voice, texts) in TTS_DOCUMENTS.items() for pos, text in enumerate(texts)]
    rows = []
    for record, audio in render(requests):
        assert audio is not None, record
        path = folder / f"{record['clip_id']}.flac"
        sf.write(path, audio, 16000)
        doc, pos = record["clip_id"].rsplit("-", 1)
        rows.append(Row(record["clip_id"], doc, int(pos), record["text"], path))
    return rows


def write_manifest(rows: list[Row], path: Path) -> str:
    lines = [{"id": r.id, "audio": str(r.path), "text": r.text, "doc": r.doc, "pos": r.pos,
              **({"words": [list(w) for w in r.words]} if r.words else {})} for r in rows]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def write_dataset(rows: list[Row], folder: Path) -> str:
    """A `datasets` folder as a hub corpus comes: the audio embedded as bytes, no word timings."""
    from datasets import Audio, Dataset, Features, Value

    features = Features({"id": Value("string"), "text": Value("string"), "doc": Value("string"),
                         "pos": Value("int32"), "audio": {"bytes": Value("binary"), "path": Value("string")}})
    data = {"id": [r.id for r in rows], "text": [r.text for r in rows], "doc": [r.doc for r in rows],
            "pos": [r.pos for r in rows], "audio": [{"bytes": r.path.read_bytes(), "path": None} for r in rows]}
    dataset = Dataset.from_dict(data, features=features).cast_column("audio", Audio(sampling_rate=16000))
    dataset.save_to_disk(str(folder))
    return f"hf:{folder}"


def chapter_cuts(rows: list[Row], folder: Path):
    """The chapter as one recording (its utterances end to end, as a LibriVox chapter comes), cut at each utterance:
    a supervision per utterance, its word alignment in the recording's time."""
    import lhotse
    from lhotse.supervision import AlignmentItem

    audio = [sf.read(r.path, dtype="float32")[0] for r in rows]
    path = folder / f"{CHAPTER}.flac"
    sf.write(path, np.concatenate(audio), 16000)
    recording = lhotse.Recording.from_file(path, recording_id=CHAPTER)
    starts = np.cumsum([0] + [a.size / 16000 for a in audio])
    supervisions = [lhotse.SupervisionSegment(r.id, CHAPTER, float(start), a.size / 16000, text=r.text, alignment={
        "word": [AlignmentItem(w, float(start) + s, round(e - s, 6)) for w, s, e in r.words]})
        for r, a, start in zip(rows, audio, starts)]
    cuts = lhotse.CutSet.from_manifests(lhotse.RecordingSet.from_recordings([recording]),
                                        lhotse.SupervisionSet.from_segments(supervisions))
    return list(cuts.trim_to_supervisions(keep_overlapping=False))


def clip_cut(row: Row):
    """A synthesized utterance as its own recording; its supervision names its document and place."""
    import lhotse

    cut = lhotse.Recording.from_file(row.path, recording_id=row.id).to_cut()
    cut.supervisions = [lhotse.SupervisionSegment(row.id, row.id, 0.0, cut.duration, text=row.text,
                                                  custom={"doc": row.doc, "pos": row.pos})]
    return cut


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """The four sources of one corpus (the chapter first, then the synthesized documents), and its rows."""
    pytest.importorskip("lhotse")
    import lhotse

    root = tmp_path_factory.mktemp("kinds")
    (root / "tts").mkdir()
    human, synthetic = librivox_rows(), tts_rows(root / "tts")
    rows = human + synthetic
    cuts = lhotse.CutSet.from_cuts([*chapter_cuts(human, root), *map(clip_cut, synthetic)])
    cuts.to_file(root / "cuts.jsonl.gz")
    (root / "shar").mkdir()
    cuts.to_shar(root / "shar", fields={"recording": "flac"}, shard_size=8)
    return {"rows": rows, "jsonl": write_manifest(rows, root / "corpus.jsonl"),
            "hf": write_dataset(rows, root / "saved"), "lhotse": str(root / "cuts.jsonl.gz"),
            "shar": str(root / "shar")}


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> dict:
    """A few steps of Stage I on each kind, two at a time (each its own data folder and store): kind -> (summary,
    store). Half read with a data worker, half in the training process."""
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for pair in (KINDS[:2], KINDS[2:]):
        started = {kind: salad([*TRAIN, "--speech", corpus[kind], "--data-workers", str(k % 2), "--db",
                                str(root / f"{kind}.duckdb")], root / kind) for k, kind in enumerate(pair)}
        runs.update({kind: (finish(proc), Store(str(root / f"{kind}.duckdb"))) for kind, proc in started.items()})
    return runs


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_source_trains_on_every_document_and_utterance(trained, corpus, kind):
    summary, store = trained[kind]
    run = store.runs().set_index("run_id").loc[summary["run_id"]]
    assert run["status"] == "done" and summary["steps"] == STEPS
    losses = store.train_steps(summary["run_id"])["loss"]
    assert len(losses) == STEPS and np.isfinite(losses.to_numpy(float)).all()
    (source,) = run["plan"]["speech"]
    assert source["kind"] == kind and source["digest"]
    (read,) = summary["speech_read"]
    rows = corpus["rows"]
    assert read["documents"] == len({r.doc for r in rows}) == 4 and read["utterances"] == len(rows) == 15
    assert read["dropped"] == {} and read["bad_rows"] == 0 and read["documents_with_nothing_heard"] == 0
    assert 0 < read["heard_hours"] * 3600 < sum(sf.info(r.path).duration for r in rows)


def heard_keys(spec: str, timer=None) -> list[str]:
    """The heard stretches of the chapter's document, as a data worker plans them (the paper's span ranges)."""
    from salad_core.model.encoder import LogMel
    from salad_core.speech_data.sources import SpeechSource
    from salad_core.speech_data.stream import SourceDocuments

    docs = list(SourceDocuments(SpeechSource.parse(spec), 0, LogMel(80), seed=0, timer=timer))
    (chapter,) = [d for d in docs if d.doc_id.startswith(CHAPTER)]
    assert chapter.utterances == 5 and not chapter.dropped
    return [key for _, key in chapter.spans if key]


def test_the_human_chapter_is_heard_in_stretches_where_its_words_are_timed(corpus):
    """Timed by the source (the cut manifest moves the chapter's alignment to each cut's time) or by Whisper (an
    utterance longer than a speech span), a span is cut inside an utterance (its key names the stretch); untimed,
    every utterance heard is heard whole."""
    from salad_core.speech_data.sources import SpeechSource, iter_utterances
    from salad_core.speech_data.stream import AsrTimer

    timed = {r.id: r.words for r in corpus["rows"] if r.words}
    cut = {u.utt_id: u.words for u in iter_utterances(SpeechSource.parse(corpus["lhotse"])) if u.utt_id in timed}
    assert cut.keys() == timed.keys()
    for utt, words in timed.items():
        assert [w.text for w in cut[utt]] == [w for w, _, _ in words]
        times = [t for w in cut[utt] for t in (w.start, w.end)]
        assert times == pytest.approx([t for _, s, e in words for t in (s, e)], abs=1e-3)
    for kind, stretches in (("jsonl", True), ("lhotse", True), ("hf", False), ("shar", False)):
        keys = heard_keys(corpus[kind])
        assert keys and all(k.split("@")[0] in timed for k in keys)
        assert all(("@" in k) == stretches for k in keys), (kind, keys)
    long = {r.id for r in corpus["rows"] if r.words and len(r.text.split()) > 15}
    by_asr = heard_keys(corpus["hf"], AsrTimer())  # none dropped: Whisper hears what the transcripts say
    assert len(long) == 2 and all(("@" in k) == (k.split("@")[0] in long) for k in by_asr), by_asr


def test_whisper_times_the_human_reader_close_to_the_forced_alignment():
    """The ASR word timer on a person's reading: the transcript's words, each start and end within a few tenths of a
    second of PocketSphinx's forced alignment (on these five: 0.05-0.08 s on average, 0.34 s at most)."""
    from salad_core.speech_data.sources import SpeechSource, iter_utterances
    from salad_core.speech_data.stream import AsrTimer

    timer = AsrTimer()
    for utt in iter_utterances(SpeechSource.parse(str(LIBRIVOX / "librivox.jsonl"))):
        words, cer = timer(utt, utt.load())
        assert [w.text for w in words] == [w.text for w in utt.words] and cer < 0.15
        gaps = [abs(a - b) for w, ref in zip(words, utt.words) for a, b in ((w.start, ref.start), (w.end, ref.end))]
        assert np.mean(gaps) < 0.15 and max(gaps) < 0.5, (utt.utt_id, gaps)
