"""How close word timings come to the truth, and how fast they are: PocketSphinx's forced alignment of the transcript
(the default, with and without the pause snap) side by side with Whisper's own word times (as Whisper gives them, with
each model's lag undone by `WORD_TIME_SHIFT_S`, and with boundaries also snapped to nearby pauses).

On clips whose word boundaries are known by construction (tests/timing_clips.py: espeak-ng running speech with the
word starts the synthesizer reports, and espeak-ng words laid end to end, some with pauses), for Whisper tiny.en and
base: the share of boundaries between two words within 40, 80 and 160 ms of the truth, over the clips the CER filter
keeps, and the seconds of audio timed per second of CPU (all threads, process time). Whisper's rows pay for its
decoding with word timestamps; the aligned rows for Whisper's plain decoding (what the CER filter needs) and the
alignment, plus Whisper's word timestamps for the clips where the alignment fails and its times are taken instead
(counted in `fallback`). Each clip is heard once per model and timed every way, so a model's rows compare the same
ASR output; the aligned rows differ between models only by the clips the CER filter keeps and the fallbacks.

    python benchmarks/word_timings.py                 # the development sentences the settings were fitted on
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
from salad_core.speech_data.forced_align import SphinxAligner
from salad_core.speech_data.timings import align_words, calibrated, keep, transcript_words, word_timings
from tests.timing_clips import DEV_SENTENCES, TEST_SENTENCES, boundary_errors, build_clips, share_within

MODELS = ("whisper-tiny.en", "whisper-base")
TOLERANCES_S = (0.04, 0.08, 0.16)
WAYS = ("whisper", "calibrated", "calibrated + snap", "aligned", "aligned + snap")


class Heard:
    """One clip as the ASR and the aligner saw it, replayed to `word_timings`, with the CPU each part took."""

    def __init__(self, asr: Transcriber, aligner: SphinxAligner, clip):
        self.model_name = asr.model_name
        self.cpu: dict[str, float] = {}
        self.heard = self._run("words", asr.words, clip.audio)
        self.text = self._run("transcribe", asr.transcribe, clip.audio)
        self.spans = self._run("align", aligner.align, clip.audio, transcript_words(clip.text))

    def _run(self, part: str, call, *args):
        began = time.process_time()
        out = call(*args)
        self.cpu[part] = time.process_time() - began
        return out

    def words(self, audio):
        return self.heard

    def transcribe(self, audio):
        return self.text

    def align(self, audio, words):
        return self.spans


def timed(heard: Heard, clip, way: str):
    """(timing, CPU seconds) of the clip timed `way`, the ASR's and the aligner's share included."""
    began = time.process_time()
    seconds, snap = len(clip.audio) / SAMPLE_RATE, way.endswith("snap")
    if way.startswith("aligned"):
        timing = word_timings(clip.audio, clip.text, heard, snap=snap, aligner=heard)
        parts = ("transcribe", "align") if timing.method == "aligned" else ("align", "words")
    else:
        words = heard.heard if way == "whisper" else calibrated(heard.heard, heard.model_name)
        timing = align_words(transcript_words(clip.text), words, seconds, clip.audio if snap else None)
        parts = ("words",)
    return timing, time.process_time() - began + sum(heard.cpu[p] for p in parts)


def measure(asr: Transcriber, aligner: SphinxAligner, clips: list) -> dict[str, dict]:
    """For each way of timing: every kept boundary's error, the clips dropped and those that fell back to Whisper's
    times, and the CPU seconds spent."""
    out = {way: {"errors": [], "dropped": 0, "fallback": 0, "cpu": 0.0} for way in WAYS}
    for clip in clips:
        heard = Heard(asr, aligner, clip)
        for way, row in out.items():
            timing, cpu = timed(heard, clip, way)
            row["cpu"] += cpu
            row["fallback"] += way.startswith("aligned") and timing.method != "aligned"
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
              f"{row['dropped']:>8}{row['fallback']:>9}{seconds / row['cpu']:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", action="store_true", help="score the tests' sentences instead of the dev ones")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    sentences = TEST_SENTENCES if args.held_out else DEV_SENTENCES
    sets = {"running": build_clips(sentences, running=True), "words": build_clips(sentences, running=False)}
    for kind, clips in sets.items():
        print(f"{kind}: {len(clips)} clips, {sum(len(c.audio) for c in clips) / SAMPLE_RATE:.1f} s of audio")
    aligner = SphinxAligner()
    aligner.align(sets["running"][0].audio, transcript_words(sets["running"][0].text))  # loaded before timing
    print(f"{'model':<17}{'clips':<9}{'timings':<19}" + "".join(f"{f'<={t * 1000:.0f}ms':>8}" for t in TOLERANCES_S)
          + f"{'median':>8}{'scored':>7}{'dropped':>8}{'fallback':>9}{'audio/CPU':>10}")
    for model in args.models:
        asr = Transcriber(model)
        for kind, clips in sets.items():
            report(model, kind, clips, measure(asr, aligner, clips))


if __name__ == "__main__":
    main()
