"""The batched option scorer against the per-option reference, and acc / acc_norm choices."""

import numpy as np
import pytest
import torch

from salad_core.eval.metrics import choose
from salad_core.eval.scoring import Prefix, option_token_ids, score_options, score_options_loop
from tests.tiny_models import smol_tokenizer, tiny_llm


@pytest.fixture(scope="module")
def llm():
    return tiny_llm()


def context(llm, text: str) -> torch.Tensor:
    ids = torch.tensor(smol_tokenizer()(text, add_special_tokens=False).input_ids)
    return llm.get_input_embeddings()(ids).detach()


def test_batched_scores_equal_the_per_option_loop(llm):
    ctx = context(llm, "Question: What is the capital of France?\nAnswer:")
    options = option_token_ids(smol_tokenizer(), ["Paris", "Saint Petersburg", "Rio de Janeiro", "Oslo"])
    assert sorted(len(o) for o in options)[-1] > 1  # exercises the multi-token path
    batched, loop = score_options(llm, ctx, options), score_options_loop(llm, ctx, options)
    for b, l, o in zip(batched, loop, options):
        assert b.n_tokens == l.n_tokens == len(o)
        assert b.logprob == pytest.approx(l.logprob, abs=1e-4)
        assert b.is_greedy == l.is_greedy
        assert b.logprob < 0


def test_single_token_options_use_the_context_logits_only(llm):
    ctx = context(llm, "Answer:")
    options = [[5], [6], [7]]
    batched, loop = score_options(llm, ctx, options), score_options_loop(llm, ctx, options)
    assert [b.logprob for b in batched] == pytest.approx([l.logprob for l in loop], abs=1e-4)
    probs = np.exp([b.logprob for b in batched])
    assert probs.sum() < 1.0  # three tokens of a 49k vocabulary


def test_prefix_cache_gives_the_same_scores_and_stays_reusable(llm):
    tok = smol_tokenizer()
    prefix_text, rest = "Question: 2 plus 2?\nAnswer: 4\n\nQuestion:", " 3 plus 4?\nAnswer:"
    ids = torch.tensor(tok(prefix_text, add_special_tokens=False).input_ids + tok(rest, add_special_tokens=False).input_ids)
    ctx = llm.get_input_embeddings()(ids).detach()
    n_prefix = len(tok(prefix_text, add_special_tokens=False).input_ids)
    prefix = Prefix.compute(llm, ctx[:n_prefix])
    options = option_token_ids(tok, ["7", "8", "twelve", "1"])
    first, second = score_options(llm, ctx, options, prefix), score_options(llm, ctx, options, prefix)
    reference = score_options_loop(llm, ctx, options)
    assert [s.logprob for s in first] == pytest.approx([r.logprob for r in reference], abs=1e-4)
    assert [s.logprob for s in second] == [s.logprob for s in first]
    assert prefix.cache.get_seq_length() == n_prefix


def test_choose_picks_acc_and_length_normalised_acc():
    # option 1 has the best total; option 0 the best per character
    assert choose(np.array([-4.0, -3.0, -9.0]), np.array([8, 2, 3])) == (1, 0)


def test_empty_option_is_refused():
    with pytest.raises(ValueError, match="tokenize to nothing"):
        option_token_ids(smol_tokenizer(), ["Paris", ""], delimiter="")
