"""`EvalConfig`: every knob of `salad eval`, as flat data (no torch: the dashboard builds its commands from it).
`salad eval` takes one flag per field, its help the comment on the field's line; `to_argv` writes a config back."""

from __future__ import annotations

from dataclasses import dataclass, field

from salad_core.errors import InputError
from salad_core.eval.vocabulary import DEFAULT_VOICE, K_SHOT, LANES, NO_CONDITION, SCORINGS
from salad_core.eval.voices import Condition, parse_conditions
from salad_core.flags import to_argv
from salad_core.presets import PRESETS

# The fields with a fixed set of values, offered as choices by `salad eval`.
CHOICES: dict[str, tuple[str, ...]] = {"preset": tuple(sorted(PRESETS)), "scoring": SCORINGS, "split": ("dev", "test"),
                                       "adapter": ("shipped", "none")}


@dataclass
class EvalConfig:
    preset: str = "smol"  # the model set-up (salad_core/presets.py)
    model_path: str | None = None  # a saved SaladModel folder (a run's final/); overrides the preset
    adapter: str = "shipped"  # without --model: the preset's shipped trained adapter (smol), or none: untrained
    llm: str | None = None  # override the preset's LLM (hub id, alias or folder); with --speech-llm, its text LLM
    speech_llm: str | None = None  # a transformers speech LLM (hub id or folder) to diagnose instead of a salad model
    trust_remote_code: bool = False  # let --llm run the code its hub repository ships (LLMs without a transformers class)
    encoder: str | None = None  # override the preset's speech encoder
    tasks: list[str] | None = None  # comma-separated task names (default: the suite's tasks buildable here)
    limit: int | None = None  # items per task
    split: str = "test"  # the split scored: "dev" while a recipe is chosen, "test" once for the chosen one
    manifest: str | None = None  # JSONL of the user's own items (evaluated in addition to --tasks if given)
    dataset: str | None = None  # hf:ORG/NAME[:CONFIG][@SPLIT] or hf:FOLDER, a spoken multiple-choice benchmark
    question_column: str | None = None  # --dataset: the question's column (default: by dataset, else "question")
    choices_column: str | None = None  # --dataset: a list column, or several option columns comma-separated
    answer_column: str | None = None  # --dataset: the answer (an index, a letter or the option's text)
    audio_column: str | None = None  # --dataset: the spoken question (default "audio")
    k_shot: int = K_SHOT  # few-shot examples before each question, as text
    voice: str = DEFAULT_VOICE  # engine:voice[@speed] for questions without a recording; world: as a task speaks them
    asr: str = "whisper-base"  # the cascade's ASR model
    asr_beam: int = 1  # greedy decoding: on clean TTS speech it matches beam 5 closely at a third of the time
    scoring: str = "acc_norm"  # acc / acc_norm: options' log-likelihood (both stored); generate: free answers matched
    max_new_tokens: int = 32  # generate: the longest answer, in tokens
    probe_limit: int = 10  # dev items per task for item_F and item_M (the question heard, the answer read)
    corpus: bool = True  # corpus F and M on the model's held-out probe documents (eval/probes.py)
    corpus_docs: int = 0  # corpus F and M on the first N probe documents (0: the set's own size; broad text: 60)
    seed: int = 0  # the untrained adapter's initialisation, few-shot choice and bootstrap
    lanes: list[str] = field(default_factory=lambda: list(LANES))  # comma-separated lanes to score
    voices: list[str] | None = None  # a sweep: engine:voice[@speed][+noise<dB>] or recorded, comma-separated

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.speech_llm and (self.model_path or self.encoder):
            raise InputError("--speech-llm diagnoses a speech LLM as it is: it takes no --model or --encoder. Fix: drop "
                             "them (--llm names the text LLM it was built from).")
        if self.corpus_docs < 0:
            raise InputError(f"--corpus-docs must be 0 (every probe document) or more, got {self.corpus_docs}.")
        unknown = [lane for lane in self.lanes if lane not in LANES]
        if unknown or not self.lanes:
            raise InputError(f"unknown or no lanes {unknown or self.lanes}. Fix: choose from {', '.join(LANES)}.")
        if self.voices is not None:
            keys = [c.key for c in parse_conditions(self.voices)]
            if self.voice not in (DEFAULT_VOICE, keys[0]):
                raise InputError(f"--voice {self.voice} and --voices {','.join(self.voices)} were both given. "
                                 "Fix: drop --voice and list the reference voice first in --voices.")
            self.voices, self.voice = keys, keys[0]

    def resolved(self) -> EvalConfig:
        """This config with `model_path` set to the shipped adapter where the preset's model is that one."""
        from dataclasses import replace

        from salad_core.presets import shipped_adapter

        folder = shipped_adapter(self.preset)
        if self.speech_llm or self.model_path or self.adapter == "none" or self.llm or self.encoder or folder is None:
            return self
        return replace(self, model_path=str(folder))

    @property
    def conditions(self) -> list[Condition]:
        return parse_conditions(self.voices) if self.voices else []

    @property
    def reference(self) -> str:
        """The condition whose rows the run's headline reads besides the text lanes' (none for a single voice)."""
        return self.voices[0] if self.voices else NO_CONDITION

    def to_argv(self) -> list[str]:
        """The `salad eval` flags that rebuild this config: each field that differs from its default."""
        return to_argv(self, EvalConfig())
