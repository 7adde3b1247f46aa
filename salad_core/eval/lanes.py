"""The lanes of the paired item: one prompt, scored each way.

    base_text  the original LLM reads the question          text     the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
    noaudio    the adapted model hears silence as long as the question: what the options alone give away

All lanes share the few-shot examples (as text), the prompt template and the options, so the differences between
lanes measure the modality alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from salad_core.asr import word_error_rate
from salad_core.eval.answers import LETTERS, match_answer
from salad_core.eval.metrics import choose
from salad_core.eval.scoring import OptionScore, Prefix, option_token_ids, score_options
from salad_core.eval.vocabulary import AUDIO_LANES
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


# -- scoring one item on every lane ----------------------------------------------------------------------------


class LaneScorer:
    """Holds the models of one run and scores an item's options on each lane.

    The few-shot prefix (segment 0 of every prompt of a task) is run once per reader and reused: `teacher` is the
    original LLM, `student` the adapted model's LLM (the same module with LoRA switched on, for LoRA runs). Each
    reader tokenizes and frames its prompts its own way (`model.tokenizer_for`, `model.prompt`): a speech LLM's text
    LLM may have another vocabulary and chat template than the speech LLM.
    """

    def __init__(self, model, transcriber, lanes: list[str], max_new_tokens: int = 32):
        self.model, self.transcriber, self.lanes, self.max_new_tokens = model, transcriber, lanes, max_new_tokens
        self._prefixes: dict[tuple[str, str], Prefix] = {}

    def _text_context(self, llm, segments: list[Segment], reader: str) -> torch.Tensor:
        """The embedded tokens of all-text segments, as `llm` reads them."""
        table = llm.get_input_embeddings()  # the ids are built on the CPU; the LLM may sit on a GPU
        tokenizer = self.model.tokenizer_for(reader)
        return table(pair_segments(tokenizer, segments, []).teacher_ids.to(table.weight.device))

    def _heard_context(self, prepared: PreparedItem, segments: list[Segment]) -> torch.Tensor:
        """The adapted model's input embeddings of segments whose question is heard (its cached frames if any)."""
        cached = None if prepared.frames is None else self.model.adapt_frames([prepared.frames])
        return self.model.pair(segments, cached)[1]

    def _score(self, role: str, llm, segments: list[Segment], choices: tuple[str, ...],
               context: torch.Tensor | None = None) -> list[OptionScore]:
        """Score on `llm` after `segments` (framed as `role` reads them: `model.prompt`); `context` defaults to their
        all-text embeddings."""
        if context is None:
            context = self._text_context(llm, segments, role)
        key = (role, segments[0].text)
        if key not in self._prefixes:
            n = len(tokenize_segment(self.model.tokenizer_for(role), segments[0].text))
            self._prefixes[key] = Prefix.compute(llm, context[:n])
        return score_options(llm, context, option_token_ids(self.model.tokenizer_for(role), list(choices)),
                             self._prefixes[key])

    def score(self, prepared: PreparedItem, fewshot: list[Item],
              lanes: list[str] | None = None) -> dict[str, tuple[list[OptionScore], str | None]]:
        """Options scored on each of `lanes` (default: the run's), with the cascade's transcript."""
        item, model, lanes = prepared.item, self.model, self.lanes if lanes is None else lanes
        frame = model.prompt
        out: dict[str, tuple[list[OptionScore], str | None]] = {}
        text_segments = prompt_segments(fewshot, item.question)
        with model.teacher() as teacher:
            if "base_text" in lanes:
                out["base_text"] = (self._score("teacher", teacher, frame(text_segments, "teacher"), item.choices), None)
            if "cascade" in lanes:
                transcript = self.transcribe(prepared)
                heard = frame(prompt_segments(fewshot, transcript), "teacher")
                out["cascade"] = (self._score("teacher", teacher, heard, item.choices), transcript)
        if "text" in lanes:
            if model.student_llm_is_teacher and "base_text" in out:
                out["text"] = out["base_text"]  # a frozen LLM reads text exactly as the original: same numbers
            else:
                read = frame(text_segments, "student")
                out["text"] = (self._score("student", model.text_reader, read, item.choices), None)
        role = "teacher" if model.student_llm_is_teacher else "student"
        if "speech" in lanes:
            spoken = frame(prompt_segments(fewshot, item.question, prepared.audio, prepared.audio_id), role)
            context = self._heard_context(prepared, spoken)
            out["speech"] = (self._score(role, model.llm, spoken, item.choices, context), None)
        if "noaudio" in lanes and prepared.audio is not None:
            silent = frame(prompt_segments(fewshot, item.question, np.zeros_like(prepared.audio)), role)
            _, embeds = model.pair(silent, None)  # through the encoder: cached frames are of the real audio
            out["noaudio"] = (self._score(role, model.llm, silent, item.choices, embeds), None)
        return out

    def transcribe(self, prepared: PreparedItem) -> str:
        return transcript_form(prepared.item.task)(self.transcriber.transcribe(prepared.audio))

    @torch.no_grad()
    def words(self, prepared: PreparedItem, fewshot: list[Item], transcript: str | None = None,
              lanes: list[str] | None = None, choices: bool = False) -> dict[str, str]:
        """Each lane's answer in its own words: the greedy continuation of the lane's prompt in the reader's chat
        template (`model.chat`), to the end of its line. The cascade reads `transcript`, what `score` heard. With
        `choices`, the prompt lists the item's options as lettered lines (generative scoring, eval/answers.py)."""
        item, model, lanes = prepared.item, self.model, self.lanes if lanes is None else lanes
        options, max_new_tokens = (item.choices if choices else None), self.max_new_tokens

        def prompt(reader: str, question: str, audio: np.ndarray | None = None, clip_id: str | None = None):
            return model.chat(prompt_segments(fewshot, question, audio, clip_id, options), reader)

        def read(llm, reader: str, question: str) -> str:
            context = self._text_context(llm, prompt(reader, question), reader)
            return greedy_answer(llm, model.tokenizer_for(reader), context, max_new_tokens)

        out: dict[str, str] = {}
        with model.teacher() as teacher:
            if "base_text" in lanes:
                out["base_text"] = read(teacher, "teacher", item.question)
            if "cascade" in lanes and transcript is not None:
                out["cascade"] = read(teacher, "teacher", transcript)
        if "text" in lanes:
            out["text"] = read(model.text_reader, "student", item.question)
        role = "teacher" if model.student_llm_is_teacher else "student"
        if "speech" in lanes and (prepared.audio is not None or prepared.frames is not None):
            context = self._heard_context(prepared, prompt(role, item.question, prepared.audio, prepared.audio_id))
            out["speech"] = greedy_answer(model.llm, model.tokenizer_for(role), context, max_new_tokens)
        if "noaudio" in lanes and prepared.audio is not None:
            _, context = model.pair(prompt(role, item.question, np.zeros_like(prepared.audio)), None)
            out["noaudio"] = greedy_answer(model.llm, model.tokenizer_for(role), context, max_new_tokens)
        return out


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
