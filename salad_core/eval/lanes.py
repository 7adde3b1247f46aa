"""The lanes of the paired item: one prompt, put to the model each way the lane table (eval/vocabulary.py) says.

    base_text  the original LLM reads the question          text     the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
    noaudio    the adapted model hears silence as long as the question: what the options alone give away

All lanes share the few-shot examples (as text), the prompt template and the options, so the differences between
lanes measure the modality alone. `LaneScorer` builds any lane's prompt from the lane's fields, then scores the
options on it or lets the reader answer in its own words; `lane_rows` and `answer_row` are the store's rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from salad_core.asr import word_error_rate
from salad_core.eval.answers import LETTERS, match_answer
from salad_core.eval.metrics import choose
from salad_core.eval.scoring import OptionScore, Prefix, option_token_ids, score_options
from salad_core.eval.vocabulary import AUDIO_LANES, LANE_TABLE, Lane
from salad_core.model.processing import Segment, pair_segments, tokenize_segment
from salad_core.tasks import Item, get_task
from salad_core.tasks.registry import transcript_form

FEWSHOT_TEMPLATE = "Question: {question}\nAnswer: {answer}\n\n"
QUESTION_TEMPLATE = "Question: {question}\nAnswer:"  # the question span is the part that is spoken
PROMPT_TEMPLATE = "{fewshot}" + QUESTION_TEMPLATE + " {choice}"


@dataclass
class PreparedItem:
    item: Item
    item_id: str  # store key
    audio: np.ndarray | None  # what the speech lanes hear ...
    audio_id: str | None  # (None when only the text lanes score the item)
    frames: torch.Tensor | None = None  # ... or its cached encoder frames (training-time evaluations)


# -- prompts ---------------------------------------------------------------------------------------------------


def prompt_segments(fewshot: list[Item], question: str, audio: np.ndarray | None = None,
                    clip_id: str | None = None, choices: tuple[str, ...] | None = None) -> list[Segment]:
    """Few-shot examples as text, then the question (heard when `audio` or a cached `clip_id` is given), then the
    answer cue. With `choices` (generative scoring) every question is followed by its options as lettered lines and
    every example answered by its letter."""
    def shown(options: tuple[str, ...] | None) -> str:
        return "".join(f"\n{LETTERS[j]}. {c}" for j, c in enumerate(options)) if options is not None else ""

    answer = (lambda e: LETTERS[e.answer]) if choices is not None else (lambda e: e.target)
    prefix = "".join(FEWSHOT_TEMPLATE.format(question=e.question + shown(e.choices if choices is not None else None),
                                             answer=answer(e)) for e in fewshot)
    before, after = QUESTION_TEMPLATE.split("{question}")
    return [Segment(prefix + before.rstrip()), Segment(" " + question, audio, clip_id), Segment(shown(choices) + after)]


def fewshot_for(task_name: str, k: int, seed: int, manifest_items: list[Item]) -> list[Item]:
    if k <= 0:
        return []
    pool = [i for i in manifest_items if i.task == task_name and i.split == "fewshot"]
    if pool:
        return pool[:k]
    try:
        task = get_task(task_name)
    except KeyError:
        return []  # a manifest task without a few-shot pool runs zero-shot
    return task.fewshot(min(k, len(task.items("fewshot"))), seed=seed)  # small pools give what they have


# -- putting an item to a lane ----------------------------------------------------------------------------------


class LaneScorer:
    """Holds the models of one run and puts an item to any lane of the lane table (eval/vocabulary.py): its options
    scored (`options`), or its answer in the reader's own words (`answer`).

    A lane's fields alone decide how: its `reader` picks the LLM (the original one, or the adapted model's, which
    reads text with `text_reader` and hears with `llm`) and the role its prompts are framed for (`model.prompt`,
    `model.chat`, `model.tokenizer_for`: a speech LLM's text LLM may have another vocabulary and chat template than
    the speech LLM); its `question` says what sits where the question goes (the question read, the cascade's
    transcript of its audio read, its audio heard, or silence of the same length heard). The few-shot prefix (segment
    0 of every prompt of a task) is run once per reader and reused.
    """

    def __init__(self, model, transcriber=None, max_new_tokens: int = 32):
        self.model, self.transcriber, self.max_new_tokens = model, transcriber, max_new_tokens
        self._prefixes: dict[tuple[str, str], Prefix] = {}

    # -- one lane ----------------------------------------------------------------------------------------------

    def hears(self, lane: Lane, prepared: PreparedItem) -> bool:
        """Whether the item can be put to the lane: a heard question needs its audio or cached frames, the
        transcript and the silence need its audio."""
        if lane.question == "heard":
            return prepared.audio is not None or prepared.frames is not None
        return not lane.hears or prepared.audio is not None

    def options(self, lane: Lane, prepared: PreparedItem, fewshot: list[Item],
                transcript: str | None = None) -> list[OptionScore]:
        """The item's options scored as continuations of the lane's prompt (`transcript`: what the cascade read)."""
        with self._reader(lane) as (llm, role):
            segments = self.model.prompt(self._segments(lane, prepared, fewshot, transcript), role)
            context = self._context(lane, llm, role, segments, prepared)
            key = (role, segments[0].text)
            if key not in self._prefixes:
                n = len(tokenize_segment(self.model.tokenizer_for(role), segments[0].text))
                self._prefixes[key] = Prefix.compute(llm, context[:n])
            options = option_token_ids(self.model.tokenizer_for(role), list(prepared.item.choices))
            return score_options(llm, context, options, self._prefixes[key])

    @torch.no_grad()
    def answer(self, lane: Lane, prepared: PreparedItem, fewshot: list[Item], transcript: str | None = None,
               choices: bool = False) -> str:
        """The lane's answer in the reader's own words: the greedy continuation of its prompt in the reader's chat
        template (`model.chat`), to the end of its line. With `choices`, the prompt lists the item's options as
        lettered lines (generative scoring, eval/answers.py)."""
        options = prepared.item.choices if choices else None
        with self._reader(lane) as (llm, role):
            segments = self.model.chat(self._segments(lane, prepared, fewshot, transcript, options), role)
            context = self._context(lane, llm, role, segments, prepared)
            return greedy_answer(llm, self.model.tokenizer_for(role), context, self.max_new_tokens)

    def transcribe(self, prepared: PreparedItem) -> str:
        return transcript_form(prepared.item.task)(self.transcriber.transcribe(prepared.audio))

    @contextlib.contextmanager
    def _reader(self, lane: Lane) -> Iterator[tuple[nn.Module, str]]:
        """The LLM that answers on the lane, and the role its prompts are framed for."""
        model = self.model
        if lane.reader == "original":
            with model.teacher() as teacher:
                yield teacher, "teacher"
        elif lane.question == "read":
            yield model.text_reader, "student"
        else:  # a frozen LLM hears with the original's weights: its prompts share the original's prefix cache
            yield model.llm, "teacher" if model.student_llm_is_teacher else "student"

    def _segments(self, lane: Lane, prepared: PreparedItem, fewshot: list[Item], transcript: str | None,
                  choices: tuple[str, ...] | None = None) -> list[Segment]:
        item = prepared.item
        if lane.question == "transcript":
            return prompt_segments(fewshot, transcript, choices=choices)
        if lane.question == "heard":
            return prompt_segments(fewshot, item.question, prepared.audio, prepared.audio_id, choices)
        if lane.question == "silence":
            return prompt_segments(fewshot, item.question, np.zeros_like(prepared.audio), choices=choices)
        return prompt_segments(fewshot, item.question, choices=choices)

    def _context(self, lane: Lane, llm, role: str, segments: list[Segment], prepared: PreparedItem) -> torch.Tensor:
        """(T, D) input embeddings of the framed prompt, as the lane's reader takes them in."""
        if lane.question == "heard" and prepared.frames is not None:
            return self.model.pair(segments, self.model.adapt_frames([prepared.frames]))[1]
        if lane.hears and lane.question != "transcript":  # the audio (or the silence) through the encoder
            return self.model.pair(segments, None)[1]
        table = llm.get_input_embeddings()  # the ids are built on the CPU; the LLM may sit on a GPU
        ids = pair_segments(self.model.tokenizer_for(role), segments, []).teacher_ids
        return table(ids.to(table.weight.device))

    # -- every lane of one item ------------------------------------------------------------------------------

    def rows(self, prepared: PreparedItem, fewshot: list[Item], lanes: list[str],
             scoring: str) -> tuple[list[dict], list[dict]]:
        """The store's rows of one item on `lanes`: per-option predictions and one output per lane (scoring "acc"
        or "acc_norm"), or one output per lane with its free answer matched to an option ("generate"). Lanes the
        item cannot be put to are left out."""
        put = [LANE_TABLE[name] for name in lanes if self.hears(LANE_TABLE[name], prepared)]
        transcript = self.transcribe(prepared) if any(lane.question == "transcript" for lane in put) else None
        predictions, outputs, done = [], [], {}
        for lane in put:
            heard = transcript if lane.question == "transcript" else None
            if scoring == "generate":
                outputs.append(answer_row(prepared, lane.name, self.answer(lane, prepared, fewshot, heard, True), heard))
                continue
            twin = self._twin(lane)
            done[lane.name] = done[twin] if twin in done else self.options(lane, prepared, fewshot, heard)
            rows, output = lane_rows(prepared, lane.name, done[lane.name], heard)
            predictions += rows
            outputs.append(output)
        return predictions, outputs

    def answers(self, prepared: PreparedItem, fewshot: list[Item], lanes: list[str],
                transcript: str | None = None) -> dict[str, str]:
        """Each lane's answer in its own words (the demo's); the cascade reads `transcript`, what was heard."""
        put = [LANE_TABLE[name] for name in lanes if self.hears(LANE_TABLE[name], prepared)]
        return {lane.name: self.answer(lane, prepared, fewshot, transcript) for lane in put
                if lane.question != "transcript" or transcript is not None}

    def _twin(self, lane: Lane) -> str | None:
        """The lane that reads exactly as this one, when there is one: a frozen LLM reads text as the original."""
        if self.model.student_llm_is_teacher and lane.reader == "adapted" and lane.question == "read":
            return next(name for name, other in LANE_TABLE.items()
                        if other.reader == "original" and other.question == "read")
        return None


