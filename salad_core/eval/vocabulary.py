"""The evaluation's vocabulary, as plain data: the lanes and how every page names them, which accuracy each lane
gives, the pooled task's name, and the defaults every caller shares. The store and the pages read it without
importing torch.

    base_text  the original LLM reads the question          text     the adapted model reads it
    speech     the adapted model hears it                   cascade  Whisper transcribes it, the original LLM reads that
    noaudio    the adapted model "hears" silence of the question's length: the floor the options alone give
"""

from __future__ import annotations

LANES = ("base_text", "text", "speech", "cascade", "noaudio")
LANE_LABELS = {  # how every page and chart names the lanes
    "base_text": "text · original LLM",
    "text": "text · adapted model",
    "speech": "speech · adapted model",
    "cascade": "cascade · ASR → original LLM",
    "noaudio": "no audio · adapted model, silence",
}
LANE_ACC_METRIC = {"base_text": "text_acc_base", "text": "text_acc", "speech": "speech_acc", "cascade": "cascade_acc",
                   "noaudio": "noaudio_acc"}
ALL_TASKS = "__all__"  # the pooled "task" of every metric
# The condition a row belongs to in a voice sweep (`salad eval --voices`); '' = none: text lanes, single-voice runs.
NO_CONDITION = ""
SCORINGS = ("acc", "acc_norm", "generate")  # log-likelihood of each option (2), or a free answer matched to one
K_SHOT = 5  # few-shot examples before each question (text), everywhere a prompt is built
DEFAULT_VOICE = "flite:slt@1"  # the TTS voice of questions without a recording
WORLD_VOICE = "world"  # each item as its task speaks it (a mini world: held-out voices, cached encoder frames)
