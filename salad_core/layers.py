"""The layer order of salad's code, written once: a module imports only from its own layer or the ones below.

    utilities -> speech -> models and tasks -> evaluation -> the mini world and the broad corpus -> recipes
    -> entry points -> dashboard

The mini world sits above the evaluation it is measured with and plugs into the registries the lower layers own (LLM
names, tasks, probe documents) instead of being imported by them. `tests/test_layers.py` walks every import, those
inside functions too, and fails on one that goes up.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("utilities", ("salad_core", "errors", "paths", "text", "progress", "flags", "schedule", "maps", "assets", "jobs", "provenance", "store",
                   "schema", "losses", "fitting", "analysis", "layers", "options", "runs", "eval.vocabulary")),
    ("speech", ("audio", "tts", "asr")),
    ("models and tasks", ("model", "speechllm", "tasks", "clips", "documents", "presets", "speech_data")),
    ("evaluation", ("eval",)),
    ("the mini world and the broad corpus", ("world", "broad")),
    ("recipes", ("train", "select", "explore", "compare", "shipping")),
    ("entry points", ("cli", "cli_training", "console", "demo")),
    ("dashboard", ("dashboard", "pages")),
)


def layer_of(module: str) -> int:
    """The layer (index into LAYERS) of a module: `salad_core.eval.runner` -> 3, `dashboard.charts` -> 7."""
    parts = module.split(".")
    inner = parts[1:] if parts[0] == "salad_core" and len(parts) > 1 else parts
    for depth in (2, 1):  # a module listed on its own ("eval.vocabulary") before its package ("eval")
        unit = ".".join(inner[:depth])
        for rank, (_, units) in enumerate(LAYERS):
            if unit in units:
                return rank
    unit = inner[0]
    raise KeyError(f"module {module!r} belongs to no layer. Fix: add {unit!r} to salad_core.layers.LAYERS.")
