"""The SALAD mini world: a small multi-domain English world with a text corpus, MC tasks and synthetic speech.

    from salad_core.world import build_world, load_world
    world = build_world("nano")            # cached: built once per config and code version
    world.text_corpus(); world.speech_docs(); world.task_items("capitals", "test"); world.features([...])

Six domains (capitals, elements, animals, arithmetic, calendar, stories); the natural-speech corpus covers only
capitals, animals and arithmetic, the text corpus all of them (docs/world.md). Importing this package registers
one task per preset and domain (`mini-capitals`, `nano-stories`, ...), available once that world is built.
"""

from __future__ import annotations

from salad_core.assets import AssetError
from salad_core.eval.probes import register_probe_source
from salad_core.tasks.registry import TaskSpec, register
from salad_core.text import world_form
from salad_core.world.build import PRESETS, build_world, is_built, load_world, world_dir
from salad_core.world.domains import DOMAIN_NAMES, Fact, domain_defs
from salad_core.world.world import Domain, Span, SpeechDoc, World

__all__ = ["is_world_task", "DOMAIN_NAMES", "PRESETS", "Domain", "Fact", "Span", "SpeechDoc", "World", "build_world", "is_built",
           "load_world", "world_dir"]


def is_world_task(name: str) -> bool:
    """Tasks of a mini world (`mini-capitals`) are for models trained on that world, not for the default suite."""
    return name.split("-", 1)[0] in PRESETS


def _check(preset: str) -> None:
    if not is_built(preset):
        raise AssetError(f"The '{preset}' world is not built. Fix: run `salad world build --preset {preset}`.")


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
            ))


_register_tasks()
register_probe_source("world", lambda name: load_world(name.world).probe_set())
