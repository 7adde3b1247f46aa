"""Tiny random-weight speech LLMs, built here from their configs, for offline tests and benchmarks.

A tiny model has the real family's architecture, a few layers of width 32 and a byte-level tokenizer trained here
on a few lines of English, with the family's special tokens and a chat template of the family's shape. Nothing
downloads: the feature extractors are built from their defaults (a log-mel spectrogram needs no weights).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

# The text the tiny tokenizer learns its merges from: the words the evaluation's prompts are made of.
TOKENIZER_TEXT = (
    "Question: What is the capital of France? Answer: Paris\n"
    "Question: Which element has the symbol Fe? Answer: iron\n"
    "Question: What is seven plus five? Answer: twelve\n"
    "A. B. C. D. The answer is the option that names the right word, number, country, city or element.\n"
)
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CHATML_TOKENS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
WIDTH = 32  # hidden size of every tiny part


def tiny_tokenizer(special_tokens: list[str], chat_template: str, vocab_size: int = 384, eos: str = "<|endoftext|>"):
    """A byte-level BPE tokenizer trained on TOKENIZER_TEXT, with `special_tokens` as single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator([TOKENIZER_TEXT], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=eos, pad_token=eos)
    tokenizer.chat_template = chat_template
    return tokenizer


def text_config(vocab_size: int, **overrides) -> dict:
    """A decoder two layers deep and WIDTH wide, as a config dict for any Llama-like text model."""
    return {"hidden_size": WIDTH, "intermediate_size": 2 * WIDTH, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "vocab_size": vocab_size, "max_position_embeddings": 4096, **overrides}


def save_tiny(out: Path, model, tokenizer, feature_extractor, base=None) -> Path:
    """Write the model, its tokenizer and feature extractor; `base`, a text LLM of
    the same vocabulary, to out/base."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    feature_extractor.save_pretrained(out)
    if base is not None:
        base.save_pretrained(out / "base")
        tokenizer.save_pretrained(out / "base")
    return out


@contextlib.contextmanager
def seeded(seed: int):
    """A context in which models are initialised from `seed` (torch's global generator, restored after)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
