"""salad: measure, explain and close the text-speech understanding gap of speech-adapted LLMs.

Implements SALAD (Cuervo et al., arXiv 2510.13632): cross-modal distillation from the original text LLM plus
active selection of synthetic speech. README.md's layout table maps the modules.
"""

__version__ = "0.1.0"

import os as _os

# Offline first: never let a model lookup hang on a closed network. A user with hub access opts in with
# SALAD_ALLOW_DOWNLOAD=1 (or by setting HF_HUB_OFFLINE=0 themselves). Must run before huggingface_hub is imported.
if _os.environ.get("SALAD_ALLOW_DOWNLOAD") != "1":
    _os.environ.setdefault("HF_HUB_OFFLINE", "1")
