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
    def __init__(self, world, seed: int, replay_prob: float, rank: int = 0, world_size: int = 1, encoder=None,
                 synthetic=None, synthetic_prob: float | None = None):
        self.world, self.seed, self.replay_prob, self.encoder = world, seed, replay_prob, encoder
        self.rank, self.world_size = rank, world_size
        self.speech_docs = _spoken(world.speech_docs())
        self.text_docs = world.text_corpus()
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
        self.position = {"speech": [0, 0], "text": [0, 0], "synthetic": [0, 0]}  # [epoch, cursor] per stream
        # Seeded as rank 0's always was: a single-process run draws exactly what it drew before the coin was shared.
        self.coin = np.random.default_rng([seed, 0, 7])

    # -- resumable state ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"position": {k: list(v) for k, v in self.position.items()}, "coin": self.coin.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.position.update({k: list(v) for k, v in state["position"].items()})
        self.coin.bit_generator.state = state["coin"]

    # -- sampling ----------------------------------------------------------------------------------------------

    def _order(self, stream: str, n: int, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch, STREAMS.index(stream)]).permutation(n)
        return order[self.rank :: self.world_size]  # each process its own share

    def _take(self, stream: str, docs: list, count: int) -> list:
        out = []
        while len(out) < count:
            epoch, cursor = self.position[stream]
            order = self._order(stream, len(docs), epoch)
            if cursor >= len(order):
                self.position[stream] = [epoch + 1, 0]
                continue
            out.append(docs[order[cursor]])
            self.position[stream] = [epoch, cursor + 1]
        return out

    def next_batch(self, batch_size: int, allow_replay: bool = True, ctc_only: bool = False) -> Batch:
        """A replay batch (with probability replay_prob, when allowed) or a speech batch; `ctc_only` marks a speech
        batch for the CTC warm-up (no replay then)."""
        replay = bool(self.coin.random() < self.replay_prob) and allow_replay and not ctc_only
        if replay:
            return Batch(docs=[[Segment(text)] for text in self._take("text", self.text_docs, batch_size)], replay=True)
        # Stage II: each document of the batch comes from the synthetic speech with probability synthetic_prob
        # (a batch is a sample of the mixture; with no synthetic speech no coin is thrown, so Stage I is unchanged)
        n_synthetic = int((self.coin.random(batch_size) < self.synthetic_prob).sum()) if self.synthetic_prob > 0 else 0
        natural = self._take("speech", self.speech_docs, batch_size - n_synthetic)
        synthetic = self._take("synthetic", self.synthetic_docs, n_synthetic)
        segments = [doc.segments() for doc in natural + synthetic]
        frames = _frames(self.world, natural, self.encoder) + _frames(self.synthetic, synthetic, self.encoder)
        return Batch(docs=segments, frames=frames, speech_s=float(sum(d.seconds for d in natural)),
                     synthetic=n_synthetic, ctc_only=ctc_only)


def _frames(source, docs: list, encoder) -> list:
    clip_ids = [span.clip_id for doc in docs for span in doc.spans if span.clip_id]
    return source.features(clip_ids, encoder) if clip_ids else []


def _spoken(docs: list) -> list:
    return [d for d in docs if any(span.clip_id for span in d.spans)]
