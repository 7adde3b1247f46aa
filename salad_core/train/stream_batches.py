"""Training batches from a user's speech corpora (`salad train --speech SOURCE`), streamed, and text replay.

Each source is read by DataLoader workers (`speech_data.stream.SourceDocuments`: audio decoded, spans planned, the
log-mel front end run) and comes in windows of `window_docs` documents. A window is sorted by length and cut into
batches, so the documents of a batch last about as long and little of a batch is padding; the batches of a window
are given in a seeded order. The encoder runs here, in the training process, on its device.

Which source gives the next speech batch is drawn by weight with the run's coin, as is the replay coin
(`train.data`). The state (per source: the epoch, the first document of the current window, the batches given from
it; the coin; the replay text's place) is in every checkpoint: a resumed run reads the window again and goes on with
the batch it would have seen next.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import islice

import numpy as np

from salad_core.errors import InputError
from salad_core.model.processing import Segment
from salad_core.speech_data.stream import PreparedDoc
from salad_core.train.data import Shuffled, coin, replay_batch, replay_drawn
from salad_core.train.step import Batch

log = logging.getLogger(__name__)
WINDOW_DOCS = 1024  # documents per window: the length sort's reach, and a shuffle over that many


def drop_reason(message: str) -> str:
    """The kind of a dropped utterance's problem, for the counts a run reports."""
    kinds = {"no audio file": "missing audio file", "has no audio": "no audio", "declares": "wrong sample rate",
             "CER": "transcript disagrees with the ASR", "silent": "silent audio", "empty": "empty audio",
             "decode": "undecodable audio", "NaN": "non-finite samples",
             "evaluation fact": "documents stating an evaluation fact"}
    return next((kind for key, kind in kinds.items() if key in message), "other")


class SourceWindows:
    """One source's documents, window by window; `next(size)` gives the next batch of `size` documents."""

    def __init__(self, open_loader: Callable[[int], Iterator[PreparedDoc]], index: int, seed: int,
                 window_docs: int, stats: Counter):
        self.open_loader, self.index, self.seed, self.window_docs, self.stats = open_loader, index, seed, window_docs, stats
        self.epoch, self.start, self.given = 0, 0, 0
        self.batches: list[list[PreparedDoc]] | None = None
        self.loader: Iterator[PreparedDoc] | None = None
        self.read = 0  # documents the current window took from the loader

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "given": self.given}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.start, self.given = state["epoch"], state["start"], state["given"]
        self.batches = self.loader = None

    def next(self, size: int) -> list[PreparedDoc]:
        empty_epochs = 0
        while self.batches is None or self.given >= len(self.batches):
            if self.batches is not None:  # the window is used up: the next one
                self._advance()
            self._fill(size)
            empty_epochs = empty_epochs + 1 if not self.batches and self.start == 0 else 0
            if empty_epochs > 1:
                raise InputError(f"speech source {self.index + 1} gives fewer than {size} usable documents. Fix: check "
                                 f"its rows (the run's notes count what was dropped and why), or pass a smaller "
                                 f"--batch-size.")
        batch = self.batches[self.given]
        self.given += 1
        return batch

    def _advance(self) -> None:
        exhausted = self.read < self.window_docs
        self.start, self.given, self.batches = (0 if exhausted else self.start + self.read), 0, None
        if exhausted:
            self.epoch, self.loader = self.epoch + 1, None

    def _fill(self, size: int) -> None:
        """Read the window at `start`, sort it by length, cut it into batches and order them by the seed."""
        if self.loader is None:
            self.loader = self.open_loader(self.start)
        docs = list(islice(self.loader, self.window_docs))
        self.read = len(docs)
        if self.given == 0 and self.epoch == 0:  # each document counted once, also when a resumed run reads it again
            self._count(docs)
        usable = sorted((d for d in docs if any(key for _, key in d.spans)), key=lambda d: (d.seconds, d.index))
        rng = np.random.default_rng([self.seed, self.index, self.epoch, self.start])
        # the documents that do not fill a batch are left out of this epoch: which ones, the seed says
        skip = int(rng.integers(len(usable) % size + 1))
        batches = [usable[k : k + size] for k in range(skip, len(usable) - size + 1, size)]
        self.batches = [batches[k] for k in rng.permutation(len(batches))]
        if self.read < self.window_docs:
            self.loader = None  # the source is read to its end: the next window starts an epoch

    def _count(self, docs: list[PreparedDoc]) -> None:
        for doc in docs:
            self.stats["documents"] += 1
            self.stats["utterances"] += doc.utterances
            self.stats["bad rows"] += len(doc.bad_rows)
            self.stats["heard_s"] += doc.seconds
            for message in doc.dropped.values():
                self.stats[f"dropped: {drop_reason(message)}"] += 1
            if not any(key for _, key in doc.spans):
                self.stats["documents with nothing heard"] += 1


