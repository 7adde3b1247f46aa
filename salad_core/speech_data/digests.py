"""A digest of what a speech source reads, for the run to record: the same digest, the same corpus."""

from __future__ import annotations

from pathlib import Path

from salad_core.assets import file_digest, sources_digest
from salad_core.tasks.hub import DatasetSpec, is_saved_folder

DATASET_FILES = ("dataset_dict.json", "state.json", "dataset_info.json")


def source_digest(kind: str, path: Path, dataset: DatasetSpec | None) -> tuple[str | None, str]:
    """(digest, what it is of). A manifest: its sha256. A Shar folder: its cut manifests' (they name every cut and
    its recording; the audio archives are not read through). A saved `datasets` folder: its state and info files
    (they hold the data's fingerprint). A hub dataset or a folder of data files: the hash `datasets` gives it (the
    hub revision it resolves), None when it cannot."""
    if kind in ("lhotse", "jsonl"):
        return file_digest(path), f"sha256 of {path.name}"
    if kind == "shar":
        return sources_digest(sorted(path.glob("cuts.*.jsonl*"))), "sha256 of the Shar folder's cuts.*.jsonl*"
    if is_saved_folder(path):
        files = sorted(f for name in DATASET_FILES for f in path.rglob(name))
        return sources_digest(files), "sha256 of the saved dataset's " + ", ".join(DATASET_FILES)
    return _revision(dataset), "the hash `datasets` gives the dataset (a hub dataset's revision, else its files')"


def _revision(dataset: DatasetSpec | None) -> str | None:
    import datasets

    if dataset is None:
        return None
    try:
        return datasets.load_dataset_builder(dataset.name, dataset.config).hash
    except (FileNotFoundError, ConnectionError, ValueError, KeyError):
        return None
