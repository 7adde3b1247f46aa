"""What a run records about itself: its id and times, the code that ran it and the versions of the packages it used.

A run id is `<kind>-<YYYYmmdd-HHMMSS>-<4 hex>` (UTC): short, sortable, unique. It names the run and nothing more: a
run's kind and lineage are read from the store's columns (salad_core.runs), never parsed from its id.
"""

from __future__ import annotations

import importlib.metadata
import secrets
import subprocess
from datetime import datetime, timezone
from functools import lru_cache

from salad_core import __version__
from salad_core.paths import REPO_ROOT

PACKAGES_RECORDED = ("torch", "transformers", "accelerate", "peft", "faster-whisper", "ctranslate2", "numpy",
                     "duckdb", "kokoro-onnx", "piper-tts", "salad")


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_run_id(kind: str) -> str:
    """Short, sortable, unique: `eval-20261125-223015-ab12` (UTC time, then 16 random bits)."""
    return f"{kind}-{utc_now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@lru_cache(maxsize=1)
def code_version() -> str:
    """Git SHA of the checkout (+ '-dirty' with uncommitted changes), else the package version."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO_ROOT), *args],
                              capture_output=True, text=True, timeout=10)
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        return sha + ("-dirty" if git("status", "--porcelain") else "")
    except (OSError, subprocess.SubprocessError):
        return f"salad-{__version__}"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES_RECORDED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