class StreamBatches:
    """Speech batches from weighted streamed sources, replay batches from `text_docs` (`WorldBatches`' interface)."""

    synthetic_prob = 0.0  # Stage II reads a world's selection: not streamed sources

    def __init__(self, loaders: list[Callable[[int], Iterator[PreparedDoc]]], weights: list[float],
                 text_docs: list[str], encoder, *, seed: int, replay_prob: float, rank: int = 0, world_size: int = 1,
                 window_docs: int = WINDOW_DOCS, described: list[dict] | None = None,
                 leak_audit: list[dict] | None = None):
        self.described = described or [{} for _ in loaders]  # each source as the run records it (`describe`)
        self.leak_audit = leak_audit or []  # what the leak audit found, per source (`SpeechAudit.summary`)
        self.stats = [Counter() for _ in loaders]
        self.sources = [SourceWindows(open_loader, k, seed, window_docs, self.stats[k])
                        for k, open_loader in enumerate(loaders)]
        total = float(sum(weights))
        self.weights = np.array([w / total for w in weights])
        self.text = Shuffled(text_docs, seed, "text", rank, world_size)
        self.encoder, self.replay_prob, self.coin = encoder, replay_prob, coin(seed)
        self._mean_doc_s: float | None = None

    @property
    def mean_doc_s(self) -> float:
        """Seconds heard per document, from the first source's first batch (the sources' sizes are not known ahead)."""
        if self._mean_doc_s is None:
            peek = SourceWindows(self.sources[0].open_loader, 0, 0, self.sources[0].window_docs, Counter())
            docs = peek.next(1)
            self._mean_doc_s = max(1e-3, float(np.mean([d.seconds for d in docs])))
        return self._mean_doc_s

    def state_dict(self) -> dict:
        return {"sources": [s.state_dict() for s in self.sources], "text": list(self.text.position),
                "coin": self.coin.bit_generator.state, "stats": [dict(s) for s in self.stats]}

    def load_state_dict(self, state: dict) -> None:
        for source, saved in zip(self.sources, state["sources"]):
            source.load_state_dict(saved)
        for stats, saved in zip(self.stats, state["stats"]):
            stats.clear()
            stats.update(saved)
        self.text.position = list(state["text"])
        self.coin.bit_generator.state = state["coin"]

    def report(self) -> list[dict]:
        """Per source, what this process read of it in its first pass (documents, utterances, hours heard, what it
        dropped and why), and the passes it began since."""
        return [{"spec": about.get("spec"), "epochs": window.epoch, "documents": int(stats["documents"]), "utterances": int(stats["utterances"]),
                 "heard_hours": stats["heard_s"] / 3600, "bad_rows": int(stats["bad rows"]),
                 "dropped": {k.removeprefix("dropped: "): int(v) for k, v in stats.items() if k.startswith("dropped: ")},
                 "documents_with_nothing_heard": int(stats["documents with nothing heard"])}
                for about, stats, window in zip(self.described, self.stats, self.sources)]

    def record(self, store, run_id: str, main: bool) -> list[dict]:
        """The report, also as the run's notes (written by the main process: it reports its own share)."""
        read = self.report()
        for source in read if main else []:
            store.add_note(run_id, report_note(source))
        for found in self.leak_audit if main else []:
            store.add_note(run_id, audit_note(found))
        return read

    def next_batch(self, batch_size: int, allow_replay: bool = True, ctc_only: bool = False) -> Batch:
        if replay_drawn(self.coin, self.replay_prob, allow_replay, ctc_only):
            return replay_batch(self.text, batch_size)
        source = int(self.coin.choice(len(self.sources), p=self.weights)) if len(self.sources) > 1 else 0
        docs = self.sources[source].next(batch_size)
        features = [f for d in docs for f in d.features]
        samples = [n for d in docs for n in d.samples]
        frames = []
        for start in range(0, len(features), self.encoder.batch_size):
            frames += self.encoder.encode_features(features[start : start + self.encoder.batch_size],
                                                   samples[start : start + self.encoder.batch_size])
        segments = [[Segment((" " if i else "") + text, clip_id=key) for i, (text, key) in enumerate(d.spans)]
                    for d in docs]
        return Batch(docs=segments, frames=frames, speech_s=float(sum(d.seconds for d in docs)), ctc_only=ctc_only)


