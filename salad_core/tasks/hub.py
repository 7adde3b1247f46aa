"""Spoken multiple-choice benchmarks from the Hugging Face hub (`salad eval --dataset hf:...`), as items.

    hf:ORG/NAME[:CONFIG][@SPLIT]    a hub dataset (local cache only, unless SALAD_ALLOW_DOWNLOAD=1)
    hf:FOLDER[@SPLIT]               a dataset saved with `datasets` (`save_to_disk`) or a folder of data files

Each row becomes one test item whose recording is the row's audio. Columns are mapped by flags; where a flag is not
given, the dataset's known layout (`KNOWN_LAYOUTS`: VoiceBench's `mmsu` and `openbookqa`, whose prompt lists the
options as "A. ..." lines and whose reference is a letter), else the first present of the usual names. A row that
cannot be read (no options, an answer that names none, audio that does not decode) is logged and skipped; the rest
is evaluated.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from salad_core.assets import AssetError
from salad_core.errors import InputError
from salad_core.paths import cache_dir
from salad_core.tasks.item import Item

log = logging.getLogger(__name__)
PREFIX = "hf:"
DEFAULT_SPLIT = "test"
SAVED_FOLDER_FILES = ("dataset_info.json", "dataset_dict.json", "state.json")
USUAL_COLUMNS = {"question": ("question", "prompt", "question_stem"), "choices": ("choices", "options"),
                 "answer": ("answer", "reference", "answerKey", "label"), "audio": ("audio",)}
# Layouts by dataset config name: the prompt holds the options as lettered lines, the reference is their letter.
KNOWN_LAYOUTS = {"mmsu": {"question": "prompt", "answer": "reference"},
                 "openbookqa": {"question": "prompt", "answer": "reference"}}
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[.):]\s+(.+?)\s*$")


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # hub id or folder
    config: str | None
    split: str

    @classmethod
    def parse(cls, text: str, *, flag: str = "--dataset", default_split: str = DEFAULT_SPLIT) -> DatasetSpec:
        """`hf:ORG/NAME[:CONFIG][@SPLIT]` or `hf:FOLDER[@SPLIT]`; `flag` is named in the error, `default_split` taken
        when none is given (a benchmark is read from its test split, a training corpus from its train split)."""
        if not text.startswith(PREFIX) or len(text) == len(PREFIX):
            raise InputError(f"{flag} {text!r}: expected hf:ORG/NAME[:CONFIG][@SPLIT] or hf:FOLDER[@SPLIT]")
        body, _, split = text[len(PREFIX):].partition("@")
        name, _, config = body.partition(":") if not Path(body).expanduser().exists() else (body, "", "")
        return cls(name, config or None, split or default_split)

    @property
    def task(self) -> str:
        """The task name its items go under: the dataset's last path part, its config and split."""
        parts = [Path(self.name).name, self.config, self.split]
        return re.sub(r"[^0-9A-Za-z_.-]+", "-", "-".join(p for p in parts if p)).strip("-").lower()


def is_saved_folder(folder: Path) -> bool:
    """Whether `folder` was written by `datasets`' save_to_disk (a Dataset, or a DatasetDict with its splits)."""
    return folder.is_dir() and any((folder / f).exists() for f in SAVED_FOLDER_FILES)


def open_rows(spec: DatasetSpec, *, streaming: bool = False):
    """The split as `datasets` gives it: a saved folder memory-mapped (a `Dataset`, never held in memory), a hub
    dataset or a folder of data files as a `Dataset`, or, when `streaming`, an `IterableDataset` read as iterated
    (a saved folder's files too: `streamed_files`). A hub dataset is read from the local cache unless
    SALAD_ALLOW_DOWNLOAD=1."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError("hf: datasets need the `datasets` package. Fix: pip install datasets "
                          "(scripts/setup.sh installs it).") from err
    from salad_core.model.llm import hub_kwargs

    folder = Path(spec.name).expanduser()
    try:
        if is_saved_folder(folder):
            rows = datasets.load_from_disk(str(folder))
            if isinstance(rows, datasets.DatasetDict):
                if spec.split not in rows:
                    raise ValueError(f"no split {spec.split!r} (splits: {', '.join(rows)})")
                rows = rows[spec.split]
            return streamed_files(rows) if streaming else rows
        if not folder.is_dir() and hub_kwargs(spec.name):  # the local cache only, as for models
            datasets.config.HF_HUB_OFFLINE = True
        return datasets.load_dataset(str(folder) if folder.is_dir() else spec.name, spec.config, split=spec.split,
                                     streaming=streaming)
    except (FileNotFoundError, ConnectionError, ValueError, KeyError) as err:
        raise AssetError(f"Dataset {spec.name} (config {spec.config}, split {spec.split}) could not be loaded here: "
                         f"{str(err).splitlines()[0][:200]}. Fix: check the name, config and split; for a hub dataset "
                         "on a machine with hub access set SALAD_ALLOW_DOWNLOAD=1, or save it with "
                         "`datasets` (save_to_disk) and pass hf:FOLDER.") from err


def streamed_files(rows):
    """A saved split's Arrow files read one record batch at a time, in order (an `IterableDataset` of the same rows
    and features). Why: a pass over the memory-mapped `Dataset` leaves every page it touched resident in the reading
    process, so a data worker's memory would grow with the corpus, up to its whole size on disk (issue 34)."""
    import datasets

    files = [f["filename"] for f in rows.cache_files]  # save_to_disk writes the rows in order, no index over them
    if not files:
        return rows
    return datasets.load_dataset("arrow", data_files=files, split="train", streaming=True, features=rows.features)


