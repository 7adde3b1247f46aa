"""Streamed documents in windows: a source is read a window at a time; the window is sorted by length and cut into
batches (so the documents of a batch last about as long, and little of it is padding), given in a seeded order.

    window = SourceWindows(open_at, index=0, seed=0, window_docs=1024, stats=Counter(), kind=SPEECH)
    batch = window.next(16)     # the next 16 documents; the state says which, so a resumed run goes on from there

`open_at(start)` opens the source at its `start`-th document (this process's share). The state is (epoch, the
window's first document, the batches given from it): a resumed run reads that window again and goes on. Documents
that do not fill a batch are left out of the epoch, which ones the seed says. A `kind` says what a document's length
is, which documents can be trained on, and what is counted of them (`SPEECH`: `PreparedDoc`s; `TEXT`: strings).
`Mixture` draws which of several weighted sources gives the next batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from salad_core.errors import InputError


def drop_reason(message: str) -> str:
    """The kind of a dropped utterance's problem, for the counts a run reports."""
    kinds = {"no audio file": "missing audio file", "has no audio": "no audio", "declares": "wrong sample rate",
             "CER": "transcript disagrees with the ASR", "silent": "silent audio", "empty": "empty audio",
             "decode": "undecodable audio", "NaN": "non-finite samples",
             "evaluation fact": "documents stating an evaluation fact"}
    return next((kind for key, kind in kinds.items() if key in message), "other")


def _count_speech(stats: Counter, doc) -> None:
    stats["documents"] += 1
    stats["utterances"] += doc.utterances
    stats["bad rows"] += len(doc.bad_rows)
    stats["heard_s"] += doc.seconds
    for message in doc.dropped.values():
        stats[f"dropped: {drop_reason(message)}"] += 1
    if not any(key for _, key in doc.spans):
        stats["documents with nothing heard"] += 1


def _count_text(stats: Counter, text: str) -> None:
    stats["documents"] += 1
    stats["words"] += len(text.split())


@dataclass(frozen=True)
class Kind:
    length: Callable  # a document's length, to sort a window by
    usable: Callable  # whether a document can be trained on
    count: Callable[[Counter, object], None]  # what the run's report counts of a document


SPEECH = Kind(length=lambda doc: (doc.seconds, doc.index), usable=lambda doc: any(key for _, key in doc.spans),
              count=_count_speech)
TEXT = Kind(length=lambda text: len(text.split()), usable=lambda text: bool(text.strip()), count=_count_text)


class SourceWindows:
    """One source's documents, window by window; `next(size)` gives the next batch of `size` documents."""

    def __init__(self, open_loader: Callable[[int], Iterator], index: int, seed: int, window_docs: int,
                 stats: Counter, kind: Kind = SPEECH):
        self.open_loader, self.index, self.seed, self.window_docs = open_loader, index, seed, window_docs
        self.stats, self.kind = stats, kind
        self.epoch, self.start, self.given = 0, 0, 0
        self.batches: list[list] | None = None
        self.loader: Iterator | None = None
        self.read = 0  # documents the current window took from the loader

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "given": self.given}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.start, self.given = state["epoch"], state["start"], state["given"]
        self.batches = self.loader = None

    def next(self, size: int) -> list:
        empty_epochs = 0
        while self.batches is None or self.given >= len(self.batches):
            if self.batches is not None:  # the window is used up: the next one
                self._advance()
            self._fill(size)
            empty_epochs = empty_epochs + 1 if not self.batches and self.start == 0 else 0
            if empty_epochs > 1:
                raise InputError(f"source {self.index + 1} gives fewer than {size} usable documents. Fix: check "
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
            for doc in docs:
                self.kind.count(self.stats, doc)
        usable = sorted((d for d in docs if self.kind.usable(d)), key=self.kind.length)
        rng = np.random.default_rng([self.seed, self.index, self.epoch, self.start])
        # the documents that do not fill a batch are left out of this epoch: which ones, the seed says
        skip = int(rng.integers(len(usable) % size + 1))
        batches = [usable[k : k + size] for k in range(skip, len(usable) - size + 1, size)]
        self.batches = [batches[k] for k in rng.permutation(len(batches))]
        if self.read < self.window_docs:
            self.loader = None  # the source is read to its end: the next window starts an epoch


class Mixture:
    """Weighted sources: each batch from one of them, drawn by `generator` (the caller's, so draws stay in step)."""

    def __init__(self, windows: list[SourceWindows], weights: list[float], generator: np.random.Generator):
        total = float(sum(weights))
        self.windows, self.weights, self.generator = windows, np.array([w / total for w in weights]), generator

    def next(self, size: int) -> list:
        which = int(self.generator.choice(len(self.windows), p=self.weights)) if len(self.windows) > 1 else 0
        return self.windows[which].next(size)

    def state_dict(self) -> list[dict]:
        return [w.state_dict() for w in self.windows]

    def load_state_dict(self, state: list[dict]) -> None:
        for window, saved in zip(self.windows, state):
            window.load_state_dict(saved)
