"""Log-likelihood scoring of multiple-choice options, as lm-evaluation-harness defines it.

Every option is a continuation of the item's context; its score is the summed log-probability of its tokens.
`score_options` runs the shared context once (keeping its key/value cache and the logits of its last position
only), then scores all options of the item in one batched forward pass over the cache. Items of one task share
their few-shot examples: a `Prefix` holds that part's cache, computed once per task, so each item runs only its
own question. `score_options_loop` is the plain reference: one full forward per option. Both take the context as
input embeddings, so one scorer serves text contexts, speech contexts and interleaved ones.

Shape legend: T context length, D hidden size, B options, L longest option in tokens, V vocabulary.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from salad_core.errors import InputError


@dataclass(frozen=True)
class OptionScore:
    logprob: float  # sum over the option's tokens
    n_tokens: int
    is_greedy: bool  # every option token is the arg-max continuation


def option_token_ids(tokenizer, choices: list[str], delimiter: str = " ") -> list[list[int]]:
    """Token ids of each option as it continues the context (`delimiter` + choice, as lm-eval's target_delimiter)."""
    ids = [tokenizer(delimiter + choice, add_special_tokens=False).input_ids for choice in choices]
    empty = [c for c, i in zip(choices, ids) if not i]
    if empty:
        raise InputError(f"options {empty!r} tokenize to nothing; every option needs at least one token")
    return ids


@dataclass
class Prefix:
    """The key/value cache of the first `length` context positions, shared by every item that starts with them."""

    length: int
    cache: object  # a transformers Cache for batch size 1

    @classmethod
    @torch.no_grad()
    def compute(cls, llm: nn.Module, embeds: torch.Tensor) -> Prefix:
        return cls(embeds.shape[0], llm(inputs_embeds=embeds[None], use_cache=True, logits_to_keep=1).cache)


@torch.no_grad()
def score_options(llm: nn.Module, context: torch.Tensor, options: list[list[int]], prefix: Prefix | None = None) -> list[OptionScore]:
    """context (T, D) embeddings; options: token ids per option -> one score per option.

    With `prefix`, the first `prefix.length` positions of `context` must be the embeddings the prefix was computed
    from; only the rest is run (on a copy of the prefix cache, which stays reusable).
    """
    if prefix is not None and 0 < prefix.length < context.shape[0]:
        cache = copy.deepcopy(prefix.cache)
        mask = torch.ones(1, context.shape[0], dtype=torch.long, device=context.device)
        out = llm(inputs_embeds=context[None, prefix.length :], attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1)
    else:
        out = llm(inputs_embeds=context[None], use_cache=True, logits_to_keep=1)
    first_logprobs = out.logits[0, -1].float().log_softmax(-1)  # (V,) predicts each option's first token
    cache = out.cache
    n_options, longest = len(options), max(len(o) for o in options)
    ids = torch.zeros(n_options, longest, dtype=torch.long, device=context.device)
    mask = torch.zeros(n_options, context.shape[0] + longest, dtype=torch.long, device=context.device)
    mask[:, : context.shape[0]] = 1
    for b, option in enumerate(options):
        ids[b, : len(option)] = torch.tensor(option)
        mask[b, context.shape[0] : context.shape[0] + len(option)] = 1
    if longest == 1:  # every option is one token: the context's last logits already score them all
        return [_score(first_logprobs, None, option) for option in options]
    cache.batch_repeat_interleave(n_options)
    # Right padding is safe: pad positions come after every real token, so causal attention never sees them.
    logits = llm(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], cache=cache).logits  # (B, L-1, V)
    logprobs = logits.float().log_softmax(-1)
    return [_score(first_logprobs, logprobs[b], option) for b, option in enumerate(options)]


@torch.no_grad()
def score_options_loop(llm: nn.Module, context: torch.Tensor, options: list[list[int]]) -> list[OptionScore]:
    """Reference scorer: the whole context is run again for every option."""
    embed = llm.get_input_embeddings()
    scores = []
    for option in options:
        option_ids = torch.tensor(option, device=context.device)
        sequence = torch.cat([context, embed(option_ids).to(context.dtype)])
        logprobs = llm(inputs_embeds=sequence[None]).logits[0].float().log_softmax(-1)
        start = context.shape[0] - 1
        scores.append(_score(logprobs[start], logprobs[start + 1 :], option))
    return scores


def _score(first: torch.Tensor, rest: torch.Tensor | None, option: list[int]) -> OptionScore:
    """first (V,) log-probs before the option; rest (>= len-1, V) log-probs after each of its tokens."""
    rows = first[None] if rest is None or len(option) == 1 else torch.cat([first[None], rest[: len(option) - 1]])
    target = torch.tensor(option, device=rows.device)
    token_logprobs = rows.gather(-1, target[:, None]).squeeze(-1)
    greedy = bool((rows.argmax(-1) == target).all())
    return OptionScore(float(token_logprobs.sum()), len(option), greedy)