def load_rows(spec: DatasetSpec, audio_column: str):
    """The split as a `datasets.Dataset` whose audio column gives encoded bytes (no decoder package needed)."""
    import datasets

    rows = open_rows(spec)
    if audio_column not in rows.column_names:
        raise AssetError(f"Dataset {spec.name} has no audio column {audio_column!r} (columns: "
                         f"{', '.join(rows.column_names)}). Fix: pass --audio-column.")
    return rows.cast_column(audio_column, datasets.Audio(decode=False))


def column_map(spec: DatasetSpec, columns: list[str], given: dict[str, str | None]) -> dict[str, str | None]:
    """The column of each field: the flag's, the known layout's, else the first usual name present."""
    known = KNOWN_LAYOUTS.get(spec.config or "", {})
    out = {}
    for field, names in USUAL_COLUMNS.items():
        chosen = given.get(field) or known.get(field) or next((n for n in names if n in columns), None)
        if field == "choices" and chosen and "," in chosen:
            missing = [c for c in chosen.split(",") if c not in columns]
        else:
            missing = [chosen] if chosen and chosen not in columns else []
        if missing or (chosen is None and field in ("question", "answer", "audio")):
            raise AssetError(f"Dataset {spec.name}: no {field} column {missing or list(names)} among "
                             f"{', '.join(columns)}. Fix: pass --{field}-column.")
        out[field] = chosen
    return out


def options_of(row: dict, question: str, choices_column: str | None) -> tuple[str, tuple[str, ...]]:
    """(the question as asked, its options): from the choices column(s), else from the question's lettered lines."""
    if choices_column:
        names = choices_column.split(",")
        values = [row[n] for n in names] if len(names) > 1 else row[names[0]]
        if isinstance(values, dict):  # e.g. {"text": [...], "label": [...]}
            values = values.get("text") or next(iter(values.values()))
        return question, tuple(str(v).strip() for v in values)
    options = [m.group(2) for m in map(_OPTION_LINE.match, question.splitlines()) if m]
    return question.strip(), tuple(options)


def answer_index(value, choices: tuple[str, ...]) -> int:
    if isinstance(value, bool):
        raise ValueError(f"answer {value!r} is not an option")
    if isinstance(value, int):
        index = value
    elif str(value).strip().upper() in [chr(65 + j) for j in range(len(choices))]:
        index = ord(str(value).strip().upper()) - 65
    elif str(value).strip() in choices:
        index = choices.index(str(value).strip())
    elif str(value).strip().isdigit():
        index = int(str(value).strip())
    else:
        raise ValueError(f"answer {value!r} is neither an index, a letter nor an option's text")
    if not 0 <= index < len(choices):
        raise ValueError(f"answer {value!r} is outside the {len(choices)} options")
    return index


def dataset_items(text: str, limit: int | None = None, **columns: str | None) -> tuple[str, list[Item]]:
    """(task name, test items) of `--dataset text`; `columns`: question/choices/answer/audio flags (None: default)."""
    spec = DatasetSpec.parse(text)
    rows = load_rows(spec, columns.get("audio") or "audio")
    mapping = column_map(spec, rows.column_names, columns)
    folder = cache_dir("datasets") / hashlib.sha256(repr(spec).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for index, row in enumerate(rows):
        if limit is not None and len(items) >= limit:
            break
        try:
            question, choices = options_of(row, str(row[mapping["question"]]), mapping["choices"])
            items.append(Item(task=spec.task, doc_id=str(row.get("id", index)), split="test", question=question,
                              choices=choices, answer=answer_index(row[mapping["answer"]], choices),
                              domain=spec.config or "general", audio=_audio_file(row[mapping["audio"]], folder, index)))
        except (ValueError, KeyError, TypeError) as err:
            log.warning("%s row %d skipped: %s", text, index, err)
    if not items:
        raise AssetError(f"Dataset {text}: no row could be read as a multiple-choice item with audio. Fix: check the "
                         "column flags (--question-column, --choices-column, --answer-column, --audio-column).")
    return spec.task, items


def _audio_file(audio: dict | None, folder: Path, index: int) -> str:
    """The row's audio as a file: its own path when it has one on disk, else its bytes written once to the cache."""
    if not audio or not (audio.get("bytes") or audio.get("path")):
        raise ValueError("no audio")
    if not audio.get("bytes"):
        if not Path(audio["path"]).is_file():
            raise ValueError(f"audio file {audio['path']} does not exist")
        return str(audio["path"])
    suffix = Path(audio.get("path") or "clip.wav").suffix or ".wav"
    path = folder / f"{index:06d}{suffix}"
    if not path.exists():
        path.write_bytes(audio["bytes"])
    return str(path)
