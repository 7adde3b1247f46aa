"""The broad speech corpus: broad English from offline sources, spoken by many TTS voices, for the `smol` preset.

    from salad_core.broad import build_broad, load_broad
    corpus = build_broad()            # cached: built once per config and code version (`salad world build --corpus broad`)
    corpus.speech_docs(); corpus.features([...]); corpus.audit()

No sentence that states a fact some built-in task asks about (any split) is spoken: broad/audit.py, checked as part
of the build.
"""

from salad_core.broad.build import build_broad, is_built, load_broad

__all__ = ["build_broad", "is_built", "load_broad"]
