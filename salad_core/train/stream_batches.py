"""Training batches from a user's speech corpora (`salad train --speech SOURCE`), streamed, and text replay from the
world or from the user's text (`--text SOURCE`), streamed too.

Each speech source is read by DataLoader workers (`speech_data.stream.SourceDocuments`: audio decoded, spans
planned, the log-mel front end run) and comes in length-sorted windows (`train/windows.py`). The encoder runs here,
in the training process, on its device.

Which source gives the next speech batch is drawn by weight with the run's coin, as is the replay coin
(`train.data`). The state (per source its window and the batches given from it, the coin, the replay text's place)
is in every checkpoint: a resumed run reads the window again and goes on with the batch it would have seen next.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

from salad_core.errors import InputError
from salad_core.model.processing import Segment
from salad_core.speech_data.sources import SpeechSource
from salad_core.speech_data.stream import PreparedDoc
from salad_core.train.data import coin, replay_batch, replay_drawn
from salad_core.train.step import Batch
from salad_core.train.windows import TEXT, Mixture, SourceWindows

log = logging.getLogger(__name__)
WINDOW_DOCS = 1024  # documents per window: the length sort's reach, and a shuffle over that many


class StreamedText:
    """Replay text from weighted streamed sources (`--text`), with `Shuffled`'s interface: `take(n)`, and a
    `position` that is its resumable state."""

    def __init__(self, loaders: list[Callable[[int], Iterator[str]]], weights: list[float], seed: int,
                 window_docs: int = WINDOW_DOCS):
        self.stats = [Counter() for _ in loaders]
        self.generator = np.random.default_rng([seed, 1, 11])  # its own: the run's coin draws as without --text
        windows = [SourceWindows(open_at, k, seed, window_docs, self.stats[k], TEXT) for k, open_at in enumerate(loaders)]
        self.mixture = Mixture(windows, weights, self.generator)

    def take(self, count: int) -> list[str]:
        return self.mixture.next(count)

    @property
    def position(self) -> dict:
        return {"windows": self.mixture.state_dict(), "generator": self.generator.bit_generator.state,
                "stats": [dict(s) for s in self.stats]}

    @position.setter
    def position(self, state: dict) -> None:
        self.mixture.load_state_dict(state["windows"])
        self.generator.bit_generator.state = state["generator"]
        for stats, saved in zip(self.stats, state["stats"]):
            stats.clear()
            stats.update(saved)


class StreamBatches:
    """Speech batches from weighted streamed sources, replay batches from `replay` (`Shuffled` or `StreamedText`):
    `WorldBatches`' interface."""

    synthetic_prob = 0.0  # Stage II reads a world's selection: not streamed sources

    def __init__(self, loaders: list[Callable[[int], Iterator[PreparedDoc]]], weights: list[float], replay, encoder,
                 *, seed: int, replay_prob: float, window_docs: int = WINDOW_DOCS,
                 described: list[dict] | None = None, leak_audit: list[dict] | None = None):
        self.described = described or [{} for _ in loaders]  # each source as the run records it (`describe`)
        self.leak_audit = leak_audit or []  # what the leak audit found, per source (`SpeechAudit.summary`)
        self.stats = [Counter() for _ in loaders]
        self.coin = coin(seed)
        self.sources = [SourceWindows(open_at, k, seed, window_docs, self.stats[k]) for k, open_at in enumerate(loaders)]
        self.speech = Mixture(self.sources, weights, self.coin)
        self.text, self.encoder, self.replay_prob = replay, encoder, replay_prob
        self._mean_doc_s: float | None = None

    @property
    def mean_doc_s(self) -> float:
        """Seconds heard per document, from a peek at the first source's start (sizes are not known ahead)."""
        if self._mean_doc_s is None:
            docs = SourceWindows(self.sources[0].open_loader, 0, 0, 32, Counter()).next(8)
            self._mean_doc_s = max(1e-3, float(np.mean([d.seconds for d in docs])))
        return self._mean_doc_s

    def state_dict(self) -> dict:
        return {"sources": self.speech.state_dict(), "text": self.text.position, "coin": self.coin.bit_generator.state,
                "stats": [dict(s) for s in self.stats]}

    def load_state_dict(self, state: dict) -> None:
        self.speech.load_state_dict(state["sources"])
        for stats, saved in zip(self.stats, state["stats"]):
            stats.clear()
            stats.update(saved)
        self.text.position = state["text"]
        self.coin.bit_generator.state = state["coin"]

    def report(self) -> list[dict]:
        """Per source, what this process read of it in its first pass (documents, utterances, hours heard, what it
        dropped and why), and the passes it began since."""
        return [{"spec": about.get("spec"), "epochs": window.epoch, "documents": int(stats["documents"]),
                 "utterances": int(stats["utterances"]), "heard_hours": stats["heard_s"] / 3600,
                 "bad_rows": int(stats["bad rows"]),
                 "dropped": {k.removeprefix("dropped: "): int(v) for k, v in stats.items() if k.startswith("dropped")},
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
        docs = self.speech.next(batch_size)
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


def speech_sources(specs: list[str], columns: list[str] | None) -> list[SpeechSource]:
    """The `SpeechSource`s of `--speech` values, `--speech-columns` applied to those from `datasets` (the others'
    fields are fixed, so the columns of a run that mixes kinds are not an error)."""
    mapping = speech_columns(columns)
    sources = []
    for spec in specs:
        source = SpeechSource.parse(spec)
        sources.append(SpeechSource.parse(spec, mapping) if source.kind == "hf" and mapping else source)
    return sources


def replay_text(config, world, rank: int, world_size: int):
    """The replay batches' text: the world's (`Shuffled`), or the run's `--text` sources streamed (`StreamedText`);
    a world run's own `--text` is audited here (a `--speech` run's, with its speech, in `streamed`)."""
    from salad_core.speech_data.texts import TextSource, iter_texts
    from salad_core.train.data import Shuffled
    from salad_core.train.speech_audit import audit_speech

    if not config.text:
        return Shuffled(world.text_corpus(), config.seed, "text", rank, world_size)
    sources = [TextSource.parse(spec, config.text_column) for spec in config.text]
    if not config.speech and rank == 0:
        log.info("leak audit of the run's replay text: eval facts stated, per task\n%s",
                 audit_speech(world, [], replay_texts(config, world)).table())

    def opener(source: TextSource):
        def open_at(start: int) -> Iterator[str]:
            pieces = enumerate(iter_texts(source))
            return (p for k, p in pieces if k % world_size == rank and k // world_size >= start)
        return open_at

    return StreamedText([opener(s) for s in sources], [s.weight for s in sources], config.seed)


def replay_texts(config, world) -> Iterator[str]:
    """Every replay text once, in order (for the leak audit)."""
    from salad_core.speech_data.texts import TextSource, iter_texts

    if not config.text:
        yield from world.text_corpus()
        return
    for spec in config.text:
        yield from iter_texts(TextSource.parse(spec, config.text_column))


def streamed(config, encoder, world, replay, rank: int, world_size: int) -> StreamBatches:
    """The batches of a run's `--speech` sources (`TrainConfig.speech`), read by `config.data_workers` workers,
    audited first, with the replay text, against what `world` evaluates (train/speech_audit.py)."""
    import copy

    import torch

    from salad_core.speech_data.documents import SpanRanges
    from salad_core.speech_data.sources import describe
    from salad_core.speech_data.stream import AsrTimer, SourceDocuments
    from salad_core.train.speech_audit import audit_speech

    sources = speech_sources(config.speech, config.speech_columns)
    audit = audit_speech(world, sources, replay_texts(config, world))
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

    return StreamBatches([opener(s, k) for k, s in enumerate(sources)], [s.weight for s in sources], replay,
                         encoder, seed=config.seed, replay_prob=config.replay_prob,
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
