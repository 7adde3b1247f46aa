"""Hidden states of every layer for paired items: the same question read by the adapted model and heard by it.

Each item becomes the zero-shot probe of salad_core/eval/divergence.py, "Question: <q>\\nAnswer: <target>", in two
views (`SaladModel.pair`): all text, and with the question spoken. Per layer we keep
    pooled   the mean hidden state over the question's positions: its text tokens, or the adapter frames of its audio
    aligned  the hidden states at the positions whose next token is text in both views (PairedSequence.teacher_pred
             and .student_pred) from the spoken question on: its end, the answer cue and the answer; one row each
and at the aligned positions the KL(P(.|text) || P(.|speech)) of the next-token distributions (SALAD's M, per
token). Positions before the question are left out: there both views read the same tokens, so they agree exactly
and would only dilute the comparison (the evaluation's M counts them; its per-item mean is lower by that share).
Both lanes' answers to the multiple-choice item come from the evaluation's own scorer (`LaneScorer`, the headline
choice, k-shot text examples), so the explorer's answers are the ones `salad eval` gives.

Layer 0 is the input embeddings, layer L the last block's output after the final norm (as `transformers`
returns `hidden_states`). Results are cached (salad_core.explore.cache) by model weights and item set.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from salad_core.eval.lanes import LaneScorer, PreparedItem, fewshot_for, prompt_segments
from salad_core.eval.metrics import pred_column
from salad_core.eval.vocabulary import HEADLINE_SCORING, K_SHOT
from salad_core.explore import cache
from salad_core.explore.metrics import item_kl, layer_metrics, metrics_frame
from salad_core.explore.sources import ItemSet, ModelRef, load_model, model_key
from salad_core.losses import kl_per_position
from salad_core.model.processing import Segment, tokenize_segment
from salad_core.progress import NoProgress, Progress
from salad_core.tasks import Item

log = logging.getLogger(__name__)
VIEWS = {"pooled": "question, mean-pooled", "aligned": "aligned next-is-text positions"}
FRAME_GROUP = 16  # spoken questions encoded per call


@dataclass(frozen=True)
class ItemViews:
    """One item's states. L1 = layers + 1, D hidden size, K aligned positions."""

    text_pooled: torch.Tensor  # (L1, D)
    speech_pooled: torch.Tensor  # (L1, D)
    text_aligned: torch.Tensor  # (L1, K, D)
    speech_aligned: torch.Tensor  # (L1, K, D)
    kl: torch.Tensor  # (K,) nats
    targets: torch.Tensor  # (K,) the text token each aligned position predicts


def probe_segments(item: Item) -> list[Segment]:
    """The item as a divergence probe: question heard (or read), then the answer cue and the right answer as text."""
    return prompt_segments([], item.question, clip_id="question") + [Segment(" " + item.target)]


def item_views(model, item: Item, speech_embeds: torch.Tensor) -> ItemViews:
    """Both views of one item through the adapted model's LLM; `speech_embeds` (S, D): its adapted question audio."""
    segments = model.prompt(probe_segments(item), "student")
    paired, student = model.pair(segments, [speech_embeds])
    device = student.device
    with torch.no_grad():
        text = model.text_reader(input_ids=paired.teacher_ids[None].to(device), output_hidden_states=True,
                         logits_to_keep=paired.teacher_pred.to(device))
        speech = model.llm(inputs_embeds=student[None], output_hidden_states=True,
                           logits_to_keep=paired.student_pred.to(device))
    text_states = torch.stack(text.hidden_states)[:, 0].float()  # (L1, T_t, D)
    speech_states = torch.stack(speech.hidden_states)[:, 0].float()  # (L1, T_s, D)
    q_start = len(tokenize_segment(model.tokenizer, segments[0].text))
    q_len = len(tokenize_segment(model.tokenizer, segments[1].text))
    s_start, s_len = paired.speech_spans[0]
    after = (paired.student_pred >= s_start).to(device)  # before the speech both views read the same tokens
    return ItemViews(
        text_states[:, q_start : q_start + q_len].mean(1), speech_states[:, s_start : s_start + s_len].mean(1),
        text_states[:, paired.teacher_pred.to(device)[after]], speech_states[:, paired.student_pred.to(device)[after]],
        kl_per_position(text.logits[0][after], speech.logits[0][after]), paired.targets[after.cpu()])


def lane_answers(scorer: LaneScorer, prepared: PreparedItem, fewshot: list[Item]) -> dict[str, int]:
    """The option each of the text and speech lanes picks, by the evaluation's headline scoring."""
    _, outputs = scorer.rows(prepared, fewshot, ["text", "speech"], HEADLINE_SCORING)
    return {o["lane"]: int(o[pred_column(HEADLINE_SCORING)]) for o in outputs}


