"""Small text utilities every layer uses: stable hashes, numbers in words, and the mini world's text form.

Nothing here imports anything of salad's: tasks, the world, the ASR and the evaluation all build on it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata


def stable_hash(*parts: str) -> int:
    """A 64-bit integer from sha256 of the parts; identical on every machine and Python version."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def unit_interval(*parts: str) -> float:
    return stable_hash(*parts) / 2**64


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """0 <= n < 1000 in words without 'and': 26 -> "twenty six", 118 -> "one hundred eighteen"."""
    if not 0 <= n < 1000:
        raise ValueError(f"number_words covers 0..999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens - 2] + ("" if ones == 0 else " " + _ONES[ones])
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + ("" if rest == 0 else " " + number_words(rest))


def spell_numbers(text: str) -> str:
    """Every run of digits written out ("26" -> "twenty six"; 1000 and above digit by digit), as TTS input and the
    mini world write numbers and as Whisper does not."""
    def spelled(match: re.Match) -> str:
        n = int(match.group())
        return f" {number_words(n) if n < 1000 else ' '.join(number_words(int(d)) for d in match.group())} "

    return re.sub(r"\s+", " ", re.sub(r"\d+", spelled, text)).strip()


_TOKEN = re.compile(r"[a-z]+|[.,?:]")


def world_form(text: str) -> str:
    """The mini world's one text form: lower-case ASCII words, numbers in words, punctuation as separate tokens
    ("What is 3 plus 4?" -> "what is three plus four ?", "Bogotá" -> "bogota")."""
    ascii_text = unicodedata.normalize("NFKD", spell_numbers(text)).encode("ascii", "ignore").decode()
    return " ".join(_TOKEN.findall(ascii_text.lower().replace("'", "").replace("-", " ")))
