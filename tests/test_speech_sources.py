"""`--speech SOURCE`: each kind of speech corpus (salad JSONL, a folder saved by `datasets`, a Lhotse cut manifest, a
Lhotse Shar folder) read lazily as utterances, in order, resumable; the spec's weight; bad rows reported by row."""

from __future__ import annotations

import itertools
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from salad_core.assets import AssetError
from salad_core.audio import AudioError
from salad_core.errors import InputError
from salad_core.speech_data.rows import RowError
from salad_core.speech_data.sources import SpeechSource, describe, iter_utterances
from salad_core.speech_data.utterance import Word
from salad_core.tasks.hub import DatasetSpec


def tone(seconds: float, rate: int = 16000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def clips(tmp_path):
    """a.wav 1 s, c.wav 0.75 s, long.wav 2 s (a chapter), all 16 kHz; low.wav 0.5 s at 8 kHz."""
    for name, seconds, rate in (("a", 1.0, 16000), ("c", 0.75, 16000), ("long", 2.0, 16000), ("low", 0.5, 8000)):
        sf.write(tmp_path / f"{name}.wav", tone(seconds, rate), rate)
    return tmp_path


def write_jsonl(path, rows) -> str:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return str(path)


def read(spec: str, **kwargs) -> tuple[list, list[RowError]]:
    bad: list[RowError] = []
    return list(iter_utterances(SpeechSource.parse(spec), on_bad=bad.append, **kwargs)), bad


# --- salad JSONL ----------------------------------------------------------------------------------------------------

MANIFEST = [{"audio": "a.wav", "text": "hello there", "doc": "ch1", "pos": 0, "id": "a",
             "words": [["hello", 0.0, 0.4], ["there", 0.5, 0.9]]},
            {"audio": "long.wav", "text": " second ", "doc": "ch1", "pos": 1, "id": "b", "offset": 0.5,
             "duration": 1.0, "sampling_rate": 16000},
            {"audio": "c.wav", "text": "third"}]


def test_a_salad_manifest_gives_its_rows_in_order_with_their_defaults(clips):
    spec = write_jsonl(clips / "speech.jsonl", MANIFEST)
    source = SpeechSource.parse(spec)
    assert (source.kind, source.weight) == ("jsonl", 1.0)
    utts, bad = read(spec)
    assert not bad
    assert [(u.utt_id, u.doc, u.pos, u.text) for u in utts] == [
        ("a", "ch1", 0.0, "hello there"), ("b", "ch1", 1.0, "second"),
        ("speech.jsonl:3", "speech.jsonl:3", 3.0, "third")]  # id MANIFEST:LINE, its own document, its line
    assert utts[0].words == (Word("hello", 0.0, 0.4), Word("there", 0.5, 0.9)) and utts[2].words is None
    assert utts[1].audio.path == str(clips / "long.wav") and utts[1].seconds == 1.0
    assert [u.load().shape for u in utts] == [(16000,), (16000,), (12000,)]


def test_start_skips_exactly_that_many_rows(clips):
    spec = write_jsonl(clips / "speech.jsonl", MANIFEST)
    assert [u.utt_id for u in read(spec, start=1)[0]] == ["b", "speech.jsonl:3"]
    assert read(spec, start=3) == ([], [])
    with pytest.raises(InputError, match="negative"):
        iter_utterances(SpeechSource.parse(spec), start=-1)


BAD_ROWS = [{"audio": "a.wav", "text": "good", "id": "g1"},
            {"audio": "a.wav", "text": "   ", "id": "empty"},
            '{"audio": "a.wav", "text": ',
            {"text": "no audio"},
            {"audio": "a.wav", "text": "bad words", "words": [["bad", 0.5]]},
            {"audio": "a.wav", "text": "words backwards", "words": [["back", 0.5, 0.1]]},
            {"audio": "c.wav", "text": "good too", "id": "g2"}]


def test_bad_rows_go_to_on_bad_with_their_line_and_the_rest_is_read(clips):
    spec = write_jsonl(clips / "speech.jsonl", BAD_ROWS[:2] + [""] + BAD_ROWS[2:])  # a blank line is no row
    utts, bad = read(spec)
    assert [u.utt_id for u in utts] == ["g1", "g2"]
    assert all(isinstance(err, RowError) and isinstance(err, InputError) for err in bad)
    messages = [str(err) for err in bad]
    for line, problem in zip((2, 4, 5, 6, 7), ("transcript is empty", "not valid JSON", "audio field is missing",
                                                "is not [word, start, end]", "ends (0.1 s) before it starts")):
        assert any(f"line {line}:" in m and problem in m and "Fix:" in m and spec in m for m in messages), line
    assert len(bad) == 5
    # resuming counts bad rows as rows: skipping 3 leaves lines 5 to 8
    assert [u.utt_id for u in read(spec, start=3)[0]] == ["g2"]


def test_bad_rows_are_logged_when_no_one_asks_for_them(clips, caplog):
    spec = write_jsonl(clips / "speech.jsonl", BAD_ROWS[:2])
    assert [u.utt_id for u in iter_utterances(SpeechSource.parse(spec))] == ["g1"]
    assert "line 2: the transcript is empty" in caplog.text


def test_audio_that_cannot_be_had_is_reported_when_loaded_naming_the_utterance(clips):
    spec = write_jsonl(clips / "speech.jsonl", [
        {"audio": "missing.wav", "text": "gone", "id": "m"},
        {"audio": "low.wav", "text": "low", "id": "low", "sampling_rate": 16000},
        {"audio": "low.wav", "text": "low again", "id": "low2"}])
    gone, wrong_rate, undeclared = read(spec)[0]
    with pytest.raises(AudioError, match="utterance m: no audio file"):
        gone.load()
    with pytest.raises(AudioError, match="utterance low: the audio is at 8000 Hz .* declares 16000 Hz"):
        wrong_rate.load()
    assert undeclared.load().shape == (8000,)  # resampled to 16 kHz


def test_a_long_manifest_is_read_lazily(clips):
    rows = [json.dumps({"audio": "a.wav", "text": f"row {j}"}) for j in range(20000)]
    rows[9] = "{broken"
    spec = write_jsonl(clips / "big.jsonl", rows)
    bad: list = []
    utterances = iter_utterances(SpeechSource.parse(spec), on_bad=bad.append)
    assert isinstance(utterances, types.GeneratorType)
    assert [u.text for u in itertools.islice(utterances, 5)] == [f"row {j}" for j in range(5)]
    assert bad == []  # line 10 was never read
    assert [u.text for u in read(spec, start=19998)[0]] == ["row 19998", "row 19999"]


# --- hf: a folder saved by `datasets` ------------------------------------------------------------------------------

def saved_dataset(clips, names=("a", "c", "long"), **columns):
    datasets = pytest.importorskip("datasets")
    rows = {"audio": [{"bytes": (clips / f"{n}.wav").read_bytes(), "path": f"{n}.wav"} for n in names],
            "text": [f"say {n}" for n in names], "chapter_id": [7, 7, 8][:len(names)],
            "id": [f"x{j}" for j in range(len(names))], **columns}
    return datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))


