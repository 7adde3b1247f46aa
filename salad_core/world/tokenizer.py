"""Tokenizers for a mini world's LM: word-level (every word one token) or subword (BPE trained on the world's text).

Both lower-case the text and cut it into pieces first: a run of word characters, or one other non-space character
(punctuation is a token of its own; whitespace, newlines too, only separates), so the eval prompt "Question: ...
\\nAnswer:" reads as the corpus writes question/answer pairs (`question : ... ? answer : ...`). No special tokens
are added on encoding, and a continuation `" paris"` tokenizes exactly as `paris` does inside a text, as the option
scorer needs.

- **word**: every piece of the world's text is one token; a word never seen in training speech is a token the
  speech model never learned to emit, so "uncovered" can only mean "words never heard".
- **bpe**: pieces are split into subwords (`##` marks a continuation) learnt from the world's text, with every letter
  in the alphabet, so an unheard word is made of heard pieces and a domain can be uncovered in topic, not only in
  vocabulary.

Ids are deterministic: the same texts give the same tokenizer.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
KINDS = ("word", "bpe")
_PIECE = Regex(r"\w+|[^\w\s]")
_ALPHABET = string.ascii_lowercase + string.digits


def _pipeline() -> tuple[normalizers.Normalizer, pre_tokenizers.PreTokenizer]:
    return normalizers.Lowercase(), pre_tokenizers.Split(_PIECE, behavior="removed", invert=True)


def _wrapped(backend: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS)


def word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Every piece of `texts` one token: ids are the special tokens, then pieces by falling frequency (ties
    alphabetical)."""
    normalizer, pre_tokenizer = _pipeline()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(piece for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    pieces = sorted((p for p in counts if p not in SPECIAL_TOKENS), key=lambda p: (-counts[p], p))
    backend = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate([*SPECIAL_TOKENS, *pieces])}, unk_token=UNK))
    backend.normalizer, backend.pre_tokenizer = normalizer, pre_tokenizer
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins pieces with spaces
    return _wrapped(backend)


def _learn_merges(counts: Counter[str], n_merges: int) -> list[tuple[str, str]]:
    """Byte-pair merges over the words' counts, the most frequent pair first and ties broken by the pair itself, so
    the same texts always give the same merges (the `tokenizers` trainer breaks ties by hash order)."""
    words = {w: [w[0], *("##" + c for c in w[1:])] for w in counts}
    merges = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, symbols in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += counts[word]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merged = best[0] + best[1][2:]
        merges.append(best)
        for symbols in words.values():
            i = 0
            while i < len(symbols) - 1:
                if (symbols[i], symbols[i + 1]) == best:
                    symbols[i:i + 2] = [merged]
                i += 1
    return merges


def bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Subwords learnt by byte-pair merges within each piece, `vocab_size` tokens in all; every letter and digit,
    word-initial and continuing, and every punctuation mark is a token, so any lower-case word can be spelled."""
    normalizer, pre_tokenizer = _pipeline()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(piece for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    marks = sorted({p for p in counts if not p[0].isalnum()})
    alphabet = [*_ALPHABET, *("##" + c for c in _ALPHABET), *marks]
    words = Counter({w: n for w, n in counts.items() if w[0].isalnum() and set(w) <= set(_ALPHABET)})
    merges = _learn_merges(words, max(0, vocab_size - len(SPECIAL_TOKENS) - len(alphabet)))
    tokens = [*SPECIAL_TOKENS, *alphabet, *dict.fromkeys(a + b[2:] for a, b in merges)]
    model = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, unk_token=UNK,
                       continuing_subword_prefix="##")
    backend = Tokenizer(model)
    backend.normalizer, backend.pre_tokenizer = normalizer, pre_tokenizer
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return _wrapped(backend)


def build_tokenizer(texts: Iterable[str], kind: str = "word", vocab_size: int | None = None) -> PreTrainedTokenizerFast:
    if kind not in KINDS:
        raise ValueError(f"Unknown tokenizer kind {kind!r}. Fix: use one of {', '.join(KINDS)}.")
    if kind == "bpe":
        if not vocab_size:
            raise ValueError("A BPE tokenizer needs vocab_size. Fix: pass vocab_size (e.g. 400).")
        return bpe_tokenizer(texts, vocab_size)
    return word_tokenizer(texts)
