"""One multiple-choice question, the unit every task and manifest yields.

Modality is not part of an item: the text and the speech condition see the same question, choices and answer
(the paper scores each choice as a continuation of the question, text or spoken; see docs/method.md).
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("dev", "test", "fewshot")


@dataclass(frozen=True)
class Item:
    task: str  # task name
    doc_id: str  # stable id inside the task, e.g. "capitals/France"
    split: str  # "dev" | "test" | "fewshot"
    question: str  # as read aloud / shown
    choices: tuple[str, ...]  # answer options as continuations
    answer: int  # index of the correct choice
    domain: str  # "geography", "science", "math", "language", "history", "general", ...
    audio: str | None = None  # path to a recording, when the item comes with one (manifests)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"Item {self.item_id}: split {self.split!r} is not one of {', '.join(SPLITS)}")
        if len(self.choices) < 2:
            raise ValueError(f"Item {self.item_id}: needs at least 2 choices, got {len(self.choices)}")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"Item {self.item_id}: answer {self.answer} is outside 0..{len(self.choices) - 1}")

    @property
    def item_id(self) -> str:
        return f"{self.task}:{self.doc_id}"

    @property
    def target(self) -> str:
        """The correct choice's text."""
        return self.choices[self.answer]