def greedy_answer(llm, tokenizer, context: torch.Tensor, max_new_tokens: int = 32) -> str:
    """Greedy decoding after (T, D) input embeddings, up to the end of the first line with text on it."""
    table = llm.get_input_embeddings()
    out = llm(inputs_embeds=context[None].to(table.weight.device), use_cache=True)
    ids: list[int] = []
    for _ in range(max_new_tokens):
        next_id = int(out.logits[0, -1].argmax())
        if next_id == tokenizer.eos_token_id:
            break
        ids.append(next_id)
        if "\n" in tokenizer.decode(ids).lstrip():
            break
        step = table(torch.tensor([[next_id]], device=table.weight.device))
        out = llm(inputs_embeds=step, cache=out.cache, use_cache=True)
    return tokenizer.decode(ids).strip().split("\n")[0].strip()


def lane_rows(prepared: PreparedItem, lane: str, scores: list[OptionScore], transcript: str | None) -> tuple[list[dict], dict]:
    """Store rows for one item on one lane: per-option predictions and the item's output."""
    item = prepared.item
    n_chars = [len(c) for c in item.choices]
    pred, pred_norm = choose([s.logprob for s in scores], n_chars)
    predictions = [
        {"item_id": prepared.item_id, "lane": lane, "choice_idx": j, "logprob": s.logprob, "n_chars": n_chars[j],
         "n_tokens": s.n_tokens, "is_greedy": s.is_greedy}
        for j, s in enumerate(scores)
    ]
    output = {
        "item_id": prepared.item_id, "lane": lane, "audio_id": prepared.audio_id if lane in AUDIO_LANES else None,
        "pred": pred, "pred_norm": pred_norm, "correct": pred == item.answer, "correct_norm": pred_norm == item.answer,
        "transcript": transcript, "wer": word_error_rate(item.question, transcript) if transcript is not None else None,
    }
    return predictions, output


def answer_row(prepared: PreparedItem, lane: str, answer: str, transcript: str | None) -> dict:
    """The store's output row of one lane's free answer (generative scoring): the option it names, or a parse
    failure (pred -1, wrong) when it names none (eval/answers.py)."""
    item = prepared.item
    pred = match_answer(answer, item.choices)
    chosen = -1 if pred is None else pred
    return {"item_id": prepared.item_id, "lane": lane, "audio_id": prepared.audio_id if lane in AUDIO_LANES else None,
            "pred": chosen, "pred_norm": chosen, "correct": chosen == item.answer, "correct_norm": chosen == item.answer,
            "transcript": transcript, "answer_text": answer, "parse_fail": pred is None,
            "wer": word_error_rate(item.question, transcript) if transcript is not None else None}
