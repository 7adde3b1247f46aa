"""The evaluation's vocabulary, as plain data: the lanes and how every page names them, the metrics' names (each
metric is defined, with its direction and meaning, in eval/metrics.py's METRICS; here are only the lists that
callers pick from), the pooled task's name, and the defaults every caller shares. The store and the pages read it
without importing torch.

    base_text  the original LLM reads the question          text     the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
    noaudio    the adapted model "hears" silence of the question's length: the floor the options alone give
"""

from __future__ import annotations

LANES = ("base_text", "text", "speech", "cascade", "noaudio")
AUDIO_LANES = ("speech", "cascade", "noaudio")  # the lanes that hear the question (noaudio: its length)
LANE_LABELS = {  # how every page and chart names the lanes
    "base_text": "text · original LLM",
    "text": "text · adapted model",
    "speech": "speech · adapted model",
    "cascade": "cascade · ASR → original LLM",
    "noaudio": "no audio · adapted model, silence",
}
LANE_ACC_METRIC = {"base_text": "text_acc_base", "text": "text_acc", "speech": "speech_acc", "cascade": "cascade_acc",
                   "noaudio": "noaudio_acc"}  # the accuracy each lane gives
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
