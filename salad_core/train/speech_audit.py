"""The leak audit of a run's own data (`salad train --speech`), before it trains: does any document of its speech,
or any replay text, state a fact that its evaluation asks about?

The facts are those of the tasks the run is evaluated on (the world's eval facts; for the broad corpus, every item of
the built-in tasks), matched by the project's auditor (world/audit.py) in any wording. The speech is audited as it
will be trained on: each document chunk (speech_data/documents.py) whole, so a fact split over two utterances counts.
A speech document that states one is left out of training (the workers skip it; the run's notes count it). Replay
text is reported, not changed: it is what the teacher reads, and a world's text states its facts by design, since
the text LLM must know them for the gap to mean anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from salad_core.broad.audit import audit_table, text_form
from salad_core.speech_data.documents import MAX_DOC_WORDS, document_chunks
from salad_core.speech_data.sources import SpeechSource, iter_utterances
from salad_core.world.audit import Auditor, format_table

REPLAY = "replay text"


@dataclass
class SpeechAudit:
    rows: list[dict]  # per task and source: eval facts, leaked, up to three examples (world/audit.py's rows)
    leaking: dict[str, list[int]] = field(default_factory=dict)  # source spec -> its documents that state a fact

    def documents_left_out(self, source: SpeechSource) -> frozenset[int]:
        return frozenset(self.leaking.get(source.spec, ()))

    def summary(self) -> list[dict]:
        """Per source: facts stated (all tasks) and, for speech, the documents left out; for the run's record."""
        out = []
        for source in dict.fromkeys(r["source"] for r in self.rows):
            mine = [r for r in self.rows if r["source"] == source]
            out.append({"source": source, "facts_stated": sum(r["leaked"] for r in mine),
                        "examples": [e for r in mine for e in r["examples"]][:5],
                        "documents_left_out": None if source == REPLAY else len(self.leaking.get(source, ()))})
        return out

    def table(self) -> str:
        return format_table(self.rows)


def document_text(chunk: list) -> str:
    """A document chunk (consecutive utterances of one document) as the audit reads it: its transcripts joined."""
    return " ".join(u.text for u in chunk)


def chunk_texts(source: SpeechSource, max_words: int = MAX_DOC_WORDS):
    """The source's documents as training reads them (chunk by chunk, in order), each as one text."""
    for chunk in document_chunks(iter_utterances(source, on_bad=lambda _: None), max_words):
        yield document_text(chunk)


class SpeechAuditor:
    """The audit one text at a time, so that a reader that already holds each document (`salad speech check`)
    audits it in the same pass: `stated(name, place, text)` says whether the text states an eval fact of `world`,
    `result()` is the audit of every text given."""

    def __init__(self, world, names: list[str]):
        self.facts = world.eval_facts()
        self.auditor = Auditor(f for task_facts in self.facts.values() for f in task_facts)
        self.stating: dict[str, list[str]] = {name: [] for name in names}  # every source has its rows, leak or not
        self.leaking: dict[str, list[int]] = {}

    def stated(self, name: str, place: int, text: str) -> bool:
        if not self.auditor.stated(text_form(text)):
            return False
        self.leaking.setdefault(name, []).append(place)
        self.stating.setdefault(name, []).append(text)
        return True

    def result(self) -> SpeechAudit:
        """The table is made of the texts that state a fact alone (the others add nothing to it)."""
        leaking = {name: places for name, places in self.leaking.items() if name != REPLAY}
        return SpeechAudit(audit_table(self.facts, self.stating), leaking)


def audit_speech(world, sources: list[SpeechSource], replay: list[str]) -> SpeechAudit:
    """The audit of `sources` and the `replay` texts against the eval facts of `world` (a world or the broad
    corpus: what the run is evaluated on)."""
    texts = {**{s.spec: chunk_texts(s) for s in sources}, REPLAY: replay}
    auditor = SpeechAuditor(world, list(texts))
    for name, documents in texts.items():
        for place, text in enumerate(documents):
            auditor.stated(name, place, text)
    return auditor.result()
