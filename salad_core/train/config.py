"""`TrainConfig`: every knob of a training run, as flat data. One name everywhere: field, key of the run's
config.json (and of the store's `runs.config`), CLI flag (`--kl-temperature`) and chart label. Defaults follow the
SALAD paper where it is known, and the choices it leaves open (KL direction, temperature) are options recorded with
every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from salad_core.errors import InputError
from salad_core.flags import to_argv
from salad_core.options import KL_DIRECTIONS, LLM_MODES
from salad_core.schedule import decay_start
from salad_core.train.trackers import TRACKERS

ENCODER_HZ = 50.0  # frames per second of every Whisper-family encoder

# Per-preset recipes: the options in which a preset's tested set-up differs from the defaults below. A flag given on
# the command line (or a field passed to `for_preset`) always wins. The mini recipe is what reaches the spoken
# accuracy target on the CPU (docs/results/stage1.md): the CTC alignment aid with the
# LLM reading soft tokens (salad_core/model/ctc.py), and the LLM fine-tuned after the adapter has learned to emit words.
PRESET_RECIPES: dict[str, dict] = {
    "mini": {"align": "ctc-soft", "llm_mode": "full", "llm_unfreeze_step": 200, "lr_adapter": 2e-3, "lr_llm": 3e-4,
             "warmup_steps": 30, "max_steps": 800, "eval_every": 200, "ckpt_every": 200},
    # SmolLM2 on the broad corpus (salad_core/broad), on a 2-core CPU: the aid's CTC warm-up teaches the adapter to
    # spell what it hears in SmolLM2's tokens without running the LLM, then distillation (alpha = 1) trains it
    # through the frozen LLM reading soft tokens. A frozen LLM cannot forget (replay is skipped for it).
    # 800 distillation steps, not 200: chosen on dev (docs/results/smol.md).
    "smol": {"align": "ctc-soft", "ctc_warmup_steps": 1400, "max_steps": 2200, "batch_size": 8, "eval_every": 500,
             "eval_items": 20},
    # the whole pipeline in about a minute, for tests and smoke checks
    "nano": {"max_steps": 40, "batch_size": 4, "warmup_steps": 4, "eval_every": 20, "ckpt_every": 20,
             "eval_items": 5},
}


# The model options each alignment setting stands for (salad_core/model/ctc.py).
ALIGN_MODEL: dict[str, dict] = {"none": {"ctc_compress": False},
                                "ctc": {"ctc_compress": True, "ctc_read": "adapter"},
                                "ctc-soft": {"ctc_compress": True, "ctc_read": "soft"}}


# The fields with a fixed set of values: validated here, offered as choices by `salad train` and the Training page.
CHOICES: dict[str, tuple[str, ...]] = {"kl_direction": KL_DIRECTIONS, "llm_mode": LLM_MODES, "align": tuple(ALIGN_MODEL),
                                       "final_split": ("dev", "test"), "word_timings": ("auto", "none"),
                                       "report_to": TRACKERS}


# Per-preset Stage II recipes (options given always win): the share of speech documents drawn from the selected
# synthetic speech, and Stage II's length as a multiple of Stage I's decay phase. Without a recipe: documents drawn
# from the pooled speech by hours, over exactly Stage I's decay, which on mini hears each selected document less than
# once; the mini recipe draws half the speech documents from the selection, over three decays, so the model hears
# what was selected again and again (docs/selection.md).
STAGE2_RECIPES: dict[str, dict] = {"mini": {"synthetic_prob": 0.5, "decay_multiple": 3}}

# What Stage II sets afresh rather than inheriting from Stage I (see TrainConfig.stage2).
STAGE2_RESETS = {"warmup_steps": 0, "decay_fraction": 1.0, "llm_unfreeze_step": 0, "budget_tokens": None,
                 "budget_hours": None, "tag": "", "synthetic_prob": None}


@dataclass
class TrainConfig:
    preset: str = "mini"  # model + data preset (see salad_core.presets)
    llm: str | None = None  # the LLM instead of the preset's: a hub id, a folder, or world:<preset>/<lm recipe>
    encoder: str | None = None  # the frozen speech encoder instead of the preset's: a Whisper-family hub id or folder
    # the adapter's shape instead of the preset's (None: the preset's)
    adapter_layers: int | None = None  # causal transformer layers
    adapter_width: int | None = None  # their width
    adapter_heads: int | None = None  # attention heads (must divide the width)
    adapter_hz: float | None = None  # frames per second it emits: the encoder's 50 Hz frames stacked 50/hz at a time
    # loss: alpha * KL(teacher(all text) || student(interleaved)) + (1 - alpha) * NLL, at next-is-text positions
    alpha: float = 1.0  # SALAD uses 1.0 (pure distillation); 0.0 is plain next-token training
    kl_direction: str = "forward"  # forward = KL(teacher || student) (assumed by the paper; unsure)
    kl_temperature: float = 1.0  # logits / tau; the KL is multiplied by tau^2 so gradients keep their scale
    kl_chunk: int = 512  # positions projected to the vocabulary at a time (memory bound)
    replay_prob: float = 1 / 3  # probability that a batch is text-only replay, trained toward the teacher too
    # what learns
    llm_mode: str = "frozen"  # frozen | lora | full
    llm_unfreeze_step: int = 0  # with lora/full: the LLM's group gets lr 0 before this step
    lr_adapter: float = 1e-3  # peak learning rate of the adapter (AdamW)
    lr_llm: float = 5e-5  # peak learning rate of the LLM's trainable weights (lora/full)
    weight_decay: float = 0.1  # AdamW weight decay, on every trainable weight
    warmup_steps: int = 50  # linear warm-up from 0 to the peak learning rates
    decay_fraction: float = 0.2  # linear decay over the last 20 % of the steps
    grad_clip: float = 1.0  # clip the global gradient norm to this
    # how much
    batch_size: int = 16  # documents per micro-batch, summed over processes (each takes its share)
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int = 600  # optimizer steps
    budget_tokens: int | None = None  # stop after this many text tokens (KL/NLL positions; not the CTC warm-up's targets)
    budget_hours: float | None = None  # the steps that hear about this many hours of natural speech (instead of max_steps)
    # alignment aid (documented, switchable; not in the paper): CTC on the adapter + compression, model/ctc.py
    align: str = "none"  # none | ctc | ctc-soft (the LLM reads soft tokens; see ALIGN_MODEL)
    ctc_weight: float = 1.0  # weight of the CTC loss when align is ctc or ctc-soft
    ctc_warmup_steps: int = 0  # with the aid: the first steps train the adapter by CTC alone, the LLM not run
    # a user's speech instead of the preset's world (docs/train-your-model.md); the world still gives the replay
    # text, the teacher's LLM (unless --llm) and the evaluation
    speech: list[str] | None = None  # speech sources SOURCE[:WEIGHT]: hf:ORG/NAME, a datasets folder, Lhotse, JSONL
    speech_columns: list[str] | None = None  # hf sources' columns as FIELD=COLUMN (fields: audio, text, doc, pos, id)
    speech_span_words: list[int] | None = None  # the speech spans' length range in words (default 5,15: the paper's)
    text_span_words: list[int] | None = None  # the text spans' length range in words (default 10,30: the paper's)
    word_timings: str = "auto"  # auto: the source's, else the ASR's for long utterances; none: heard or read whole
    max_cer: float = 0.3  # drop an utterance the ASR timed whose transcript disagrees with it by a larger CER
    data_workers: int = 1  # DataLoader workers that decode and prepare the streamed speech (0: in the training process)
    text: list[str] | None = None  # replay text SOURCE[:WEIGHT]: hf:ORG/NAME, .parquet, .jsonl, .txt (default: world's)
    text_column: str = "text"  # the text sources' column (hf, parquet) or key (JSONL)
    # bookkeeping
    eval_every: int = 100  # steps between dev-slice evaluations (accuracy, M, F)
    eval_items: int = 40  # dev items per task in periodic evaluations
    ckpt_every: int = 100  # steps between checkpoints (resume from the last one)
    keep_checkpoints: int = 2  # plus the pre-decay one, which is always kept
    seed: int = 0  # seeds the adapter's initialisation and the data order
    tag: str = ""  # free label, e.g. the sweep a run belongs to
    final_split: str = "test"  # the split the final model is scored on: dev while choosing a recipe, test once
    report_to: str = "none"  # also show the run in tensorboard | wandb | mlflow (docs/training.md); none: store only
    tracker_dir: str | None = None  # the folder --report-to writes to (None: the run folder's trackers/)
    # Stage II (SALAD): continue a Stage I run from its pre-decay checkpoint on natural + selected synthetic speech
    stage: int = 1  # 1: Stage I from the preset; 2: Stage II, with --from and --round
    from_run: str | None = None  # stage 2: the Stage I run (its pre-decay checkpoint, model options)
    round_id: str | None = None  # stage 2: the selection round whose speech is trained on (salad select)
    # None: the selection's share of the pooled speech (hours), i.e. documents drawn uniformly from natural +
    # synthetic; the run's plan records the value used
    synthetic_prob: float | None = None  # stage 2: share of speech documents from the selected speech

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {self.alpha}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.stage not in (1, 2) or (self.stage == 2 and not (self.from_run and self.round_id)):
            raise InputError("stage must be 1 or 2, and stage 2 needs from_run and round_id")
        if self.synthetic_prob is not None and not 0.0 <= self.synthetic_prob <= 1.0:
            raise InputError(f"synthetic_prob must be in [0, 1], got {self.synthetic_prob}")
        if self.align != "none" and self.ctc_warmup_steps >= self.max_steps:
            raise InputError(f"ctc_warmup_steps {self.ctc_warmup_steps} leaves no step of distillation in max_steps "
                             f"{self.max_steps}. Fix: pass a smaller --ctc-warmup-steps (0: none) or more --max-steps.")
        self._check_adapter_shape()
        self._check_speech()
        if self.kl_temperature <= 0 or self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1:
            raise InputError("kl_temperature, batch_size, grad_accum and max_steps must be positive")

    def _check_adapter_shape(self) -> None:
        sizes = {"adapter_layers": self.adapter_layers, "adapter_width": self.adapter_width,
                 "adapter_heads": self.adapter_heads}
        for name, size in sizes.items():
            if size is not None and size < 1:
                raise InputError(f"{name} must be a positive count, got {size}")
        if self.adapter_width and self.adapter_heads and self.adapter_width % self.adapter_heads:
            raise InputError(f"adapter_width {self.adapter_width} does not split into {self.adapter_heads} heads. "
                             f"Fix: pass an --adapter-width that is a multiple of --adapter-heads.")
        if self.adapter_hz is not None:
            stack = ENCODER_HZ / self.adapter_hz if self.adapter_hz > 0 else 0
            if stack < 1 or abs(stack - round(stack)) > 1e-9:
                raise InputError(f"adapter_hz {self.adapter_hz} is not the encoder's {ENCODER_HZ:g} Hz divided by a "
                                 f"whole number. Fix: pass one of 50, 25, 16.667, 12.5, 10, 6.25 ...")

    def _check_speech(self) -> None:
        for name in ("speech_span_words", "text_span_words"):
            span = getattr(self, name)
            if span is None:
                continue
            try:
                low, high = (int(v) for v in span)
            except (TypeError, ValueError):
                low = high = 0
            if not 1 <= low <= high:
                raise InputError(f"{name} {span} is not a range of words. Fix: pass two counts, least first (5,15).")
            setattr(self, name, [low, high])  # as ints, also when the command line gave text
        if self.speech is not None and self.stage == 2:
            raise InputError("Stage II trains on its world's selected speech; --speech is for Stage I. Fix: drop it.")
        if self.data_workers < 0 or not 0 < self.max_cer:
            raise InputError(f"data_workers must be >= 0 and max_cer > 0, got {self.data_workers} and {self.max_cer}")

    def model_options(self) -> dict:
        """The model fields (`SaladConfig`'s) this run sets on top of its preset's; None leaves the preset's."""
        stack = None if self.adapter_hz is None else round(ENCODER_HZ / self.adapter_hz)
        return {"llm_name": self.llm, "encoder_name": self.encoder, "llm_mode": self.llm_mode,
                "adapter_layers": self.adapter_layers, "adapter_width": self.adapter_width,
                "adapter_heads": self.adapter_heads, "adapter_stack": stack, **ALIGN_MODEL[self.align]}

    @classmethod
    def for_preset(cls, preset: str = "mini", **options) -> TrainConfig:
        """The preset's recipe (PRESET_RECIPES) with `options` on top; options that are None are left unset."""
        return cls(**{"preset": preset, **PRESET_RECIPES.get(preset, {}),
                      **{k: v for k, v in options.items() if v is not None}})

    @classmethod
    def stage2(cls, stage1: TrainConfig, from_run: str, round_id: str, stage1_steps: int | None = None,
               **options) -> TrainConfig:
        """Stage II of `stage1`: its model and loss options, decaying linearly from its stable learning rate to
        zero. Without a preset recipe (STAGE2_RECIPES) it takes the steps of Stage I's decay phase, with the same
        learning rate at each, so that Stage I's final model and this one differ only in the speech they decayed on.
        `stage1_steps`: the steps the Stage I run planned (its plan's, when a budget set them; default its
        max_steps). `options` that are not None win."""
        recipe = dict(STAGE2_RECIPES.get(stage1.preset, {}))
        steps = stage1_steps or stage1.max_steps
        decay_steps = steps - decay_start(steps, stage1.decay_fraction) + 1
        base = {**stage1.to_dict(), **STAGE2_RESETS, "stage": 2, "from_run": from_run, "round_id": round_id,
                "max_steps": decay_steps * recipe.pop("decay_multiple", 1), **recipe}
        return cls(**{**base, **{k: v for k, v in options.items() if v is not None}})

    def to_dict(self) -> dict:
        return asdict(self)

    def to_argv(self) -> list[str]:
        """The `salad train` flags that rebuild this Stage I config: the preset, then each field that differs from
        the preset's recipe (`salad train <to_argv()>` trains exactly this config)."""
        if self.stage != 1:
            raise ValueError("to_argv writes Stage I configs; Stage II is `salad train --stage 2 --from RUN --round ID`")
        return ["--preset", self.preset, *to_argv(self, TrainConfig.for_preset(self.preset), skip=("preset",))]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InputError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def differences(self, other: TrainConfig, ignore: tuple[str, ...] = ()) -> dict[str, tuple]:
        """Fields that differ (name -> (self, other)); resume uses it to refuse a mismatched checkpoint."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k] and k not in ignore}