def test_a_saved_dataset_gives_its_rows_with_their_columns_mapped(clips):
    folder = clips / "saved"
    saved_dataset(clips).save_to_disk(str(folder))
    source = SpeechSource.parse(f"hf:{folder}")
    assert (source.kind, source.dataset.split) == ("hf", "train")
    assert SpeechSource.parse(str(folder)).kind == "hf"  # a saved folder is recognised without the prefix
    utts, bad = read(f"hf:{folder}")
    assert not bad
    assert [(u.utt_id, u.doc, u.pos, u.text) for u in utts] == [
        ("x0", "7", 0.0, "say a"), ("x1", "7", 1.0, "say c"), ("x2", "8", 2.0, "say long")]
    assert utts[0].audio.data is not None  # encoded bytes, not decoded while reading
    assert [u.load().shape for u in utts] == [(16000,), (12000,), (32000,)]
    assert [u.utt_id for u in read(f"hf:{folder}", start=2)[0]] == ["x2"]
    info = describe(source)
    assert info["columns"] == {"audio": "audio", "text": "text", "doc": "chapter_id", "pos": None, "id": "id"}
    assert info["kind"] == "hf" and info["split"] == "train" and len(info["digest"]) == 16


def test_a_saved_dataset_dicts_split_is_chosen_after_the_at(clips):
    datasets = pytest.importorskip("datasets")
    folder = clips / "splits"
    datasets.DatasetDict({"train": saved_dataset(clips), "dev": saved_dataset(clips, ("c",))}).save_to_disk(str(folder))
    assert [u.text for u in read(f"hf:{folder}@dev")[0]] == ["say c"]
    with pytest.raises(AssetError, match="no split 'test' .*splits: train, dev"):
        read(f"hf:{folder}@test")