def _item_row(p, views: ItemViews, answers: dict[str, int], tokenizer) -> dict:
    item = p.item
    kl = views.kl.cpu().numpy()
    return {"item_id": p.item_id, "task": item.task, "domain": item.domain, "question": item.question,
            "choices": list(item.choices), "answer": item.answer, "audio_ref": p.audio_ref, "audio_id": p.audio_id,
            "text_pred": answers["text"], "speech_pred": answers["speech"],
            "n_positions": int(kl.size),
            "tokens": [tokenizer.decode([int(t)]) for t in views.targets], "token_kl": [float(x) for x in kl]}


def extract(model, item_set: ItemSet, *, k_shot: int = K_SHOT, seed: int = 0, progress: bool = True) -> cache.Extracted:
    """Every layer's paired states, the aligned KL and both lanes' answers for every item of `item_set`."""
    model.eval()
    scorer = LaneScorer(model)
    fewshots: dict[str, list[Item]] = {}
    views, rows = [], []
    bar = Progress(len(item_set.items), "paired representations") if progress else NoProgress()
    with bar, torch.no_grad():
        for start in range(0, len(item_set.items), FRAME_GROUP):
            group = item_set.items[start : start + FRAME_GROUP]
            frames = item_set.frames(model.encoder, group)
            for p, item_frames, embeds in zip(group, frames, model.adapt_frames(frames)):
                task = p.item.task
                if task not in fewshots:
                    fewshots[task] = fewshot_for(task, k_shot, seed, [])
                prepared = PreparedItem(p.item, p.item_id, None, p.audio_id, item_frames)
                v = item_views(model, p.item, embeds)
                views.append(v)
                rows.append(_item_row(p, v, lane_answers(scorer, prepared, fewshots[task]), model.tokenizer))
                bar.update(1, message=task)
    extracted = _stack(views, rows)
    for row, value in zip(rows, item_kl(extracted.token_kl, extracted.token_item, len(rows))):
        row["kl"] = None if np.isnan(value) else float(value)
    return extracted


def _stack(views: list[ItemViews], rows: list[dict]) -> cache.Extracted:
    def cat(name: str, dim: int) -> np.ndarray:
        return torch.cat([getattr(v, name) for v in views], dim=dim).cpu().numpy()

    return cache.Extracted(
        pooled_text=torch.stack([v.text_pooled for v in views], 1).cpu().numpy(),
        pooled_speech=torch.stack([v.speech_pooled for v in views], 1).cpu().numpy(),
        token_text=cat("text_aligned", 1), token_speech=cat("speech_aligned", 1),
        token_item=np.concatenate([np.full(v.kl.numel(), i, dtype=np.int64) for i, v in enumerate(views)]),
        token_kl=cat("kl", 0).astype(np.float32), items=rows)


def metrics_table(extracted: cache.Extracted) -> pd.DataFrame:
    """Per layer and view, the paired metrics of salad_core.explore.metrics (long format)."""
    views = {VIEWS["pooled"]: (extracted.pooled_text, extracted.pooled_speech),
             VIEWS["aligned"]: (extracted.token_text, extracted.token_speech)}
    return metrics_frame([(layer, view, layer_metrics(text[layer], speech[layer]), text.shape[1])
                          for layer in range(extracted.pooled_text.shape[0])
                          for view, (text, speech) in views.items() if text.shape[1]])


def ensure_representations(ref: ModelRef, item_set: ItemSet, *, model=None, k_shot: int = K_SHOT, seed: int = 0,
                           force: bool = False, progress: bool = True) -> cache.Representations:
    """The cached entry for (ref's weights, item set); computed first when missing (`model` skips loading it)."""
    folder = cache.entry_folder(model_key(ref), item_set.digest, k_shot)
    if cache.is_complete(folder) and not force:
        return cache.Representations(folder)
    started = time.perf_counter()
    model = model if model is not None else load_model(ref)
    extracted = extract(model, item_set, k_shot=k_shot, seed=seed, progress=progress)
    meta = {"ref": ref.to_dict(), "item_set": str(item_set.spec), "item_set_digest": item_set.digest,
            "k_shot": k_shot, "seed": seed, "recipe": cache.RECIPE, "n_layers": int(extracted.pooled_text.shape[0]),
            "hidden_size": int(extracted.pooled_text.shape[2]), "n_items": len(extracted.items),
            "n_positions": int(extracted.token_item.size), "compute_s": round(time.perf_counter() - started, 3)}
    cache.write_entry(folder, extracted, metrics_table(extracted), meta)
    log.info("representations of %s on %s: %s", ref.label, item_set.spec, folder)
    return cache.Representations(folder)
