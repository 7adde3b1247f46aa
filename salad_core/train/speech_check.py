"""What a run's speech sources hold, as training would read them, before it starts (`salad speech check`).

    salad speech check --speech corpus.jsonl --speech hf:ORG/NAME:0.5 [--speech-columns text=sentence] \
        [--preset mini] [--limit 1000] [--json]

Per source: its kind, location and digest (what the run would record, `describe`), the documents training cuts it
into (`document_chunks`), its utterances, the hours of audio training keeps and drops, the utterances dropped and why
(in the run's words, `train.windows.drop_reason`), the rows that could not be read (the first few verbatim), and the leak audit
against the eval facts of the preset's tasks: the facts its documents state, and the documents training would leave
out for it. Sources are read as the data workers read them: the same specs and columns (`speech_sources`), the same
document chunks, and every utterance decoded with `Utterance.load()`, which is what finds a missing file, a wrong
sample rate, undecodable or silent audio.

Hours are decoded audio, not what a source states: kept is the audio of the utterances training would hear or read;
dropped is the audio of the documents the audit leaves out, and of the utterances that fail to decode where their
source states their length (`seconds`; Lhotse manifests do). What the check does not do is run the ASR: a run with
`--word-timings auto` times long utterances with Whisper and may drop more ("transcript disagrees with the ASR").
`limit` reads the first N utterances of each source (the audit then covers only those).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from salad_core.audio import SAMPLE_RATE, AudioError
from salad_core.progress import NoProgress
from salad_core.speech_data.documents import document_chunks
from salad_core.speech_data.sources import SpeechSource, describe, iter_utterances
from salad_core.speech_data.stream import LEFT_OUT
from salad_core.speech_data.utterance import Utterance
from salad_core.train.speech_audit import SpeechAuditor, document_text
from salad_core.train.stream_batches import audit_note
from salad_core.train.windows import drop_reason

MAX_EXAMPLES = 5  # problems quoted verbatim per source and kind (bad rows, dropped utterances)
NOT_CHECKED = ("the transcripts against the ASR (a run with --word-timings auto may drop more long utterances: "
               "transcript disagrees with the ASR)")


@dataclass
class SourceCounts:
    """One source's counts, document by document."""

    documents: int = 0
    utterances: int = 0
    kept_s: float = 0.0
    dropped_s: float = 0.0
    dropped: Counter = field(default_factory=Counter)  # drop_reason -> utterances (documents, for the audit's)
    drop_examples: list[str] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)
    nothing_left: int = 0  # documents left out, or whose every utterance was dropped

    def drop(self, message: str) -> None:
        self.dropped[drop_reason(message)] += 1
        if len(self.drop_examples) < MAX_EXAMPLES:
            self.drop_examples.append(message)

    def summary(self) -> dict:
        return {"documents": self.documents, "utterances": self.utterances, "hours": self.kept_s / 3600,
                "hours_dropped": self.dropped_s / 3600, "dropped": dict(sorted(self.dropped.items())),
                "drop_examples": self.drop_examples, "bad_rows": len(self.bad_rows),
                "bad_row_examples": self.bad_rows[:MAX_EXAMPLES], "documents_with_nothing_left": self.nothing_left}


def check_speech(sources: list[SpeechSource], world, *, limit: int | None = None, progress=None) -> dict:
    """Every source's statistics (the module's docstring), the leak audit against `world`'s eval facts (a world or
    the broad corpus: what a run on its preset is evaluated on) and its table; `progress` (a `Progress`) counts
    the utterances read, one stage per source."""
    progress = progress or NoProgress()
    auditor = SpeechAuditor(world, [s.spec for s in sources])
    counted = []
    for source in sources:
        progress.set_stage(f"checking {source.spec}", limit)
        counted.append(_check_source(source, auditor, limit, progress))
    audit = auditor.result()
    found = {row["source"]: row for row in audit.summary()}
    out = []
    for source, counts in zip(sources, counted):
        leaks = found[source.spec]
        out.append({**describe(source), **counts.summary(), "facts_stated": leaks["facts_stated"],
                    "fact_examples": leaks["examples"], "documents_left_out": leaks["documents_left_out"],
                    "cut_at_limit": limit is not None and counts.utterances >= limit})
    return {"world": getattr(world, "name", None), "limit": limit, "sources": out, "audit": audit.rows,
            "audit_table": audit.table(), "not_checked": NOT_CHECKED}


def _check_source(source: SpeechSource, auditor: SpeechAuditor, limit: int | None, progress) -> SourceCounts:
    counts = SourceCounts()
    rows = iter_utterances(source, on_bad=lambda err: counts.bad_rows.append(str(err)))
    for number, chunk in enumerate(document_chunks(islice(rows, limit))):
        left_out = auditor.stated(source.spec, number, document_text(chunk))
        counts.documents += 1
        counts.utterances += len(chunk)
        if left_out:
            counts.drop(f"document {chunk[0].doc}: {LEFT_OUT}")
        kept = [_decode(utt, counts, left_out) for utt in chunk]
        counts.nothing_left += int(left_out or not any(kept))
        progress.update(len(chunk), message=f"{counts.documents} documents")
    return counts


def _decode(utt: Utterance, counts: SourceCounts, left_out: bool) -> bool:
    """Decode the utterance and add its audio to what is kept or dropped; whether it is kept. In a document the
    audit leaves out, a problem is not counted (training does not decode it: the document counts once)."""
    try:
        seconds = utt.load().size / SAMPLE_RATE
    except AudioError as err:
        counts.dropped_s += utt.seconds or 0.0
        if not left_out:
            counts.drop(str(err))
        return False
    if left_out:
        counts.dropped_s += seconds
        return False
    counts.kept_s += seconds
    return True


def check_lines(result: dict) -> list[str]:
    """The check as `salad speech check` prints it: a paragraph per source, then the audit's table."""
    lines = []
    if result["limit"] is not None:
        lines.append(f"read the first {result['limit']} utterances of each source only (--limit)")
    for found in result["sources"]:
        dropped = ", ".join(f"{n} {why}" for why, n in found["dropped"].items()) or "none"
        lines.append(f"speech source {found['spec']} ({found['kind']}, {found['location']}; digest "
                     f"{found['digest'] or 'none'}): {found['documents']} documents of {found['utterances']} "
                     f"utterances{' (cut at the limit)' if found['cut_at_limit'] else ''}, {_hours(found['hours'])} "
                     f"kept, {_hours(found['hours_dropped'])} dropped; utterances dropped: {dropped}; rows that could "
                     f"not be read: {found['bad_rows']}; documents with nothing left: "
                     f"{found['documents_with_nothing_left']}")
        lines += [f"  {example}" for example in found["bad_row_examples"] + found["drop_examples"]]
        lines.append(audit_note({"source": found["spec"], "facts_stated": found["facts_stated"],
                                 "examples": found["fact_examples"],
                                 "documents_left_out": found["documents_left_out"]}))
    world = result["world"] or "the preset's tasks"
    lines += [f"eval facts of {world} stated in each source (0 everywhere: no leak)", result["audit_table"],
              f"not checked: {result['not_checked']}"]
    return lines


def _hours(hours: float) -> str:
    return f"{hours:.2f} h" if hours >= 0.1 else f"{hours * 60:.1f} min"
