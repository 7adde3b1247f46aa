"""Task specifications, the registry, and `Task`, the lazily built and cached view of a task's items.

After lm-evaluation-harness: a task is defined once, as data plus a small builder, and is looked up by name;
the modality (text or speech) belongs to the evaluator, not to the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from salad_core.assets import AssetError
from salad_core.errors import InputError, UnknownNameError
from salad_core.tasks.item import SPLITS, Item
from salad_core.text import stable_hash


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: str  # bump whenever the built items change
    domain: str
    description: str
    source: str  # where the facts come from: package name and version, or "generated"
    build: Callable[[], list[Item]]  # all items, split assigned
    # Raises an AssetError (usually MissingPackageError) when the data source is not installed; cheap.
    check: Callable[[], None] | None = None
    # How a transcript of a spoken question is written before a model reads it and before WER counts it: the task's
    # own text form (a mini world writes "three", lower case, where Whisper writes "3."). None: as transcribed.
    transcript_form: Callable[[str], str] | None = None
    # The task's own spoken question of an item: (16 kHz audio, its store record, plus "frames" when the encoder
    # frames are cached and "encoder" naming the encoder that made them). None: a TTS voice speaks it.
    spoken: Callable[[Item], tuple] | None = None
    in_suite: bool = True  # part of the default suite of `salad eval` (a mini world's tasks are not)


class UnknownTaskError(UnknownNameError):
    """A task name that is not registered; the message lists the registered ones."""


_REGISTRY: dict[str, TaskSpec] = {}
_TASKS: dict[str, Task] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add (or replace) a task under `spec.name`; returns the spec, so `X = register(TaskSpec(...))` reads well."""
    if not spec.name or ":" in spec.name:
        raise ValueError(f"Task name {spec.name!r} must be non-empty and contain no ':' (item ids are task:doc_id)")
    _REGISTRY[spec.name] = spec
    _TASKS.pop(spec.name, None)
    return spec


def registered_tasks() -> list[str]:
    """Every registered task, whether or not its data is installed here."""
    return sorted(_REGISTRY)


def available_tasks() -> list[str]:
    """The registered tasks whose data sources are installed here, sorted."""
    names = []
    for name, spec in sorted(_REGISTRY.items()):
        try:
            if spec.check is not None:
                spec.check()
        except AssetError:
            continue
        names.append(name)
    return names


def suite_tasks() -> list[str]:
    """The default suite of `salad eval`: the available tasks that are part of it (the built-in ones), sorted."""
    return [name for name in available_tasks() if _REGISTRY[name].in_suite]


def task_spec(name: str) -> TaskSpec | None:
    """The registered spec of `name`, or None (a manifest's task)."""
    return _REGISTRY.get(name)


def transcript_form(task: str) -> Callable[[str], str]:
    """The registered task's transcript form; unchanged text for other tasks (manifests, the demo's questions)."""
    spec = _REGISTRY.get(task)
    return spec.transcript_form if spec is not None and spec.transcript_form is not None else str


def get_task(name: str) -> Task:
    """The task called `name` (built on first use, then cached).

    Raises UnknownTaskError for an unregistered name and the source's AssetError when its data is missing.
    """
    if name not in _REGISTRY:
        known = ", ".join(registered_tasks()) or "(none)"
        raise UnknownTaskError(f"Unknown task {name!r}. Registered tasks: {known}. Fix: use one of these names.")
    spec = _REGISTRY[name]
    if spec.check is not None:
        spec.check()
    if name not in _TASKS:
        _TASKS[name] = Task(spec)
    return _TASKS[name]


class Task:
    """A built task. Items are ordered by a hash of doc_id, so `items(limit=N)` is a fixed, mixed sample."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self._items: list[Item] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    def all_items(self) -> list[Item]:
        if self._items is None:
            self._items = self._validated(self.spec.build())
        return list(self._items)

    def _validated(self, items: list[Item]) -> list[Item]:
        seen: set[str] = set()
        for item in items:
            if item.task != self.name:
                raise ValueError(f"Task {self.name!r} built an item of task {item.task!r} ({item.doc_id})")
            if item.doc_id in seen:
                raise ValueError(f"Task {self.name!r} built doc_id {item.doc_id!r} twice")
            seen.add(item.doc_id)
        return sorted(items, key=lambda it: (stable_hash(self.name, "order", it.doc_id), it.doc_id))

    def items(self, split: str = "test", limit: int | None = None) -> list[Item]:
        """The items of one split in their fixed order; the first `limit` of them when given."""
        if split not in SPLITS:
            raise InputError(f"Unknown split {split!r} for task {self.name!r}. Fix: use one of {', '.join(SPLITS)}")
        if limit is not None and limit < 0:
            raise InputError(f"limit must be >= 0 or None, got {limit}")
        chosen = [it for it in self.all_items() if it.split == split]
        return chosen if limit is None else chosen[:limit]

    def fewshot(self, k: int, seed: int = 0) -> list[Item]:
        """`k` items from the few-shot pool, the same ones for the same (k, seed); disjoint from dev and test."""
        pool = self.items("fewshot")
        if not 0 <= k <= len(pool):
            raise InputError(
                f"Task {self.name!r} has {len(pool)} few-shot items; asked for k={k}. Fix: use 0 <= k <= {len(pool)}"
            )
        return sorted(pool, key=lambda it: stable_hash(self.name, "fewshot", str(seed), it.doc_id))[:k]

    def __repr__(self) -> str:
        return f"Task({self.name!r}, version={self.version!r})"
