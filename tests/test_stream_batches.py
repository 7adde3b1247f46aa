"""Streamed speech batches (`salad train --speech`): documents prepared by DataLoader workers in the order of the
process's share, batches cut from length-sorted windows, a state that resumes with the batch that came next, and
disjoint shares for two processes; bad rows and bad audio counted, the rest trained on."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from salad_core.speech_data.documents import SpanRanges
from salad_core.speech_data.sources import SpeechSource
from salad_core.speech_data.stream import SourceDocuments
from salad_core.train.data import Shuffled
from salad_core.train.stream_batches import StreamBatches, StreamedText, speech_columns
from salad_core.train.windows import drop_reason
from tests.tiny_models import tiny_encoder

RANGES = SpanRanges((2, 4), (2, 4))


def tone(seconds: float, hz: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> str:
    """30 documents of 2-4 utterances (a tone each, 0.3-1.2 s), one missing file, one 8 kHz file declared 16 kHz,
    one row without a transcript."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    lines = []
    for doc in range(30):
        for pos in range(int(rng.integers(2, 5))):
            name = f"d{doc:02d}-{pos}.wav"
            sf.write(root / name, tone(float(rng.uniform(0.3, 1.2)), 200 + 10 * doc), 16000)
            lines.append({"audio": name, "text": f"doc {doc} part {pos} says words", "doc": f"d{doc:02d}",
                          "pos": pos, "id": f"d{doc:02d}-{pos}"})
    lines[3]["audio"] = "gone.wav"
    sf.write(root / "slow.wav", tone(1.0, 300, 8000), 8000)
    lines[7].update(audio="slow.wav", sampling_rate=16000)
    lines[11]["text"] = " "
    (root / "corpus.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(root / "corpus.jsonl")


def documents(manifest: str, workers: int = 0, rank: int = 0, world_size: int = 1, start: int = 0) -> list:
    dataset = SourceDocuments(SpeechSource.parse(manifest), 0, tiny_encoder().log_mel, seed=3, rank=rank,
                              world_size=world_size, start=start, ranges=RANGES)
    return list(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers))


def test_workers_give_the_documents_in_the_order_one_process_reads_them(manifest):
    alone, two = documents(manifest), documents(manifest, workers=2)
    assert [d.doc_id for d in two] == [d.doc_id for d in alone] and len(alone) == 30
    assert all(torch.equal(a, b) for x, y in zip(alone, two) for a, b in zip(x.features, y.features))
    assert [d.index for d in documents(manifest, workers=2, start=5)] == list(range(5, 30))


