"""Pronunciations, in the ARPABET phones of PocketSphinx's en-us model, for words its dictionary lacks (names, rare or
made-up words): PocketSphinx 5 has no letter-to-sound rules, so a transcript word outside its dictionary could not be
aligned at all. espeak-ng, which the project already speaks with, has them: its American IPA for the word is mapped
phone by phone onto ARPABET.

Why not a catch-all "spoken noise" unit in the word's place: on the development sentences of
benchmarks/word_timings.py the boundaries beside such a word were within 80 ms for only 40 % of them, against 95-100 %
with espeak-ng's pronunciation (the same as for dictionary words).
"""

from __future__ import annotations

import functools

from salad_core.tts.base import TTSError, run_program
from salad_core.tts.espeak import PROGRAM, missing

# espeak-ng's en-us IPA symbols (stress marks removed) -> ARPABET. Multi-symbol entries are the units espeak-ng
# writes as one phoneme ("aɪ", "dʒ", "ɑːɹ"); a symbol missing here is tried without its length mark.
ARPABET_OF_IPA = {
    "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "ɔ": "AA", "æ": "AE", "a": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɔː": "AO",
    "oː": "AO", "aʊ": "AW", "aɪ": "AY", "ɛ": "EH", "e": "EH", "ɚ": "ER", "ɜː": "ER", "ɜ": "ER", "ɝ": "ER", "eɪ": "EY",
    "ɪ": "IH", "ᵻ": "IH", "i": "IY", "iː": "IY", "oʊ": "OW", "əʊ": "OW", "o": "OW", "ɔɪ": "OY", "ʊ": "UH", "u": "UW",
    "uː": "UW", "b": "B", "tʃ": "CH", "d": "D", "ð": "DH", "f": "F", "ɡ": "G", "g": "G", "h": "HH", "dʒ": "JH",
    "k": "K", "x": "K", "l": "L", "m": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH",
    "t": "T", "ɾ": "T", "ʔ": "T", "θ": "TH", "v": "V", "w": "W", "j": "Y", "z": "Z", "ʒ": "ZH",
    "əl": "AH L", "n̩": "AH N", "l̩": "AH L", "aɪə": "AY AH", "aɪɚ": "AY ER", "iə": "IY AH", "eə": "EH R",
    "ɪə": "IH R", "ʊə": "UH R", "ɑːɹ": "AA R", "ɔːɹ": "AO R", "oːɹ": "AO R", "ɛɹ": "EH R", "ɪɹ": "IH R", "ʊɹ": "UH R",
}
VOICE = "en-us"  # the accent of the acoustic model


def arpabet_of_ipa(ipa: str) -> str | None:
    """ARPABET phones of espeak-ng's space-separated IPA phonemes; None when a symbol has no ARPABET phone."""
    phones = []
    for symbol in ipa.replace("ˈ", "").replace("ˌ", "").split():
        phone = ARPABET_OF_IPA.get(symbol) or ARPABET_OF_IPA.get(symbol.replace("ː", ""))
        if phone is None:
            return None
        phones.append(phone)
    return " ".join(phones) or None


@functools.lru_cache(maxsize=65536)
def espeak_arpabet(word: str) -> str | None:
    """ARPABET phones of `word` as espeak-ng says it in American English; None when espeak-ng is not installed or
    gives nothing this mapping knows (the word then cannot be aligned)."""
    if missing() is not None:
        return None
    try:
        ipa = run_program([PROGRAM, "-q", "--ipa", "--sep= ", "-v", VOICE], "espeak", stdin=word, timeout=30)
    except TTSError:
        return None
    return arpabet_of_ipa(ipa.decode(errors="replace"))
