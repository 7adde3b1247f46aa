"""Held-out paired documents, and the corpus F and M measured on them (SALAD, "The problem"):

    F = KL( Q(. | text) || P(. | text) )      Q = the original LLM, P = the adapted model, the text version
    M = KL( P(. | text) || P(. | speech) )    the same document with its speech spans heard instead of read

at every position whose next token is text, token-weighted per domain (and pooled), with 95 % intervals that
resample documents. A probe set is documents of text and speech spans whose clips are cached (`ProbeSet`): the mini
world's held-out probe documents for a world LLM (the world registers them, `register_probe_source`), and for any
other LLM a held-out set of broad English text (WordNet glosses of a hash bucket that no training text may use)
spoken by a voice no training set uses, built once per encoder and cached (`broad_probe_set`).

The item-level F and M of an evaluation (the question heard, the answer read, on dev items) are `item_F` and
`item_M`; these corpus values are the `F` and `M` of every report.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from salad_core.assets import AssetError, cached_build
from salad_core.clips import ClipBank, read_jsonl
from salad_core.documents import SpeechDoc, speak_documents
from salad_core.eval.metrics import Estimate
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.model.names import LLMName, parse_llm_name
from salad_core.progress import NoProgress, Progress
from salad_core.text import unit_interval

BROAD_VOICE = "flite:slt"  # the evaluation voice: never in a training set
BROAD_DOCS = 60
BROAD_BUCKET = 0.05  # the share of WordNet glosses held out for probes (`is_broad_probe_text`)
GLOSSES_PER_DOC = 3


@dataclass
class ProbeSet:
    name: str
    docs: list[SpeechDoc]
    bank: ClipBank
    tasks: dict[str, str] = field(default_factory=dict)  # domain -> the task that stands for it (world domains)

    def features(self, docs: list[SpeechDoc], encoder) -> list:
        """Encoder frames of the documents' speech spans, in order: the cached ones, or `encoder`'s of their audio."""
        return self.bank.features([s.clip_id for doc in docs for s in doc.spans if s.clip_id], encoder)


# ---------------------------------------------------------------------------------------------------------------
# Measuring


def document_divergences(model, docs: list[SpeechDoc], features: Callable[[list[SpeechDoc]], list],
                         progress: Progress | None = None) -> list:
    """F and M terms of each document (`eval.divergence.probe_divergence`), its speech spans heard as the frames
    `features(docs)` gives; used by corpus F and M here and by a selection round's per-cluster M(c). A model that
    takes one audio per prompt (`audio_between_text` false: a speech LLM family whose processor pairs texts and
    audios one to one) hears the document's first speech span alone, the rest read, and M is taken on the text after
    that span (`first_span_heard`)."""
    import torch  # imported once a model is measured: the registry above serves pages too

    from salad_core.eval.divergence import probe_divergence

    model.eval()
    out = []
    with torch.no_grad():
        for doc in docs:
            segments, frames = doc.segments(), features([doc])
            if not model.audio_between_text:
                segments, frames = first_span_heard(segments), frames[:1]
            out.append(probe_divergence(model, segments, model.adapt_frames(frames) if frames else [],
                                        after_speech=not model.audio_between_text))
            if progress is not None:
                progress.update(1)
    return out


def first_span_heard(segments: list) -> list:
    """A document with its first speech span heard and every later one read as text."""
    from salad_core.model.processing import Segment

    first = next((i for i, s in enumerate(segments) if s.is_speech), len(segments))
    return [s if i <= first or not s.is_speech else Segment(s.text) for i, s in enumerate(segments)]


def heard_spans(model) -> str:
    """How a model hears a probe document, as reports say it (`salad eval --json`'s `corpus_heard`)."""
    return ("every speech span" if model.audio_between_text else
            "the first speech span of each document (the model takes one audio per prompt); M on the text after it")


def corpus_divergence(model, probe_set: ProbeSet, seed: int = 0,
                      progress: Progress | None = None) -> dict[str, dict[str, Estimate]]:
    """Corpus F and M with 95 % intervals over documents: per domain of the probe set, and pooled (under `ALL_TASKS`)."""
    from salad_core.eval.divergence import divergence_estimates

    parts = document_divergences(model, probe_set.docs, lambda docs: probe_set.features(docs, model.encoder),
                                 progress)
    by_domain: dict[str, list] = defaultdict(list)
    for doc, part in zip(probe_set.docs, parts):
        by_domain[doc.domain].append(part)
    out = {domain: divergence_estimates(group, seed) for domain, group in sorted(by_domain.items())}
    out[ALL_TASKS] = divergence_estimates(parts, seed)
    return out


def measure(model, seed: int = 0, progress: bool = False,
            n_docs: int = 0) -> tuple[ProbeSet, dict[str, dict[str, Estimate]]]:
    """The model's probe set (`probe_set_for` its LLM; its first `n_docs` documents, 0: all) and its corpus F and M."""
    probe_set = probe_set_for(*model.probe_source(), n_docs)
    with (Progress(len(probe_set.docs), "corpus F and M") if progress else NoProgress()) as bar:
        return probe_set, corpus_divergence(model, probe_set, seed, bar)


# ---------------------------------------------------------------------------------------------------------------
# Which probe set a model gets


_SOURCES: dict[str, Callable[[LLMName], ProbeSet]] = {}


def register_probe_source(kind: str, factory: Callable[[LLMName], ProbeSet]) -> None:
    """The probe set for LLMs of one kind (`model.names.LLM_KINDS`): the mini world registers its own for "world"."""
    _SOURCES[kind] = factory


def probe_set_for(llm_name: str, encoder: str, n_docs: int = 0) -> ProbeSet:
    """Held-out paired documents the LLM can read: its kind's registered set, else broad English text; the first
    `n_docs` of them (0: all; a shorter broad set is spoken and encoded only as far as it goes)."""
    parsed = parse_llm_name(llm_name)
    if parsed.kind in _SOURCES:
        probe_set = _SOURCES[parsed.kind](parsed)
        return replace(probe_set, docs=probe_set.docs[:n_docs]) if n_docs else probe_set
    if parsed.is_world:
        raise AssetError(f"No probe set is registered for {llm_name!r}. Fix: import salad_core.world first (it "
                         "registers the worlds' probe documents).")
    return broad_probe_set(encoder, n_docs or BROAD_DOCS)


# ---------------------------------------------------------------------------------------------------------------
# Broad English text, held out


def is_broad_probe_text(text: str) -> bool:
    """Whether a text falls in the held-out probe bucket: a training set built from WordNet glosses must skip it."""
    return unit_interval("broad-probe", text.strip().lower()) < BROAD_BUCKET


def broad_probe_texts(n_docs: int = BROAD_DOCS) -> list[str]:
    """`n_docs` documents of GLOSSES_PER_DOC held-out WordNet noun glosses each ("Dog: a member of the genus ...")."""
    from salad_core.tasks.definitions import clean_gloss, load_synsets
    from salad_core.tasks.sources import wordnet_dir

    sentences = []
    for synset in load_synsets(wordnet_dir(), "noun").values():
        lemma, gloss = synset.words[0][0].replace("_", " "), clean_gloss(synset.gloss)
        sentence = f"{lemma.capitalize()}: {gloss}."
        if 4 <= len(gloss.split()) <= 16 and is_broad_probe_text(sentence):
            sentences.append(sentence)
    random.Random("broad-probe").shuffle(sentences)
    if len(sentences) < n_docs * GLOSSES_PER_DOC:
        raise AssetError(f"WordNet holds {len(sentences)} held-out glosses, fewer than {n_docs * GLOSSES_PER_DOC}. "
                         "Fix: ask for fewer probe documents.")
    return [" ".join(sentences[i * GLOSSES_PER_DOC:(i + 1) * GLOSSES_PER_DOC]) for i in range(n_docs)]


def broad_probe_set(encoder: str, n_docs: int = BROAD_DOCS, voice: str = BROAD_VOICE) -> ProbeSet:
    """The broad held-out probe set, its speech spans spoken by `voice` and encoded by `encoder` (built once)."""
    texts = broad_probe_texts(n_docs)

    def build(folder: Path) -> None:
        docs = speak_documents(texts, folder, prefix="broad", voices=(voice,), speed=1.0, seed=0, speech_words=(3, 8),
                               text_words=(3, 8), role="probe", encoder=encoder)
        with open(folder / "docs.jsonl", "w") as f:
            for doc in docs:
                if doc is not None:
                    f.write(json.dumps({**doc, "domain": "broad text"}) + "\n")

    name = encoder.rstrip("/").split("/")[-1]
    folder = cached_build("probes", f"broad-{name}", [], build, recipe=f"broad-v1/{n_docs}/{voice}/{texts[0]}")
    bank = ClipBank(folder, name, "the broad probe set", f"delete {folder} to rebuild it.")
    return ProbeSet(f"broad:{n_docs}", [SpeechDoc.from_record(r) for r in read_jsonl(folder / "docs.jsonl")], bank)
