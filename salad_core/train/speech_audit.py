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


def chunk_texts(source: SpeechSource, max_words: int = MAX_DOC_WORDS):
    """The source's documents as training reads them (chunk by chunk, in order), each as one text."""
    for chunk in document_chunks(iter_utterances(source, on_bad=lambda _: None), max_words):
        yield " ".join(u.text for u in chunk)


def audit_speech(world, sources: list[SpeechSource], replay: list[str]) -> SpeechAudit:
    """The audit of `sources` and the `replay` texts against the eval facts of `world` (a world or the broad
    corpus: what the run is evaluated on). One pass finds the texts that state a fact; the table is then made of
    those alone (the others add nothing to it)."""
    facts = world.eval_facts()
    auditor = Auditor(f for task_facts in facts.values() for f in task_facts)
    leaking: dict[str, list[int]] = {}
    stating: dict[str, list[str]] = {}
    for name, texts in {**{s.spec: chunk_texts(s) for s in sources}, REPLAY: replay}.items():
        stating[name] = []
        for place, text in enumerate(texts):
            if auditor.stated(text_form(text)):
                leaking.setdefault(name, []).append(place)
                stating[name].append(text)
    leaking.pop(REPLAY, None)
    return SpeechAudit(audit_table(facts, stating), leaking)
