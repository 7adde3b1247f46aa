"""Side-by-side answers for one question: the original LLM reading it, the adapted model hearing it, the cascade.

The dashboard's demo page holds one `DemoSession` per model (a cached resource) and calls `answer` per question.
It uses the same prompt, lanes and scorer as `salad eval`, so a demo answer is exactly what an evaluation would
record for that item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salad_core.errors import InputError
from salad_core.eval.config import EvalConfig
from salad_core.eval.lanes import LaneScorer, PreparedItem, fewshot_for
from salad_core.eval.metrics import pred_column
from salad_core.eval.runner import build_model
from salad_core.eval.vocabulary import HEADLINE_SCORING, LANE_LABELS
from salad_core.tasks import Item

DEMO_LANES = ("base_text", "speech", "cascade")


@dataclass
class DemoAnswer:
    options: pd.DataFrame  # one row per (lane, option): lane, label, option, logprob, probability, chosen
    transcript: str  # what the cascade's ASR heard
    unknown_words: list[str]  # words of the question and options that the model's tokenizer cannot read
    words: dict[str, str]  # each lane's own answer, generated greedily after its prompt


def unknown_words(tokenizer, text: str) -> list[str]:
    """The pieces of `text` that the tokenizer maps to its unknown token (a word-level vocabulary's gaps), in order,
    each once; always empty for byte-level tokenizers, which read anything."""
    if tokenizer.unk_token_id is None:
        return []
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces = [text[a:b] for i, (a, b) in zip(encoding.input_ids, encoding.offset_mapping) if i == tokenizer.unk_token_id]
    return list(dict.fromkeys(pieces))


class DemoSession:
    def __init__(self, config: EvalConfig):
        from salad_core.asr import Transcriber

        self.config = config
        self.model = build_model(config)
        self.scorer = LaneScorer(self.model, Transcriber(config.asr, beam_size=config.asr_beam))

    @classmethod
    def from_run_config(cls, run_config: dict) -> DemoSession:
        """The model a stored eval run used (its config as saved in the `runs` table)."""
        known = EvalConfig.__dataclass_fields__
        return cls(EvalConfig(**{k: v for k, v in run_config.items() if k in known}))

    def answer(self, question: str, choices: list[str], audio: np.ndarray, task: str | None = None,
               answer: int = 0) -> DemoAnswer:
        """Score `choices` on every demo lane; `audio` (16 kHz) is what the speech lanes hear."""
        choices = [c.strip() for c in choices if c.strip()]
        if len(choices) < 2:
            raise InputError("a question needs at least two non-empty answer options")
        item = Item(task or "demo", "demo", "test", question.strip(), tuple(choices), answer, "demo")
        fewshot = fewshot_for(task, self.config.k_shot, self.config.seed, []) if task else []
        prepared = PreparedItem(item, "demo", audio, "demo")
        scoring = self.config.scoring if self.config.scoring != "generate" else HEADLINE_SCORING
        predictions, outputs = self.scorer.rows(prepared, fewshot, list(DEMO_LANES), scoring)
        chosen = {o["lane"]: o[pred_column(scoring)] for o in outputs}
        transcript = next((o["transcript"] for o in outputs if o["transcript"] is not None), "")
        rows = []
        for lane, picked in chosen.items():
            logprobs = np.array([r["logprob"] for r in predictions if r["lane"] == lane])
            probs = np.exp(logprobs - logprobs.max())
            probs /= probs.sum()
            rows += [{"lane": lane, "label": LANE_LABELS[lane], "option": c, "logprob": float(lp),
                      "probability": float(p), "chosen": j == picked}
                     for j, (c, lp, p) in enumerate(zip(choices, logprobs, probs))]
        unread = unknown_words(self.model.tokenizer, " ".join([question, *choices]))
        return DemoAnswer(pd.DataFrame(rows), transcript, unread,
                          self.scorer.answers(prepared, fewshot, list(DEMO_LANES), transcript))
