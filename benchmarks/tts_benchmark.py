"""TTS benchmark: throughput on all cores and intelligibility (Whisper WER/CER) of every available engine.

    python benchmarks/tts_benchmark.py --n 20 --engines all [--json]

Each engine speaks the same fixed sentences (facts and questions, the style of the evaluation suites) through
`synthesize_many` into a fresh temporary cache, so every utterance is really synthesized; wall time includes the
worker pool's start and model loading, as a real batch would. Real-time factor = synthesis wall time / seconds of
speech produced (below 1 is faster than real time). The speech is then transcribed with Whisper and scored against
the text with the project's WER/CER.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from salad_core.asr import Transcriber, char_error_rate, word_error_rate
from salad_core.audio import SAMPLE_RATE, load_audio
from salad_core.tts import ENGINES, TTSCache, VoiceSpec, list_engines, synthesize_many

DEFAULT_VOICES = {"espeak": "en-us", "flite": "slt", "piper": "en_US-joe-medium", "kokoro": "jf_alpha"}

SENTENCES = [
    "The capital of France is Paris.",
    "Which planet is known as the red planet?",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Who wrote the play Romeo and Juliet?",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "The Pacific is the largest ocean on Earth.",
    "What is the chemical symbol for gold?",
    "A triangle has three sides and three angles.",
    "Mount Everest is the highest mountain in the world.",
    "How many legs does a spider have?",
    "The heart pumps blood through the body.",
    "Which gas do plants absorb from the air?",
    "The Great Wall of China is visible across many provinces.",
    "Light travels faster than sound.",
    "What is the largest mammal that lives in the sea?",
    "Ice melts when the temperature rises above freezing.",
    "The moon orbits the Earth about once a month.",
    "Which country has the largest population in Africa?",
    "Iron is a metal that rusts when it is exposed to water and oxygen.",
    "Why do leaves change colour in autumn?",
]


def bench_engine(engine: str, texts: list[str], workers: int, transcriber: Transcriber) -> dict:
    spec = VoiceSpec(engine, DEFAULT_VOICES[engine])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        results = synthesize_many(texts, spec, workers=workers, progress=False, cache=TTSCache(Path(tmp)))
        wall = time.perf_counter() - start
        done = [(text, path) for text, path in zip(texts, results) if isinstance(path, Path)]
        audios = [load_audio(path) for _, path in done]
    speech_s = sum(len(a) for a in audios) / SAMPLE_RATE
    refs = [text for text, _ in done]
    hyps = transcriber.transcribe_many(audios, progress=False)
    return {
        "engine": engine,
        "voice": spec.voice,
        "utterances": len(done),
        "failed": len(texts) - len(done),
        "workers": workers,
        "wall_s": round(wall, 2),
        "utt_per_s": round(len(done) / wall, 2),
        "speech_s": round(speech_s, 1),
        "rtf": round(wall / speech_s, 3) if speech_s else None,
        "wer": round(word_error_rate(refs, hyps), 3) if refs else None,
        "cer": round(char_error_rate(refs, hyps), 3) if refs else None,
    }


def print_table(rows: list[dict]) -> None:
    columns = ["engine", "voice", "utterances", "failed", "wall_s", "utt_per_s", "speech_s", "rtf", "wer", "cer"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help=f"sentences per engine (1-{len(SENTENCES)})")
    parser.add_argument("--engines", default="all", help="'all' or a comma list of " + ", ".join(ENGINES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="synthesis processes")
    parser.add_argument("--asr", default="whisper-base", help="Whisper model that scores intelligibility")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)

    engines = list_engines() if args.engines == "all" else [e.strip() for e in args.engines.split(",")]
    unknown = [e for e in engines if e not in list_engines()]
    if unknown:
        parser.error(f"engines not available here: {', '.join(unknown)} (available: {', '.join(list_engines())})")
    texts = SENTENCES[: max(1, min(args.n, len(SENTENCES)))]
    transcriber = Transcriber(args.asr)
    rows = []
    for engine in engines:
        print(f"benchmarking {engine} ...", file=sys.stderr)
        rows.append(bench_engine(engine, texts, args.workers, transcriber))
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "asr": args.asr, "results": rows}, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
