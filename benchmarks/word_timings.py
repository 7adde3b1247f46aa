"""How close the word timings from the cascade's Whisper come to the truth: as Whisper gives them, with each model's
lag undone (`WORD_TIME_SHIFT_S`), and with boundaries also snapped to nearby pauses; and how fast they are.

On clips whose word boundaries are known by construction (tests/timing_clips.py: espeak-ng running speech with the
word starts the synthesizer reports, and espeak-ng words laid end to end, some with pauses), for Whisper tiny.en and
base: the share of boundaries between two words within 40, 80 and 160 ms of the truth, over the clips the CER filter
keeps, and the seconds of audio timed per second of CPU (all threads, process time: Whisper's decoding and alignment,
then ours). Each clip is heard once per model and aligned three ways, so a model's rows compare the same ASR output.

    python benchmarks/word_timings.py                 # the development sentences the calibration was fitted on
    python benchmarks/word_timings.py --held-out      # the sentences the tests score
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from salad_core.asr import Transcriber
from salad_core.audio import SAMPLE_RATE
from salad_core.speech_data.timings import align_words, calibrated, keep, transcript_words
from tests.timing_clips import DEV_SENTENCES, TEST_SENTENCES, boundary_errors, build_clips, share_within

MODELS = ("whisper-tiny.en", "whisper-base")
TOLERANCES_S = (0.04, 0.08, 0.16)
WAYS = ("whisper", "calibrated", "calibrated + snap")


def measure(asr: Transcriber, clips: list) -> dict[str, dict]:
    """For each way of timing: every kept boundary's error, the clips dropped, and the CPU seconds spent."""
    out = {way: {"errors": [], "dropped": 0, "cpu": 0.0} for way in WAYS}
    for clip in clips:
        began = time.process_time()
        heard = asr.words(clip.audio)
        asr_cpu = time.process_time() - began
        for way, row in out.items():
            began = time.process_time()
            words = heard if way == "whisper" else calibrated(heard, asr.model_name)
            audio = clip.audio if way.endswith("snap") else None
            timing = align_words(transcript_words(clip.text), words, len(clip.audio) / SAMPLE_RATE, audio)
            row["cpu"] += asr_cpu + time.process_time() - began
            if keep(timing):
                row["errors"] += boundary_errors(timing.words, clip)
            else:
                row["dropped"] += 1
    return out


def report(model: str, kind: str, clips: list, rows: dict[str, dict]) -> None:
    seconds = sum(len(c.audio) for c in clips) / SAMPLE_RATE
    for way, row in rows.items():
        errors = sorted(row["errors"])
        shares = "".join(f"{share_within(errors, t):>8.1%}" for t in TOLERANCES_S)
        print(f"{model:<17}{kind:<9}{way:<19}{shares}{errors[len(errors) // 2] * 1000:>8.0f}{len(errors):>7}"
              f"{row['dropped']:>8}{seconds / row['cpu']:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", action="store_true", help="score the tests' sentences instead of the dev ones")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    sentences = TEST_SENTENCES if args.held_out else DEV_SENTENCES
    sets = {"running": build_clips(sentences, running=True), "words": build_clips(sentences, running=False)}
    for kind, clips in sets.items():
        print(f"{kind}: {len(clips)} clips, {sum(len(c.audio) for c in clips) / SAMPLE_RATE:.1f} s of audio")
    print(f"{'model':<17}{'clips':<9}{'timings':<19}" + "".join(f"{f'<={t * 1000:.0f}ms':>8}" for t in TOLERANCES_S)
          + f"{'median':>8}{'scored':>7}{'dropped':>8}{'audio/CPU':>10}")
    for model in args.models:
        asr = Transcriber(model)
        for kind, clips in sets.items():
            report(model, kind, clips, measure(asr, clips))


if __name__ == "__main__":
    main()
