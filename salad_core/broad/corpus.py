"""`BroadSpeech`: read access to the built broad speech corpus, with the parts of `World`'s interface that training
uses (speech documents, the text they are made of, cached frames, and the built-in tasks' dev items as spoken for
the periodic evaluation), so that the trainer and its evaluation serve the `smol` preset as they serve the worlds.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from salad_core.clips import ClipBank, read_jsonl
from salad_core.documents import SpeechDoc
from salad_core.tasks.item import Item
from salad_core.world.world import Domain


class BroadSpeech:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest: dict = json.loads((self.root / "manifest.json").read_text())
        self.name = "broad"
        self.eval_voice = self.manifest["eval_voice"]
        self.domains = [Domain(task, task, "task", False, f"built-in task {task}") for task in self.manifest["tasks"]]

    def __repr__(self) -> str:
        return f"BroadSpeech({self.root})"

    # -- training --------------------------------------------------------------------------------------------

    @functools.cached_property
    def _corpus(self) -> list[dict]:
        return read_jsonl(self.root / "corpus.jsonl")

    def text_corpus(self) -> list[str]:
        """Every sentence the documents are made of (what text replay reads)."""
        return [row["text"] for row in self._corpus]

    def speech_docs(self) -> list[SpeechDoc]:
        return [SpeechDoc.from_record(r) for r in read_jsonl(self.root / "speech_docs.jsonl")]

    def training_texts(self) -> dict[str, list[str]]:
        from salad_core.broad.build import training_sources

        return training_sources(read_jsonl(self.root / "speech_docs.jsonl"))

    @functools.cached_property
    def bank(self) -> ClipBank:
        return ClipBank(self.root, self.manifest["encoder"], "the broad speech corpus",
                        "rebuild it with `salad world build --corpus broad`.")

    def features(self, clip_ids: list[str], encoder=None):
        return self.bank.features(clip_ids, encoder)

    def audio(self, clip_id: str):
        return self.bank.audio(clip_id)

    # -- periodic evaluation -----------------------------------------------------------------------------------

    @functools.cached_property
    def _dev_clips(self) -> dict[str, str]:
        return {r["item_id"]: r["clip_id"] for r in read_jsonl(self.root / "dev_items.jsonl")}

    def task_items(self, task: str, split: str) -> list[Item]:
        """The task's items of `split`; for "dev", those spoken at build time (the periodic evaluation's slice)."""
        from salad_core.tasks import get_task

        items = get_task(task).items(split)
        return [i for i in items if i.item_id in self._dev_clips] if split == "dev" else items

    def eval_clip(self, item_id: str) -> str:
        if item_id not in self._dev_clips:
            raise KeyError(f"{item_id} is not among the broad corpus's spoken dev items. Fix: use task_items(task, "
                           "'dev').")
        return self._dev_clips[item_id]

    def probe_set(self):
        """Corpus F and M: the broad held-out probe set (WordNet glosses no training text uses, a held-out voice)."""
        from salad_core.eval.probes import broad_probe_set

        return broad_probe_set(self.manifest["encoder"])

    def eval_facts(self) -> dict[str, list[dict]]:
        """Task -> the facts of every item of the built-in tasks it was audited against (broad/audit.py)."""
        from salad_core.broad.audit import suite_facts

        return suite_facts(self.manifest["tasks"])

    def audit(self) -> list[dict]:
        """The leak audit of the built corpus against every item of the built-in tasks (0 leaks, or it is not built)."""
        from salad_core.broad.audit import audit_table

        return audit_table(self.eval_facts(), self.training_texts())

    def info(self) -> dict:
        keys = ("name", "folder", "tasks", "sources", "n_speech_docs", "n_train_clips", "n_failed_clips",
                "speech_hours", "train_voices", "train_speeds", "eval_voice", "encoder", "audit", "build_s", "built_at")
        return {**{k: self.manifest.get(k) for k in keys}, "root": str(self.root)}
