"""Where salad keeps generated files: the results store, caches of converted models, audio and features.

Everything lives under one data directory: `$SALAD_DATA` if set, else `data/` at the repository root. Caches of
converted models and synthesized speech sit in `<data>/cache/` unless `$SALAD_CACHE` moves them (tests point
SALAD_DATA at a temporary folder but keep the shared cache, so models are converted once per machine).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    root = Path(os.environ.get("SALAD_DATA", REPO_ROOT / "data"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(kind: str) -> Path:
    """A cache folder for one kind of artefact, e.g. `cache_dir("models")` or `cache_dir("tts")`."""
    root = Path(os.environ["SALAD_CACHE"]) if os.environ.get("SALAD_CACHE") else data_dir() / "cache"
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_store_path() -> Path:
    return data_dir() / "salad.duckdb"
