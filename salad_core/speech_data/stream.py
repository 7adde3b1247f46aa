"""A source's documents made ready for the training step by data workers: audio decoded, spans planned, the log-mel
front end run on each heard stretch. The encoder itself runs in the training process, on its device.

    dataset = SourceDocuments(source, 0, encoder.log_mel, seed=0, rank=0, world_size=1, start=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    for doc in loader: ...        # PreparedDoc, in the order of this process's share of the source's documents

Shares: the k-th document of the source goes to process k % world_size; within a process, its documents go to the
DataLoader's workers in turn, from `start` (the documents the run has already trained on), which the DataLoader reads
back in the same turn: a process sees its documents in order, whatever the number of workers. A document whose
utterances all fail still comes (with no spans), so the turn is never broken; the trainer counts and skips it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from salad_core.audio import SAMPLE_RATE, AudioError
from salad_core.speech_data.documents import MAX_DOC_WORDS, Heard, SpanRanges, document_chunks, plan_spans
from salad_core.speech_data.sources import SpeechSource, iter_utterances
from salad_core.speech_data.utterance import Utterance, Word

log = logging.getLogger(__name__)
LEFT_OUT = "the document states an evaluation fact (the leak audit)"
MIN_HEARD_SAMPLES = 400  # the log-mel front end needs more than half its 400-sample window


@dataclass
class PreparedDoc:
    source: int  # the source's place in the run's list
    index: int  # the document's place in this process's share of the source
    doc_id: str
    spans: list[tuple[str, str | None]] = field(default_factory=list)  # (text, key of the heard stretch | None)
    features: list[torch.Tensor] = field(default_factory=list)  # the log-mel of each heard stretch, in order
    samples: list[int] = field(default_factory=list)  # samples of each heard stretch
    dropped: dict[str, str] = field(default_factory=dict)  # utterance id -> why it was left out
    bad_rows: list[str] = field(default_factory=list)  # rows of the source before it that could not be read
    utterances: int = 0

    @property
    def seconds(self) -> float:
        return sum(self.samples) / SAMPLE_RATE


# A word timer: an utterance's audio -> (its transcript's words timed, the ASR's character error rate), or None when
# its timings cannot be had; `salad_core.speech_data.timings` gives the ASR's.
Timer = Callable[[Utterance, np.ndarray], tuple[tuple[Word, ...], float] | None]


class SourceDocuments(torch.utils.data.IterableDataset):
    def __init__(self, source: SpeechSource, source_index: int, log_mel, *, seed: int, rank: int = 0,
                 world_size: int = 1, start: int = 0, ranges: SpanRanges = SpanRanges(), timer: Timer | None = None,
                 max_cer: float = 0.3, max_words: int = MAX_DOC_WORDS, left_out: frozenset[int] = frozenset()):
        super().__init__()
        self.left_out = left_out  # the documents (by their number in the source) not to train on: the leak audit's
        self.source, self.source_index, self.log_mel = source, source_index, log_mel
        self.seed, self.rank, self.world_size, self.start = seed, rank, world_size, start
        self.ranges, self.timer, self.max_cer, self.max_words = ranges, timer, max_cer, max_words

    def __iter__(self) -> Iterator[PreparedDoc]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        bad: list[str] = []
        rows = iter_utterances(self.source, on_bad=lambda err: bad.append(str(err)))
        for number, chunk in enumerate(document_chunks(rows, self.max_words)):
            index = number // self.world_size
            mine = number % self.world_size == self.rank and index >= self.start
            if not mine or (index - self.start) % workers != worker:
                bad.clear()  # the process and worker whose document it is report them (a run resumed, no one again)
                continue
            doc = self.prepare(number, index, chunk)
            doc.bad_rows, bad = bad, []
            yield doc

    def prepare(self, number: int, index: int, chunk: list[Utterance]) -> PreparedDoc:
        """Decode the chunk's audio, time its long utterances, plan its spans, run the front end on what is heard."""
        doc = PreparedDoc(self.source_index, index, f"{chunk[0].doc}#{number}", utterances=len(chunk))
        if number in self.left_out:
            doc.dropped[doc.doc_id] = LEFT_OUT
            return doc
        audio = {}
        for utt in chunk:
            try:
                audio[utt.utt_id] = utt.load()
            except AudioError as err:
                doc.dropped[utt.utt_id] = str(err)
        timings = {u.utt_id: self._timed(u, audio[u.utt_id], doc) for u in chunk if u.utt_id in audio}
        kept = [u for u in chunk if u.utt_id in audio and u.utt_id not in doc.dropped]
        if not kept:
            return doc
        rng = random.Random(f"{self.seed}/{self.source.spec}/{number}")
        for text, heard in plan_spans(kept, rng, self.ranges, lambda u: timings.get(u.utt_id)):
            if heard is not None and (stretch := _stretch(audio[heard.utterance.utt_id], heard)).size:
                doc.features.append(self.log_mel.padded(stretch))
                doc.samples.append(stretch.size)
                doc.spans.append((text, heard.key))
            else:
                doc.spans.append((text, None))
        return doc

    def _timed(self, utt: Utterance, audio: np.ndarray, doc: PreparedDoc) -> tuple[Word, ...] | None:
        """The words' timings: the source's, else the timer's for an utterance too long to be one speech span."""
        if utt.words or self.timer is None or len(utt.text.split()) <= self.ranges.speech_words[1]:
            return utt.words
        timing = self.timer(utt, audio)
        if timing is None:
            return None
        words, cer = timing
        if cer > self.max_cer:
            doc.dropped[utt.utt_id] = f"transcript disagrees with the ASR: CER {cer:.2f} > {self.max_cer:.2f}"
            return None
        return words


def _stretch(audio: np.ndarray, heard: Heard) -> np.ndarray:
    """The heard samples (all of the utterance, or its timed stretch); empty when too short to be heard."""
    if heard.start is None:
        out = audio
    else:
        out = audio[int(heard.start * SAMPLE_RATE) : int(np.ceil(heard.end * SAMPLE_RATE))]
    return out if out.size > MIN_HEARD_SAMPLES else out[:0]



class AsrTimer:
    """A `Timer` by PocketSphinx's forced alignment of the transcript, with the cascade's Whisper (base: fewer good
    transcripts it disagrees with, and the closer word times where the alignment fails, of the two offline models;
    benchmarks/word_timings.py) judging the transcript: each data worker loads both on first use, on one CPU thread,
    and every utterance is timed once, then read from the disk cache (`timing_cache`)."""

    def __init__(self, model: str = "whisper-base"):
        self.model = model
        self._asr = None

    def __call__(self, utterance: Utterance, audio: np.ndarray) -> tuple[tuple[Word, ...], float] | None:
        from salad_core.asr import Transcriber
        from salad_core.speech_data.timing_cache import cached_word_timings

        if self._asr is None:
            self._asr = Transcriber(self.model, threads=1)
        try:
            timing = cached_word_timings(audio, utterance.text, self._asr)
        except ValueError:  # a transcript without words
            return None
        return (timing.words, timing.cer) if timing.words else None