def test_workers_read_a_streamed_datasets_folder_whole(manifest, tmp_path):
    """A saved folder is streamed (`tasks.hub.streamed_files`); each worker still reads all its files, so two workers
    give every document, in order, as one process does (left alone, `datasets` would split the files between them)."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    lines = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    rows = [{**{k: r[k] for k in ("text", "doc", "pos", "id")}, "audio": str(Path(manifest).parent / r["audio"])}
            for r in lines]  # the files' paths (the 8 kHz file is then read as it is: no rate declared)
    datasets.Dataset.from_list(rows).save_to_disk(str(folder), num_shards=2)
    alone, two = documents(f"hf:{folder}"), documents(f"hf:{folder}", workers=2)
    assert [d.doc_id for d in two] == [d.doc_id for d in alone] == [d.doc_id for d in documents(manifest)]


def test_two_processes_read_disjoint_shares_of_the_documents(manifest):
    shares = [documents(manifest, rank=r, world_size=2, workers=r) for r in (0, 1)]
    ids = [{d.doc_id for d in share} for share in shares]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 30
    # a bad row is reported once, by the share whose document follows it, not again by the other process
    assert sum(len(d.bad_rows) for share in shares for d in share) == 1


def test_bad_rows_and_bad_audio_are_counted_and_the_documents_go_on(manifest):
    docs = documents(manifest)
    dropped = Counter(drop_reason(m) for d in docs for m in d.dropped.values())
    assert dropped == {"missing audio file": 1, "wrong sample rate": 1}
    assert sum(len(d.bad_rows) for d in docs) == 1 and "line 12" in next(r for d in docs for r in d.bad_rows)
    heard = [key for d in docs for _, key in d.spans if key]
    assert heard and all(d.spans for d in docs)


def batches(manifest: str, state: dict | None = None) -> StreamBatches:
    encoder = tiny_encoder()
    source = SpeechSource.parse(manifest)

    def open_at(start: int):
        dataset = SourceDocuments(source, 0, encoder.log_mel, seed=3, start=start, ranges=RANGES)
        return iter(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0))

    data = StreamBatches([open_at], [1.0], Shuffled([f"text {k}" for k in range(10)], 1, "text"), encoder, seed=1,
                         replay_prob=0.25, window_docs=8)
    if state is not None:
        data.load_state_dict(state)
    return data


def shown(batch) -> list:
    return [batch.replay, [[(s.text, s.clip_id) for s in doc] for doc in batch.docs], [f.shape for f in batch.frames]]


def test_a_resumed_stream_gives_the_batch_that_came_next(manifest):
    """Windows of 8 documents over 30 (an epoch ends in a short window): a state saved after any batch resumes to the
    same batches as the run that went on, across windows and epochs."""
    whole = batches(manifest)
    first = [shown(whole.next_batch(3)) for _ in range(7)]
    state = json.loads(json.dumps(whole.state_dict()))  # as a checkpoint keeps it
    later = [shown(whole.next_batch(3)) for _ in range(12)]
    resumed = batches(manifest, state)
    assert [shown(resumed.next_batch(3)) for _ in range(12)] == later
    assert resumed.state_dict()["stats"] == whole.state_dict()["stats"]
    assert len({str(b) for b in first + later}) > 15  # they are not one batch again and again


def test_a_window_is_cut_into_batches_of_neighbouring_lengths(manifest):
    """Batches are consecutive slices of the window sorted by length (padding stays small), given in a seeded order."""
    window = batches(manifest).sources[0]
    window.next(3)
    cut = sorted(window.batches, key=lambda batch: min(d.seconds for d in batch))
    assert len(cut) == 2  # 8 documents: two batches of 3; the two left over, the seed picks
    assert max(d.seconds for d in cut[0]) <= min(d.seconds for d in cut[1])


def test_speech_columns_are_field_equals_column():
    assert speech_columns(["text=sentence", "doc=chapter_id"]) == {"text": "sentence", "doc": "chapter_id"}
    with pytest.raises(ValueError, match="is not FIELD=COLUMN"):
        speech_columns(["sentence"])


def test_streamed_replay_text_resumes_and_mixes_its_sources_by_weight(tmp_path):
    """`--text A --text B:3`: replay batches drawn from two JSONL sources about 1:3, in length-sorted windows, and a
    state that resumes to the same texts."""
    from salad_core.speech_data.texts import TextSource, iter_texts

    for name, n in (("a", 40), ("b", 60)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"text": f"{name} " + "w " * (k % 7)}) + "\n"
                                                        for k in range(n)))
    sources = [TextSource.parse(str(tmp_path / "a.jsonl")), TextSource.parse(f"{tmp_path / 'b.jsonl'}:3")]

    def replay() -> StreamedText:
        return StreamedText([lambda start, s=s: iter_texts(s, start=start) for s in sources], [s.weight for s in sources],
                            seed=0, window_docs=16)

    whole = replay()
    taken = [whole.take(4) for _ in range(20)]
    share_b = sum(t[0].startswith("b") for t in taken) / len(taken)
    assert 0.5 < share_b < 0.95 and all(len({x[0] for x in t}) == 1 for t in taken)  # one source per batch
    state = json.loads(json.dumps(whole.position))
    later = [whole.take(4) for _ in range(10)]
    resumed = replay()
    resumed.position = state
    assert [resumed.take(4) for _ in range(10)] == later


def test_text_sources_read_parquet_jsonl_and_plain_text_cut_to_the_context(tmp_path):
    import pandas as pd

    from salad_core.errors import InputError
    from salad_core.speech_data.texts import TextSource, iter_texts

    pd.DataFrame({"body": ["one two three", "four five"]}).to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.txt").write_text("first para\nstill first\n\nsecond " + "x " * 10 + "\n")
    assert list(iter_texts(TextSource.parse(str(tmp_path / "t.parquet"), column="body"))) == ["one two three",
                                                                                             "four five"]
    assert list(iter_texts(TextSource.parse(str(tmp_path / "t.txt")), max_words=5)) == [
        "first para still first", "second x x x x", "x x x x x", "x"]
    assert list(iter_texts(TextSource.parse(str(tmp_path / "t.txt")), start=1)) == ["second" + " x" * 10]
    with pytest.raises(InputError, match="no column 'text'"):
        list(iter_texts(TextSource.parse(str(tmp_path / "t.parquet"))))
    with pytest.raises(InputError, match="no file matches"):
        TextSource.parse(str(tmp_path / "missing.jsonl"))
