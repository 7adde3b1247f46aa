"""The spoken task suite: multiple-choice tasks built from offline data, and JSONL manifests of users' own tasks.

A task is data plus a small builder (after lm-evaluation-harness); text and speech evaluation see the same
items. Builtin tasks, registered on import:

    capitals, regions   countryinfo          geography
    elements            mendeleev            science
    quiz                bsdgames quiz files  geography, history, language
    definitions         WordNet 3            language
    freshqa             inspect-evals CSV    general
    arithmetic          generated            math

Use `available_tasks()` for the ones whose data is installed here, `get_task(name).items("test")` for items.
"""

# Importing a builtin task module registers it.
from salad_core.tasks import arithmetic, definitions, elements, freshqa, geography, quiz  # noqa: E402, F401
from salad_core.tasks.item import SPLITS, Item
from salad_core.tasks.manifest import ManifestError, ManifestResult, load_manifest
from salad_core.tasks.registry import (
    Task,
    TaskSpec,
    UnknownTaskError,
    available_tasks,
    get_task,
    register,
    registered_tasks,
    suite_tasks,
)

__all__ = [
    "SPLITS",
    "Item",
    "ManifestError",
    "ManifestResult",
    "Task",
    "TaskSpec",
    "UnknownTaskError",
    "available_tasks",
    "get_task",
    "load_manifest",
    "register",
    "registered_tasks",
    "suite_tasks",
]