def speech_columns(given: list[str] | None) -> dict[str, str]:
    """`--speech-columns audio=a,text=t` as {field: column}."""
    columns = {}
    for pair in given or []:
        field_name, sign, column = pair.partition("=")
        if not sign or not field_name.strip() or not column.strip():
            raise InputError(f"--speech-columns {pair!r} is not FIELD=COLUMN. Fix: e.g. --speech-columns "
                             f"text=sentence,doc=chapter_id")
        columns[field_name.strip()] = column.strip()
    return columns


def streamed(config, encoder, world, rank: int, world_size: int) -> StreamBatches:
    """The batches of a run's `--speech` sources (`TrainConfig.speech`), read by `config.data_workers` workers,
    audited first against what `world` evaluates (train/speech_audit.py); replay from the world's text."""
    import copy

    import torch

    from salad_core.speech_data.documents import SpanRanges
    from salad_core.speech_data.sources import SpeechSource, describe
    from salad_core.speech_data.stream import AsrTimer, SourceDocuments

    from salad_core.train.speech_audit import audit_speech

    columns = speech_columns(config.speech_columns)
    sources = []
    for spec in config.speech:
        source = SpeechSource.parse(spec)
        sources.append(SpeechSource.parse(spec, columns) if source.kind == "hf" and columns else source)
    text_docs = world.text_corpus()
    audit = audit_speech(world, sources, text_docs)
    if rank == 0:
        log.info("leak audit of the run's speech and replay text: eval facts stated, per task and source "
                    "(speech documents that state one are left out)\n%s", audit.table())
    defaults = SpanRanges()
    ranges = SpanRanges(tuple(config.speech_span_words or defaults.speech_words),
                        tuple(config.text_span_words or defaults.text_words))
    timer = AsrTimer() if config.word_timings == "auto" else None
    log_mel = copy.deepcopy(encoder.log_mel).cpu()  # the workers' front end; the encoder stays on its device
    workers = config.data_workers

    def opener(source, index: int):
        def open_at(start: int) -> Iterator[PreparedDoc]:
            dataset = SourceDocuments(source, index, log_mel, seed=config.seed, rank=rank, world_size=world_size,
                                      start=start, ranges=ranges, timer=timer, max_cer=config.max_cer,
                                      left_out=audit.documents_left_out(source))
            return iter(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                                    worker_init_fn=_one_thread, prefetch_factor=4 if workers else None))
        return open_at

    return StreamBatches([opener(s, k) for k, s in enumerate(sources)], [s.weight for s in sources], text_docs,
                         encoder, seed=config.seed, replay_prob=config.replay_prob, rank=rank, world_size=world_size,
                         described=[describe(s) for s in sources], leak_audit=audit.summary())


def _one_thread(_worker: int) -> None:
    import torch

    torch.set_num_threads(1)  # a worker's front end is small; the cores are the training step's


def report_note(read: dict) -> str:
    """One source's `StreamBatches.report()` entry as a run's note."""
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(read["dropped"].items())) or "none"
    return (f"speech source {read['spec']}: {read['documents']} documents of {read['utterances']} utterances, "
            f"{read['heard_hours']:.3f} h heard per pass, {read['epochs'] + 1} passes begun; rows that could not be "
            f"read: {read['bad_rows']}; utterances dropped: {dropped}; documents with nothing left to hear: "
            f"{read['documents_with_nothing_heard']}")


def audit_note(found: dict) -> str:
    """One source's leak audit (`SpeechAudit.summary()` entry) as a run's note."""
    left_out = found["documents_left_out"]
    what = "" if left_out is None else f"; {left_out} documents left out of training"
    examples = f" (e.g. {', '.join(found['examples'])})" if found["examples"] else ""
    return f"leak audit of {found['source']}: {found['facts_stated']} evaluation facts stated{examples}{what}"
