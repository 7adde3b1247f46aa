"""Lhotse corpora: a CutSet manifest (`cuts.jsonl[.gz]`) or a Shar folder, one utterance per cut.

An utterance's transcript is its cut's supervisions' text, joined; its document is the `doc` its supervision (or cut)
carries in `custom`, else its recording (a book chapter, a session); its place there is the `pos` in `custom`, else
the cut's start in its recording, else (a document that spans recordings, or a Shar cut, whose writer re-bases it to
start at 0) its order in the source. Word timings come from the supervisions' `word` alignment, which Lhotse keeps in
the recording's time: they are moved to the cut's time, and words outside the cut are left out. A Shar cut has none:
its writer re-bases the cut's audio but not its alignment, whose origin is then unknown (wrong times would be worse
than none).

A cut manifest is read line by line here, each line made a cut as `CutSet.from_jsonl_lazy` makes it, so a broken line
is one bad row (not the end of the corpus) and resuming skips lines unparsed. A cut of a file points at its stretch
(`AudioRef(path, offset, duration)`); a Shar cut carries its encoded audio (`AudioRef(data=...)`); neither is decoded
here. Other cuts (mixed, multi-channel, transformed, remote) are decoded with `cut.load_audio()` as they are yielded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from salad_core.assets import MissingPackageError
from salad_core.speech_data.rows import BadRow, RowError, count_rows, json_lines, number, transcript, word
from salad_core.speech_data.utterance import AudioRef, Utterance, Word

LHOTSE = "lhotse==1.33.0"
CUT_TYPES = ("MonoCut", "MultiCut", "MixedCut", "PaddingCut", "Cut")
EDGE = 0.01  # seconds a word may overhang its cut (alignments are rounded)


def require_lhotse() -> None:
    """A `MissingPackageError` with the install command when lhotse is absent (it is needed only for its corpora)."""
    try:
        import lhotse  # noqa: F401
    except ImportError as err:
        raise MissingPackageError("lhotse", "A Lhotse speech source", LHOTSE) from err


def is_cut_record(record: dict) -> bool:
    """Whether a manifest's record is a serialised Lhotse cut (rather than a salad manifest row)."""
    return record.get("type") in CUT_TYPES or "supervisions" in record


def is_shar_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("cuts.*.jsonl*"))


def read_cuts(path: Path, source: str, start: int = 0) -> Iterator[Utterance | RowError]:
    """Each cut of a manifest from the `start`-th on: its utterance, or a `RowError` naming its line and id."""
    from lhotse.serialization import deserialize_item

    for line, record in json_lines(path, start):
        row = f"line {line}" if isinstance(record, BadRow) else f"line {line} (cut {record.get('id')})"
        try:
            if isinstance(record, BadRow):
                raise record
            try:
                cut = deserialize_item(record)
            except (KeyError, TypeError, ValueError, AssertionError) as err:
                raise BadRow(f"not a Lhotse cut ({type(err).__name__}: {err})",
                             "write the manifest with lhotse (CutSet.to_file)") from err
            yield cut_utterance(cut, float(line), rebased=False)
        except BadRow as err:
            yield RowError.at(source, row, err)


def read_shar(folder: Path, source: str, start: int = 0) -> Iterator[Utterance | RowError]:
    """Each cut of a Shar folder, in shard order, from the `start`-th on; whole shards before it are not opened, and
    of the others only the cuts and their audio (not, say, their features)."""
    from lhotse import CutSet
    from lhotse.shar import LazySharIterator

    streams = LazySharIterator(in_dir=folder).streams
    first, index = 0, 0
    for shard in streams["cuts"]:
        rows = count_rows(Path(shard))
        if index + rows > start:
            break
        first, index = first + 1, index + rows
    if first == len(streams["cuts"]):
        return
    fields = {field: streams[field][first:] for field in ("cuts", "recording") if field in streams}
    cuts = CutSet.from_shar(fields=fields)
    for index, cut in enumerate(itertools.islice(cuts, start - index, None), start=start):
        try:
            yield cut_utterance(cut, float(index), rebased=_from_shar(cut))
        except BadRow as err:
            yield RowError.at(source, f"row {index} (cut {cut.id})", err)


def cut_utterance(cut, order: float, *, rebased: bool) -> Utterance:
    """The utterance of one cut; `order` is its place in the source, `rebased` whether its start was lost (Shar)."""
    texts = [s.text.strip() for s in cut.supervisions if s.text and s.text.strip()]
    first = cut.supervisions[0].custom if cut.supervisions else None
    custom = {**(getattr(cut, "custom", None) or {}), **(first or {})}  # the supervision's say wins
    recording = getattr(cut, "recording_id", None)
    doc = str(custom.get("doc") or recording or cut.id)
    if custom.get("pos") is not None:
        pos = number(custom["pos"], "pos", minimum=float("-inf"))
    else:
        pos = cut.start if doc == recording and not rebased else order
    return Utterance(utt_id=cut.id, doc=doc, pos=float(pos), text=transcript(" ".join(texts) or None),
                     audio=_audio(cut), seconds=cut.duration, words=None if rebased else _words(cut))


def _from_shar(cut) -> bool:
    recording = getattr(cut, "recording", None)
    return recording is not None and all(s.type == "memory" for s in recording.sources)


def _audio(cut) -> AudioRef:
    from lhotse import MonoCut

    recording = getattr(cut, "recording", None)
    if (isinstance(cut, MonoCut) and recording is not None and len(recording.sources) == 1
            and recording.num_channels == 1 and not recording.transforms):
        source = recording.sources[0]
        where = {"file": "path", "memory": "data"}.get(source.type)
        if where:
            return AudioRef(**{where: source.source}, sample_rate=recording.sampling_rate, offset=cut.start,
                            duration=cut.duration)
    try:
        return AudioRef(array=cut.load_audio().T, sample_rate=cut.sampling_rate)
    except Exception as err:  # lhotse's audio backends raise their own kinds
        raise BadRow(f"its audio could not be read ({type(err).__name__}: {str(err)[:200]})",
                     "check the cut's recording sources, or export the audio (CutSet.save_audios)") from err


def _words(cut) -> tuple[Word, ...] | None:
    """The cut's word alignment in its own time, the words inside it only; None when it has none."""
    items = [item for s in cut.supervisions for item in ((s.alignment or {}).get("word") or ())]
    words = []
    for item in items:
        start = round(number(item.start, "a word's start") - cut.start, 6)
        end = round(start + number(item.duration, "a word's duration"), 6)
        if start >= -EDGE and end <= cut.duration + EDGE:
            words.append(word(item.symbol, max(start, 0.0), min(max(end, 0.0), cut.duration)))
    return tuple(words) if items else None
