"""The SALAD mini world: a small multi-domain English world with a text corpus, MC tasks and synthetic speech.

    from salad_core.world import build_world, load_world
    world = build_world("nano")            # cached: built once per config and code version
    world.text_corpus(); world.speech_docs(); world.task_items("capitals", "test"); world.features([...])

Six domains (capitals, elements, animals, arithmetic, calendar, stories); the natural-speech corpus covers only
capitals, animals and arithmetic, the text corpus all of them (docs/world.md). The world sits above the model, task
and evaluation layers and plugs into their registries, so none of them imports it. Importing this package registers:
one task per preset and domain (`mini-capitals`, `nano-stories`, ...: spoken in the world's held-out voices,
numbers read as the world writes them, not in the default suite), available once that world is built; the LLM
names `world:<preset>[/<lm folder>]`; and the worlds' probe documents for corpus F and M.
"""

from __future__ import annotations

import numpy as np

from salad_core.assets import AssetError
from salad_core.errors import InputError
from salad_core.eval.probes import register_probe_source
from salad_core.model.names import LLMName, LLMSource, parse_llm_name, register_llm_source
from salad_core.paths import cache_dir
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register
from salad_core.text import world_form
from salad_core.world.build import PRESETS, build_world, is_built, load_world, world_dir
from salad_core.world.domains import DOMAIN_NAMES, Fact, domain_defs
from salad_core.world.lm_recipes import LM_FOLDER
from salad_core.world.world import Domain, World

__all__ = ["CLIP_REF_PREFIX", "DOMAIN_NAMES", "PRESETS", "Domain", "Fact", "World", "build_world", "clip_ref", "clip_ref_audio", "is_built",
           "load_world", "preset_world", "world_dir", "world_tasks"]


def world_tasks(preset: str) -> list[str]:
    """The task names of a world preset, one per domain (`mini-capitals`, ...)."""
    return [d.domain.task for d in domain_defs(preset)]


def preset_world(preset: str, *, lm: bool = True, progress: bool = True) -> World:
    """The world a model preset trains on (its speech and text), built, and its LM pretrained when the preset reads
    with it (and `lm`: a caller that only reads the world's facts, such as the leak audit, leaves it to the first
    run); for a preset that trains on a speech corpus instead (`smol`: the broad corpus), that corpus, built."""
    from salad_core.presets import get_preset

    world_name = get_preset(preset).world
    if get_preset(preset).corpus == "broad":
        from salad_core.broad import build_broad

        return build_broad(progress=progress)
    if world_name is None:
        raise InputError(f"preset {preset!r} has no training world yet; train with --preset mini or nano")
    world = build_world(world_name, progress=progress, lm=lm)
    if lm and parse_llm_name(get_preset(preset).llm_name).is_world:
        from salad_core.world.lm import ensure_world_lm

        ensure_world_lm(world)
    return world


def _check(preset: str) -> None:
    if not is_built(preset):
        raise AssetError(f"The '{preset}' world is not built. Fix: run `salad world build --corpus {preset}`.")


CLIP_REF_PREFIX = "world:"


def clip_ref(world: World, clip_id: str) -> str:
    """How an evaluation stores a world question's audio: `world:<world folder>/<clip id>` (the clip bank holds it)."""
    return f"{CLIP_REF_PREFIX}{world.root.name}/{clip_id}"


def clip_ref_audio(ref: str) -> np.ndarray:
    """16 kHz samples of the clip a `clip_ref` names; an AssetError when its world is no longer in the cache."""
    folder, _, clip_id = ref.removeprefix(CLIP_REF_PREFIX).partition("/")
    root = cache_dir("worlds") / folder
    if not folder or not clip_id or not (root / ".complete").exists():
        raise AssetError(f"The world clip {ref!r} is not in this cache ({root}). Fix: rebuild that world "
                         "(`salad world build`) with the code version that made the evaluation.")
    return World(root).audio(clip_id)


def _spoken(preset: str, item: Item) -> tuple[np.ndarray, dict]:
    """An item's question as the `preset` world spoke it (one of its held-out evaluation voices), with its cached
    frames."""
    world = load_world(preset)
    clip_id = world.eval_clip(item.item_id)
    record, audio = world.clip(clip_id), world.audio(clip_id)
    engine, _, voice = record["voice"].partition(":")
    return audio, {"engine": engine, "voice": voice, "speed": record["speed"],
                   "path": clip_ref(world, clip_id), "text": item.question, "duration_s": len(audio) / 16000,
                   "sample_rate": 16000, "frames": world.features([clip_id])[0], "encoder": world.bank.encoder_name}


def _register_tasks() -> None:
    for preset in PRESETS:
        for definition in domain_defs(preset):
            dom = definition.domain
            register(TaskSpec(
                name=dom.task, version="1", domain=dom.name,
                description=f"{preset} world: {dom.description}",
                source=f"salad mini world ({'real facts' if dom.kind == 'fact' else 'generated'})",
                build=lambda p=preset, d=dom.name: load_world(p).all_items(d),
                check=lambda p=preset: _check(p),
                transcript_form=world_form,  # Whisper's "3" is the world's "three"
                spoken=lambda item, p=preset: _spoken(p, item), in_suite=False,
            ))


def _resolve(name: LLMName):
    from salad_core.world.lm import resolve_world_llm  # torch: only once a model is loaded

    return resolve_world_llm(name)


_register_tasks()
register_llm_source("world", LLMSource(resolve=_resolve, pin=lambda name: name.pinned(LM_FOLDER)))
register_probe_source("world", lambda name: load_world(name.world).probe_set())
