"""Where a user's speech corpus is (`salad train --speech SOURCE`, repeatable), and its utterances, read lazily in
the source's order with bounded memory: one row in hand at a time, never a list of them.

    hf:ORG/NAME[:CONFIG][@SPLIT]   a hub dataset, streamed (local cache only, unless SALAD_ALLOW_DOWNLOAD=1)
    hf:FOLDER[@SPLIT]              a folder saved by `datasets` (save_to_disk; a DatasetDict's split), or of data files
    PATH.jsonl / PATH.jsonl.gz     a Lhotse CutSet manifest or a salad manifest (`manifest.py`): its first record says
    FOLDER                         a Lhotse Shar folder (cuts.000000.jsonl.gz, recording.000000.tar, ...), or a folder
                                   saved by `datasets`
    lhotse:PATH  shar:FOLDER  jsonl:PATH   the kind named rather than detected

The split defaults to `train`. A weight may follow: a number after the last colon is the source's mixing weight
(default 1), so `hf:openslr/librispeech_asr:clean@train.100:0.3` is config `clean`, split `train.100`, weight 0.3, and
`hf:ORG/NAME:2` is weight 2, not config `2` (write `hf:ORG/NAME:2@train` for that). A path that exists as written
is taken whole, colons and all.

A bad row (no transcript, no audio, a broken line, malformed word timings) is not yielded: it goes to `on_bad` as a
`RowError` naming the row and the fix, or to the log, and reading goes on. Audio is not decoded while reading; a file
that is missing or does not decode is reported by `Utterance.load()`, which names the utterance.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from salad_core.errors import InputError
from salad_core.speech_data.digests import source_digest
from salad_core.speech_data.hub_rows import hub_utterances, open_hub
from salad_core.speech_data.lhotse_cuts import is_cut_record, is_shar_folder, read_cuts, read_shar, require_lhotse
from salad_core.speech_data.manifest import read_manifest
from salad_core.speech_data.rows import OnBad, RowError, json_lines
from salad_core.speech_data.utterance import Utterance
from salad_core.tasks.hub import DatasetSpec, is_saved_folder

log = logging.getLogger(__name__)
KINDS = {"hf": "hf:ORG/NAME[:CONFIG][@SPLIT] or hf:FOLDER[@SPLIT] (a dataset saved by `datasets`)",
         "lhotse": "a Lhotse CutSet manifest (.jsonl or .jsonl.gz; lhotse:PATH)",
         "shar": "a Lhotse Shar folder (shar:FOLDER)",
         "jsonl": "a salad JSONL manifest of audio, text, doc, pos (jsonl:PATH)"}
MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")
_WEIGHT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DETECT_RECORDS = 100  # records read to tell a cut manifest from a salad one (the first that parses decides)


@dataclass(frozen=True)
class SpeechSource:
    spec: str  # as given, less its weight; named in every error about its rows
    kind: str  # a key of KINDS
    location: str  # the file, the folder, or the hub id
    weight: float = 1.0  # its share when sources are mixed
    dataset: DatasetSpec | None = None  # hf: name, config, split
    columns: Mapping[str, str] = field(default_factory=dict)  # hf: the columns given (field -> column)

    @classmethod
    def parse(cls, spec: str, columns: Mapping[str, str] | None = None) -> SpeechSource:
        """The source a `--speech` value names (see the module's docstring); `columns` maps an hf source's fields
        (audio, text, doc, pos, id) to its columns. An `InputError` naming the spec, the kinds known and the fix."""
        body, weight = split_weight(spec)
        kind, location = _detect(body)
        if columns and kind != "hf":
            raise InputError(f"--speech {spec!r}: --speech-columns maps a `datasets` source's columns; a {kind} "
                             f"source's fields are fixed. Fix: give the columns for hf: sources only.")
        dataset = None
        if kind == "hf":
            dataset = DatasetSpec.parse(body if body.startswith("hf:") else f"hf:{location}", flag="--speech",
                                        default_split="train")
        return cls(body, kind, location, weight, dataset, dict(columns or {}))


def split_weight(spec: str) -> tuple[str, float]:
    """(the spec, its weight): a number after the last colon is the weight, unless the whole names a path."""
    body, colon, tail = spec.rpartition(":")
    if not colon or not _WEIGHT.fullmatch(tail) or _unprefixed(spec).exists():
        return spec, 1.0
    weight = float(tail)
    if not (weight > 0 and math.isfinite(weight)):
        raise InputError(f"--speech {spec!r}: the weight {tail} is not a positive number. Fix: give a weight > 0 "
                         f"after the last colon (e.g. {body}:0.3), or none (weight 1).")
    return body, weight


def iter_utterances(source: SpeechSource, *, start: int = 0, on_bad: OnBad | None = None) -> Iterator[Utterance]:
    """The source's utterances in its order, from its `start`-th row on (to resume a run: rows count the utterances
    yielded and the bad rows alike). Opening errors (a missing column, a missing package) are raised here, at once;
    a bad row goes to `on_bad(RowError)`, or to the log when it is None, and reading goes on."""
    if start < 0:
        raise InputError(f"speech source {source.spec}: start={start} is negative. Fix: start at row 0 or later.")
    return _good(_rows(source, start), on_bad)


def describe(source: SpeechSource) -> dict:
    """What a run records of a source: kind, location, weight, the columns read, and a digest of what was read
    (a manifest's sha256; a saved or Shar folder's manifests; a hub dataset's revision), or None where there is none."""
    out = {"spec": source.spec, "kind": source.kind, "location": source.location, "weight": source.weight,
           "columns": None}
    if source.dataset is not None:
        _, out["columns"] = open_hub(source.dataset, source.columns, source.spec)
        out.update(config=source.dataset.config, split=source.dataset.split)
    out["digest"], out["digest_of"] = source_digest(source.kind, Path(source.location), source.dataset)
    return out


def _rows(source: SpeechSource, start: int) -> Iterator[Utterance | RowError]:
    if source.dataset is not None:
        rows, mapping = open_hub(source.dataset, source.columns, source.spec)
        return hub_utterances(rows, mapping, source.dataset, source.spec, start)
    if source.kind in ("lhotse", "shar"):
        require_lhotse()
    reader = {"lhotse": read_cuts, "shar": read_shar, "jsonl": read_manifest}[source.kind]
    return reader(Path(source.location), source.spec, start)


def _good(rows: Iterator[Utterance | RowError], on_bad: OnBad | None) -> Iterator[Utterance]:
    for row in rows:
        if not isinstance(row, RowError):
            yield row
        elif on_bad is None:
            log.warning("%s", row)
        else:
            on_bad(row)


def _unprefixed(body: str) -> Path:
    prefix, colon, rest = body.partition(":")
    return Path(rest if colon and prefix in KINDS else body).expanduser()


def _detect(body: str) -> tuple[str, str]:
    """(kind, location) of a spec less its weight."""
    prefix, colon, rest = body.partition(":")
    if colon and prefix == "hf":
        name = DatasetSpec.parse(body, flag="--speech").name
        if name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists():
            raise _unknown(body, f"there is no folder {name}", "correct the path")
        folder = Path(name).expanduser()
        return "hf", str(folder.resolve()) if folder.is_dir() else name
    path = _unprefixed(body)
    if not path.exists():
        if colon and prefix not in KINDS and re.fullmatch(r"[A-Za-z][\w.+-]*", prefix):
            raise _unknown(body, f"{prefix}: is not a kind of speech source", "use one of the prefixes below")
        raise _unknown(body, f"there is no file or folder {path}", "correct the path")
    kind = prefix if colon and prefix in KINDS else _kind_of(path, body)
    if kind == "lhotse" and path.is_dir():
        kind = "shar"
    _check(body, path, is_shar=kind == "shar", is_manifest=kind in ("lhotse", "jsonl"))
    return kind, str(path.resolve())


def _kind_of(path: Path, body: str) -> str:
    if path.is_dir():
        if is_shar_folder(path):
            return "shar"
        if is_saved_folder(path):
            return "hf"
        raise _unknown(body, f"the folder {path} is neither a Lhotse Shar folder (no cuts.*.jsonl.gz) nor a dataset "
                             "saved by `datasets` (no state.json, dataset_info.json or dataset_dict.json)",
                       "point at the folder that holds them, or at a manifest file")
    _check(body, path, is_manifest=True)
    first = next((r for _, r in itertools.islice(json_lines(path), _DETECT_RECORDS) if isinstance(r, dict)), {})
    return "lhotse" if is_cut_record(first) else "jsonl"


def _check(body: str, path: Path, *, is_shar: bool = False, is_manifest: bool = False) -> None:
    """That the path is what its kind reads: a Shar folder, or a JSONL file."""
    if is_shar and not is_shar_folder(path):
        raise _unknown(body, f"{path} is not a Lhotse Shar folder (no cuts.*.jsonl.gz in it)",
                       "write it with CutSet.to_shar, or name the right folder")
    if is_manifest and not (path.is_file() and path.name.endswith(MANIFEST_SUFFIXES)):
        raise _unknown(body, f"{path} is not a .jsonl or .jsonl.gz file", "convert it to JSONL (for a Lhotse "
                       "manifest: CutSet.from_file(path).to_file('cuts.jsonl.gz')), or name the manifest file")


def _unknown(body: str, problem: str, fix: str) -> InputError:
    kinds = "; ".join(KINDS.values())
    return InputError(f"--speech {body!r}: {problem}. Known kinds: {kinds}; a number after the last colon is the "
                      f"source's weight. Fix: {fix}.")
