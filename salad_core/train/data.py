"""Training batches from a world: interleaved natural-speech documents, and text-only replay batches.

A speech batch holds natural-speech documents whose spans alternate text and speech (each speech span synthesized
on its own, so its words are aligned by construction; its Whisper frames are cached by the world). A replay batch
(probability `replay_prob`) holds documents of the broad text corpus, read by both student and teacher: it trains
the student toward the teacher on text and so guards against forgetting (SALAD, Stage I).

Stage II adds a second speech source, the synthetic documents a selection round chose (`SelectedSpeech`): each
document of a speech batch is drawn from it with probability `synthetic_prob`, else from the natural speech.

The sampler is deterministic and resumable: documents are visited in a seeded permutation per epoch (each process
takes every `world_size`-th document of it), and `state_dict()` holds the epoch, the cursor and the coin's generator
state. The coin (replay or speech, and Stage II's synthetic share) is the same on every process, so a global batch is
one kind of batch, as on a single process.
"""

from __future__ import annotations

import numpy as np

from salad_core.assets import AssetError
from salad_core.errors import InputError
from salad_core.model.processing import Segment
from salad_core.train.step import Batch

STREAMS = ("speech", "text", "synthetic")  # the order seeds each stream's permutation


class WorldBatches:
    described = None  # the world's speech needs no record of sources (`StreamBatches` keeps its own)

    def __init__(self, world, seed: int, replay_prob: float, rank: int = 0, world_size: int = 1, encoder=None,
                 synthetic=None, synthetic_prob: float | None = None, replay=None):
        self.world, self.seed, self.replay_prob, self.encoder = world, seed, replay_prob, encoder
        self.rank, self.world_size = rank, world_size
        self.speech_docs = _spoken(world.speech_docs())
        if not self.speech_docs:
            raise AssetError(f"world {world.name} has no natural-speech documents. Fix: rebuild it (salad world build).")
        self.synthetic = synthetic
        self.synthetic_docs = _spoken(synthetic.speech_docs()) if synthetic is not None else []
        if synthetic is not None and len(self.synthetic_docs) < world_size:
            raise InputError(f"selection round {synthetic.round_id} selected {len(self.synthetic_docs)} documents, "
                             f"fewer than the {world_size} processes. Fix: rerun it with a larger budget.")
        if synthetic is None:
            synthetic_prob = 0.0
        elif synthetic_prob is None:  # documents drawn uniformly from the pooled speech, by hours
            hours = [sum(d.seconds for d in docs) for docs in (self.synthetic_docs, self.speech_docs)]
            synthetic_prob = hours[0] / sum(hours)
        self.synthetic_prob = synthetic_prob
        self.streams = {name: Shuffled(docs, seed, name, rank, world_size) for name, docs in
                        (("speech", self.speech_docs), ("synthetic", self.synthetic_docs))}
        # the run's own text (`--text`: stream_batches.StreamedText), else the world's text corpus
        self.streams["text"] = replay if replay is not None else Shuffled(world.text_corpus(), seed, "text", rank,
                                                                          world_size)
        self.coin = coin(seed)

    @property
    def mean_doc_s(self) -> float:
        return sum(d.seconds for d in self.speech_docs) / len(self.speech_docs)

    def state_dict(self) -> dict:
        return {"position": {k: stream.position for k, stream in self.streams.items()},
                "coin": self.coin.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        for name, position in state["position"].items():
            self.streams[name].position = position
        self.coin.bit_generator.state = state["coin"]

    def next_batch(self, batch_size: int, allow_replay: bool = True, ctc_only: bool = False) -> Batch:
        """A replay batch (with probability replay_prob, when allowed) or a speech batch; `ctc_only` marks a speech
        batch for the CTC warm-up (no replay then)."""
        if replay_drawn(self.coin, self.replay_prob, allow_replay, ctc_only):
            return replay_batch(self.streams["text"], batch_size)
        # Stage II: each document of the batch comes from the synthetic speech with probability synthetic_prob
        # (a batch is a sample of the mixture; with no synthetic speech no coin is thrown, so Stage I is unchanged)
        n_synthetic = int((self.coin.random(batch_size) < self.synthetic_prob).sum()) if self.synthetic_prob > 0 else 0
        natural = self.streams["speech"].take(batch_size - n_synthetic)
        synthetic = self.streams["synthetic"].take(n_synthetic)
        segments = [doc.segments() for doc in natural + synthetic]
        frames = _frames(self.world, natural, self.encoder) + _frames(self.synthetic, synthetic, self.encoder)
        return Batch(docs=segments, frames=frames, speech_s=float(sum(d.seconds for d in natural)),
                     synthetic=n_synthetic, ctc_only=ctc_only)


class Shuffled:
    """A list of documents visited in a seeded permutation per epoch, each process its own share of it; resumable:
    `position` is [epoch, cursor]."""

    def __init__(self, docs: list, seed: int, name: str, rank: int = 0, world_size: int = 1):
        self.docs, self.seed, self.stream, self.rank, self.world_size = docs, seed, STREAMS.index(name), rank, world_size
        self.position = [0, 0]

    def _order(self, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch, self.stream]).permutation(len(self.docs))
        return order[self.rank :: self.world_size]  # each process its own share

    def take(self, count: int) -> list:
        out = []
        while len(out) < count:
            epoch, cursor = self.position
            order = self._order(epoch)
            if cursor >= len(order):
                self.position = [epoch + 1, 0]
                continue
            out.append(self.docs[order[cursor]])
            self.position = [epoch, cursor + 1]
        return out


def coin(seed: int) -> np.random.Generator:
    """The run's coin (replay or speech; which speech): the same on every process, so a global batch is one kind of
    batch. Seeded as rank 0's always was: a single-process run draws what it drew before the coin was shared."""
    return np.random.default_rng([seed, 0, 7])


def replay_drawn(generator: np.random.Generator, replay_prob: float, allow_replay: bool, ctc_only: bool) -> bool:
    """Whether the next batch is text replay (the coin is thrown for every batch, so the draws stay in step)."""
    return bool(generator.random() < replay_prob) and allow_replay and not ctc_only


def replay_batch(text: Shuffled, batch_size: int) -> Batch:
    return Batch(docs=[[Segment(t)] for t in text.take(batch_size)], replay=True)


def _frames(source, docs: list, encoder) -> list:
    clip_ids = [span.clip_id for doc in docs for span in doc.spans if span.clip_id]
    return source.features(clip_ids, encoder) if clip_ids else []


def _spoken(docs: list) -> list:
    return [d for d in docs if any(span.clip_id for span in d.spans)]