def _mapped_file_kib() -> int:
    """File pages mapped into this process and resident (RssFile of /proc/self/status)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status (Linux)")
def test_a_saved_dataset_is_read_a_batch_at_a_time_not_memory_mapped(clips):
    """A pass over a memory-mapped folder would keep every page it read resident while it lasts: a data worker's
    memory would grow with the corpus, up to its size on disk (issue 34). Read a record batch at a time, 32 MB of
    rows are never mapped in."""
    datasets = pytest.importorskip("datasets")
    from salad_core.tasks.hub import open_rows

    folder = clips / "big"
    blob = np.random.default_rng(0).bytes(1 << 20)  # a megabyte per row, as encoded audio (not decoded here)
    rows = {"audio": [{"bytes": blob, "path": None}] * 32, "text": [f"row {k}" for k in range(32)]}
    datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio()).save_to_disk(str(folder))
    spec = DatasetSpec.parse(f"hf:{folder}", default_split="train")
    assert isinstance(open_rows(spec, streaming=True), datasets.IterableDataset)
    assert [u.text for u in read(f"hf:{folder}", start=30)[0]] == ["row 30", "row 31"]  # loads what a pass needs
    before, peak, count = _mapped_file_kib(), 0, 0
    for utt in iter_utterances(SpeechSource.parse(f"hf:{folder}")):
        peak, count = max(peak, _mapped_file_kib()), count + (utt.audio.data == blob)
    assert count == 32 and peak - before < 8 * 1024


def test_a_missing_transcript_column_is_refused_at_once_naming_the_columns(clips):
    folder = clips / "captions"
    saved_dataset(clips).rename_column("text", "caption").save_to_disk(str(folder))
    with pytest.raises(InputError, match=r"no text column .*columns are audio, caption, chapter_id, id\. Fix: "):
        iter_utterances(SpeechSource.parse(f"hf:{folder}"))
    mapped = SpeechSource.parse(f"hf:{folder}", columns={"text": "caption", "doc": "id"})
    assert [(u.text, u.doc) for u in iter_utterances(mapped)][:1] == [("say a", "x0")]
    with pytest.raises(InputError, match="no pos column 'order'"):
        iter_utterances(SpeechSource.parse(f"hf:{folder}", columns={"text": "caption", "pos": "order"}))
    with pytest.raises(InputError, match="unknown field"):
        iter_utterances(SpeechSource.parse(f"hf:{folder}", columns={"speaker": "id"}))


def test_a_folder_of_data_files_is_streamed(clips):
    folder = clips / "parquet"
    folder.mkdir()
    saved_dataset(clips).to_parquet(str(folder / "train.parquet"))
    utts, bad = read(f"hf:{folder}", start=1)
    assert not bad and [(u.utt_id, u.pos) for u in utts] == [("x1", 1.0), ("x2", 2.0)]
    assert utts[0].load().shape == (12000,)


def test_a_row_without_audio_or_transcript_is_a_bad_row(clips):
    folder = clips / "holes"
    data = saved_dataset(clips).to_dict()
    data["text"][1] = ""
    data["audio"][2] = None
    import datasets

    datasets.Dataset.from_dict(data).save_to_disk(str(folder))
    utts, bad = read(f"hf:{folder}")
    assert [u.utt_id for u in utts] == ["x0"]
    assert "row 1 (id x1): the transcript is empty" in str(bad[0])
    assert "row 2 (id x2): the row has no audio" in str(bad[1])


# --- Lhotse: a cut manifest and a Shar folder ------------------------------------------------------------------------

@pytest.fixture
def cuts(clips):
    """Two cuts of a 2 s chapter (the first with a word alignment, in the recording's time as Lhotse keeps it) and a
    whole-file cut whose supervision names its document and place."""
    lhotse = pytest.importorskip("lhotse")
    from lhotse.supervision import AlignmentItem

    chapter = lhotse.Recording.from_file(clips / "long.wav", recording_id="chap1")
    words = [AlignmentItem("hello", 0.2, 0.4), AlignmentItem("world", 0.6, 0.3)]
    sups = [lhotse.SupervisionSegment("u1", "chap1", 0.2, 0.8, text="hello world", alignment={"word": words}),
            lhotse.SupervisionSegment("u2", "chap1", 1.1, 0.7, text="second one")]
    trimmed = lhotse.CutSet.from_manifests(lhotse.RecordingSet.from_recordings([chapter]),
                                           lhotse.SupervisionSet.from_segments(sups)).trim_to_supervisions()
    solo = lhotse.Recording.from_file(clips / "a.wav", recording_id="solo").to_cut()
    solo.supervisions = [lhotse.SupervisionSegment("solo", "solo", 0.0, 1.0, text="solo clip",
                                                   custom={"doc": "book7", "pos": 5})]
    return lhotse.CutSet.from_cuts([*trimmed, solo])


def test_a_cut_manifest_gives_one_utterance_per_cut_with_its_place_and_words(clips, cuts):
    path = clips / "cuts.jsonl.gz"
    cuts.to_file(path)
    assert SpeechSource.parse(str(path)).kind == "lhotse" and SpeechSource.parse(f"lhotse:{path}").kind == "lhotse"
    utts, bad = read(str(path))
    assert not bad
    assert [(u.utt_id, u.doc, u.pos, u.text) for u in utts] == [
        ("u1", "chap1", 0.2, "hello world"), ("u2", "chap1", 1.1, "second one"), ("solo", "book7", 5.0, "solo clip")]
    assert [(w.text, w.start, w.end) for w in utts[0].words] == [("hello", 0.0, 0.4), ("world", 0.4, 0.7)]
    assert utts[1].words is None
    assert (utts[0].audio.path, utts[0].audio.offset, utts[0].audio.duration) == (str(clips / "long.wav"), 0.2, 0.8)
    assert [u.load().shape for u in utts] == [(12800,), (11200,), (16000,)]
    assert [u.utt_id for u in read(str(path), start=2)[0]] == ["solo"]
    assert describe(SpeechSource.parse(f"{path}:0.5"))["weight"] == 0.5


def test_a_broken_line_of_a_cut_manifest_is_one_bad_row(clips, cuts):
    path = clips / "cuts.jsonl"
    cuts.to_file(path)
    lines = path.read_text().splitlines()
    late = json.loads(lines[0])
    late["id"], late["supervisions"][0]["alignment"]["word"][0][1] = "u1b", "soon"
    path.write_text("\n".join([lines[0], "{oops", json.dumps({"id": "c9", "type": "MonoCut"}), json.dumps(late),
                               lines[2]]) + "\n")
    utts, bad = read(str(path))
    assert [u.utt_id for u in utts] == ["u1", "solo"]
    assert "line 2: not valid JSON" in str(bad[0]) and "line 3 (cut c9): not a Lhotse cut" in str(bad[1])
    assert "line 4 (cut u1b): a word's start 'soon' is not a number" in str(bad[2])


def test_a_lhotse_source_without_lhotse_says_how_to_install_it(clips, cuts, monkeypatch):
    path = clips / "cuts.jsonl.gz"
    cuts.to_file(path)
    monkeypatch.setitem(sys.modules, "lhotse", None)  # as if not installed
    with pytest.raises(AssetError, match=r"pip install lhotse==1\.33\.0"):
        iter_utterances(SpeechSource.parse(str(path)))


def test_a_shar_folder_gives_its_cuts_in_order_and_skips_whole_shards(clips, cuts):
    folder = clips / "shar"
    folder.mkdir()
    cuts.to_shar(folder, fields={"recording": "flac"}, shard_size=2)
    source = SpeechSource.parse(str(folder))
    assert source.kind == "shar" and SpeechSource.parse(f"shar:{folder}").kind == "shar"
    utts, bad = read(str(folder))
    assert not bad
    # Shar re-bases each cut to start at 0: its order stands for its place, and its alignment's origin is lost
    assert [(u.utt_id, u.doc, u.pos, u.words) for u in utts] == [
        ("u1", "chap1", 0.0, None), ("u2", "chap1", 1.0, None), ("solo", "book7", 5.0, None)]
    assert utts[0].audio.data is not None
    assert [u.load().shape for u in utts] == [(12800,), (11200,), (16000,)]
    assert [(u.utt_id, u.pos) for u in read(str(folder), start=2)[0]] == [("solo", 5.0)]
    assert [u.utt_id for u in read(str(folder), start=1)[0]] == ["u2", "solo"]
    assert describe(source)["digest_of"].startswith("sha256 of the Shar folder")


# --- the spec ------------------------------------------------------------------------------------------------------

def test_a_number_after_the_last_colon_is_the_weight(clips):
    spec = write_jsonl(clips / "speech.jsonl", MANIFEST)
    assert SpeechSource.parse(spec).weight == 1.0
    assert (SpeechSource.parse(f"{spec}:0.3").weight, SpeechSource.parse(f"{spec}:0.3").location) == (0.3, spec)
    hub = SpeechSource.parse("hf:openslr/librispeech_asr:clean@train.100:0.3")
    assert (hub.kind, hub.location, hub.weight) == ("hf", "openslr/librispeech_asr", 0.3)
    assert (hub.dataset.config, hub.dataset.split) == ("clean", "train.100")
    assert hub.spec == "hf:openslr/librispeech_asr:clean@train.100"
    numbered = SpeechSource.parse("hf:me/corpus:2")
    assert (numbered.weight, numbered.dataset.config) == (2.0, None)
    assert SpeechSource.parse("hf:me/corpus:2@train").dataset == DatasetSpec("me/corpus", "2", "train")
    assert SpeechSource.parse("hf:me/corpus:books").dataset.config == "books"
    for bad in ("0", "-1", "0.0"):
        with pytest.raises(InputError, match="not a positive number"):
            SpeechSource.parse(f"{spec}:{bad}")


@pytest.mark.parametrize("spec, problem", [("nowhere.jsonl", "no file or folder"), ("hf:./missing", "no folder"),
                                           ("s3:bucket/cuts.jsonl", "s3: is not a kind"), ("hf:", "expected hf:ORG")])
def test_what_names_no_source_is_refused_with_the_kinds_known(spec, problem, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=problem) as err:
        SpeechSource.parse(spec)
    assert spec in str(err.value)


def test_a_folder_or_file_of_no_known_kind_is_refused(clips):
    (clips / "empty").mkdir()
    for spec in (str(clips / "empty"), str(clips / "a.wav"), f"shar:{clips / 'empty'}", f"jsonl:{clips}"):
        with pytest.raises(InputError, match="Known kinds: .*Shar.*Fix: "):
            SpeechSource.parse(spec)
    with pytest.raises(InputError, match="hf: sources only"):
        SpeechSource.parse(write_jsonl(clips / "s.jsonl", MANIFEST), columns={"text": "sentence"})
