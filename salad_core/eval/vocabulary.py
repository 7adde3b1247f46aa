"""The evaluation's vocabulary, as plain data: the lane table and how every page names the lanes, the metrics' names (each
metric is defined, with its direction and meaning, in eval/metrics.py's METRICS; here are only the lists that
callers pick from), the pooled task's name, and the defaults every caller shares. The store and the pages read it
without importing torch.

    base_text  the original LLM reads the question          text     the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
    noaudio    the adapted model "hears" silence of the question's length: the floor the options alone give
"""

from __future__ import annotations

from dataclasses import dataclass

READERS = ("original", "adapted")  # the original text LLM, or the speech-adapted model (a salad model, a speech LLM)
QUESTIONS = ("read", "transcript", "heard", "silence")  # how the question reaches the reader


@dataclass(frozen=True)
class Lane:
    """One way of putting an item to a model: who answers (`reader`), how the question reaches it (`question`: read
    as text, read as the ASR's transcript of its audio, heard, or silence as long as its audio heard in its place),
    the accuracy it gives and how pages name it. eval/lanes.py builds every lane's prompt from these fields alone."""

    name: str
    reader: str
    question: str
    accuracy: str  # the metric of its correctness
    label: str

    @property
    def hears(self) -> bool:
        """Whether the lane needs the question's audio (the transcript and the silence are made from it)."""
        return self.question != "read"


LANE_TABLE = {lane.name: lane for lane in (
    Lane("base_text", "original", "read", "text_acc_base", "text · original LLM"),
    Lane("text", "adapted", "read", "text_acc", "text · adapted model"),
    Lane("speech", "adapted", "heard", "speech_acc", "speech · adapted model"),
    Lane("cascade", "original", "transcript", "cascade_acc", "cascade · ASR → original LLM"),
    Lane("noaudio", "adapted", "silence", "noaudio_acc", "no audio · adapted model, silence"),
)}
LANES = tuple(LANE_TABLE)
AUDIO_LANES = tuple(name for name, lane in LANE_TABLE.items() if lane.hears)  # speech, cascade, noaudio
LANE_LABELS = {name: lane.label for name, lane in LANE_TABLE.items()}  # how every page and chart names the lanes
LANE_ACC_METRIC = {name: lane.accuracy for name, lane in LANE_TABLE.items()}  # the accuracy each lane gives
# The differences of two lanes' accuracies, item by item: name -> (lane a, lane b), the metric is a - b.
DIFFERENCES = {"gap": ("base_text", "speech"), "forgetting": ("base_text", "text"), "misalignment": ("text", "speech"),
               "audio_gain": ("speech", "noaudio")}
DIVERGENCES = ("F", "M", "item_F", "item_M")  # corpus F and M (held-out documents), and on the tasks' dev items
# A task's row in every report (`salad eval`'s JSON and table): the accuracies in lane order, then the rest.
REPORT_METRICS = ("text_acc_base", "text_acc", "speech_acc", "noaudio_acc", "audio_gain", "cascade_acc", "cascade_wer",
                  "gap", "forgetting", "misalignment")
HEADLINE_METRICS = ("text_acc_base", "text_acc", "speech_acc", "gap", "forgetting", "misalignment", "F", "M")
FRACTIONS = (*LANE_ACC_METRIC.values(), *DIFFERENCES)  # accuracies and their differences: shown in % or points
ALL_TASKS = "__all__"  # the pooled "task" of every metric (and the pooled domain of corpus F and M)
# The condition a row belongs to in a voice sweep (`salad eval --voices`); '' = none: text lanes, single-voice runs.
NO_CONDITION = ""
SCORINGS = ("acc", "acc_norm", "generate")  # log-likelihood of each option (2), or a free answer matched to one
HEADLINE_SCORING = "acc_norm"  # what every caller picks by: salad eval's default, the training curves, the world LM
K_SHOT = 5  # few-shot examples before each question (text), everywhere a prompt is built
DEFAULT_VOICE = "flite:slt@1"  # the TTS voice of questions without a recording
WORLD_VOICE = "world"  # each item as its task speaks it (a mini world: held-out voices, cached encoder frames)
